import { status, type ServerDuplexStream } from '@grpc/grpc-js';
import type { ComponentFactory, ServiceComponent } from '../service.ts';
import type { HeartbeatRequest, HeartbeatResponse } from '../grpc/messages.ts';
import { NotificationListener } from '../db/notification-listener.ts';
import { PostgresOutboxConsumer } from '../queue/postgres-outbox.ts';
import { METRICS_RAW_TOPIC } from '../queue/queue.ts';
import { HeartbeatStore } from './heartbeat-store.ts';
import { BatchWriter } from './batch-writer.ts';
import { StreamRegistry } from './stream-registry.ts';
import { HeartbeatSession } from './heartbeat-session.ts';
import { RevocationWatch } from './revocation-watch.ts';
import { OfflineSweeper } from './offline-sweeper.ts';
import { RetentionJob } from './retention.ts';

const BACKLOG_REFRESH_MS = 15_000;

/** Heartbeat streams, batched writes, revocation, offline detection and retention (SPEC §6, §7). */
export const heartbeatComponent: ComponentFactory = (context): ServiceComponent => {
  const { config, logger, metrics, pool, grpc } = context;
  const log = logger.child({ module: 'heartbeat' });
  const store = new HeartbeatStore(pool);
  const writer = new BatchWriter({
    maxBatchSize: config.heartbeat.batchMaxSize,
    maxDelayMs: config.heartbeat.batchMaxDelayMs,
    maxBufferedSamples: config.heartbeat.bufferMaxHeartbeats,
    writeBatch: (samples) => store.writeBatch(samples),
    logger: log,
    metrics,
  });
  const registry = new StreamRegistry<HeartbeatSession>();
  const listener = new NotificationListener(config.databaseUrl, log, () => void revocations.check());
  const revocations = new RevocationWatch({ store, registry, listener, logger: log, metrics, intervalMs: config.heartbeat.revocationCheckMs });
  const sweeper = new OfflineSweeper({ pool, timeoutSeconds: config.heartbeat.timeoutSeconds, intervalMs: config.heartbeat.sweepIntervalMs, logger: log, metrics });
  const retention = new RetentionJob({
    pool,
    retentionDays: config.retention.metricsRetentionDays,
    queueMaxAgeSeconds: config.retention.queueMaxAgeSeconds,
    batchSize: config.retention.batchSize,
    intervalMs: config.retention.intervalMs,
    logger: log,
    metrics,
  });
  const outbox = new PostgresOutboxConsumer(pool, config.databaseUrl);
  let backlogTimer: NodeJS.Timeout | undefined;
  let accepting = true;

  grpc.onConnectionAged((peer) => {
    for (const session of registry.forPeer(peer)) {
      metrics.streamsEnded.inc({ reason: 'max_connection_age' });
      session.terminate(status.UNAVAILABLE, 'connection reached its maximum age; reconnect');
    }
  });

  return {
    handlers: {
      Heartbeat: (call: ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>) => {
        if (!accepting) {
          call.emit('error', { code: status.UNAVAILABLE, details: 'server shutting down; reconnect' });
          return;
        }
        new HeartbeatSession(call, {
          config,
          logger: log,
          metrics,
          clock: context.clock,
          agentTokens: context.agentTokens,
          store,
          writer,
          registry,
          peerIdentity: (peer) => grpc.connection(peer)?.identity,
        }).start();
      },
    },
    readinessProblems: () => (writer.failing ? ['database writes failing'] : []),
    start: async () => {
      await listener.start();
      revocations.start();
      sweeper.start();
      retention.start();
      const refreshBacklog = (): void => {
        outbox.backlog(METRICS_RAW_TOPIC).then(
          (n) => metrics.queueBacklog.set({ topic: METRICS_RAW_TOPIC }, n),
          () => undefined,
        );
      };
      refreshBacklog();
      backlogTimer = setInterval(refreshBacklog, BACKLOG_REFRESH_MS);
      backlogTimer.unref();
    },
    drain: async (deadlineMs) => {
      accepting = false;
      const sessions = registry.all();
      for (const session of sessions) session.stopReading();
      // Everything received is written and answered before the streams are ended.
      await writer.flush(deadlineMs - 500);
      await Promise.race([Promise.all(sessions.map((s) => s.acksSettled())), delay(Math.max(0, deadlineMs - 500 - Date.now()))]);
      for (const session of registry.all()) {
        metrics.streamsEnded.inc({ reason: 'shutdown' });
        session.terminate(status.UNAVAILABLE, 'server shutting down; reconnect');
      }
      await Promise.race([registry.closingSettled(), delay(Math.max(0, deadlineMs - Date.now()))]);
    },
    stop: async () => {
      clearInterval(backlogTimer);
      writer.stop();
      revocations.stop();
      await Promise.all([sweeper.stop(), retention.stop()]);
      await listener.close();
      await outbox.close();
    },
  };
};

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
