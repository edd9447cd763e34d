import { status } from '@grpc/grpc-js';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { NotificationListener } from '../db/notification-listener.ts';
import type { HeartbeatStore } from './heartbeat-store.ts';
import type { StreamRegistry } from './stream-registry.ts';
import { refusalFor, type HeartbeatSession } from './heartbeat-session.ts';

/** Channel the agents trigger notifies when an agent is revoked or deleted (migration 0001). */
export const REVOCATION_CHANNEL = 'ingest_agent_revoked';

/**
 * Ends streams of revoked or deleted agents (SPEC §6.4) on this replica. A LISTEN notification ends them
 * at once; as a safety net (missed notifications, dropped LISTEN connection) one query per replica per
 * interval checks every agent streaming here. Database work is O(1) statements per interval.
 */
export class RevocationWatch {
  readonly #store: HeartbeatStore;
  readonly #registry: StreamRegistry<HeartbeatSession>;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(options: { store: HeartbeatStore; registry: StreamRegistry<HeartbeatSession>; listener: NotificationListener; logger: Logger; metrics: Metrics; intervalMs: number }) {
    this.#store = options.store;
    this.#registry = options.registry;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#intervalMs = options.intervalMs;
    options.listener.on(REVOCATION_CHANNEL, (payload) => this.#onNotification(payload));
  }

  start(): void {
    this.#timer = setInterval(() => void this.check(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** One query for every agent streaming on this replica. */
  async check(): Promise<void> {
    if (this.#checking) return;
    const agentIds = this.#registry.agentIds();
    if (agentIds.length === 0) return;
    this.#checking = true;
    try {
      const states = await this.#store.agentStates(agentIds);
      for (const [agentId, state] of states) this.#endStreams(agentId, refusalFor(state), state);
    } catch (error) {
      this.#logger.warn({ err: { message: (error as Error).message } }, 'revocation check failed; will retry');
    } finally {
      this.#checking = false;
    }
  }

  #onNotification(payload: string): void {
    try {
      const { id, deleted } = JSON.parse(payload) as { id?: unknown; deleted?: unknown };
      if (typeof id !== 'string') return;
      const state = deleted === true ? 'deleted' : 'revoked';
      this.#endStreams(id, refusalFor(state), state);
    } catch {
      this.#logger.debug('ignored malformed revocation notification');
    }
  }

  #endStreams(agentId: string, refusal: { code: status; details: string } | undefined, reason: string): void {
    if (refusal === undefined) return;
    for (const session of this.#registry.forAgent(agentId)) {
      this.#metrics.streamsEnded.inc({ reason });
      this.#logger.info({ agentId, reason }, 'ending heartbeat stream');
      session.terminate(refusal.code, refusal.details);
    }
  }
}
