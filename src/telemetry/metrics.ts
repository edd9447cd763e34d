import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every Prometheus metric of the service, in one place (SPEC §10). Labels are bounded enums only:
 * never an agent, host, organisation or token id.
 */
export function createMetrics() {
  const metrics = defineMetrics();
  // Series that alerts use with increase() exist from the start, so their first increment is seen.
  for (const result of ['success', 'failure']) metrics.keyReloads.inc({ result }, 0);
  return metrics;
}

function defineMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const r = [registry];
  const grpcLabels = ['grpc_type', 'grpc_service', 'grpc_method'] as const;
  return {
    registry,
    grpcStarted: new Counter({ name: 'grpc_server_started_total', help: 'RPCs started on the server.', labelNames: grpcLabels, registers: r }),
    grpcHandled: new Counter({ name: 'grpc_server_handled_total', help: 'RPCs completed on the server, by status code.', labelNames: [...grpcLabels, 'grpc_code'], registers: r }),
    grpcHandlingSeconds: new Histogram({
      name: 'grpc_server_handling_seconds',
      help: 'Time from RPC start to its status being sent.',
      labelNames: grpcLabels,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 300, 1800, 3600],
      registers: r,
    }),
    grpcMsgReceived: new Counter({ name: 'grpc_server_msg_received_total', help: 'Stream messages received from clients.', labelNames: grpcLabels, registers: r }),
    grpcMsgSent: new Counter({ name: 'grpc_server_msg_sent_total', help: 'Stream messages sent to clients.', labelNames: grpcLabels, registers: r }),
    connectedStreams: new Gauge({ name: 'ingest_connected_streams', help: 'Heartbeat streams currently open on this replica.', registers: r }),
    heartbeatsReceived: new Counter({ name: 'ingest_heartbeats_received_total', help: 'Heartbeats received from agents.', registers: r }),
    heartbeatsAcknowledged: new Counter({ name: 'ingest_heartbeats_acknowledged_total', help: 'Heartbeats written to PostgreSQL and acknowledged.', registers: r }),
    heartbeatAckSeconds: new Histogram({
      name: 'ingest_heartbeat_ack_seconds',
      help: 'Time from receiving a heartbeat to sending its acknowledgement (after commit).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: r,
    }),
    batchSize: new Histogram({ name: 'ingest_batch_size', help: 'Heartbeats per database batch.', buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000], registers: r }),
    batchWriteSeconds: new Histogram({
      name: 'ingest_batch_write_seconds',
      help: 'Duration of one batch transaction.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: r,
    }),
    batchFailures: new Counter({ name: 'ingest_batch_failures_total', help: 'Batch transactions that failed and will be retried.', registers: r }),
    statementsExecuted: new Counter({ name: 'ingest_batch_statements_total', help: 'SQL statements executed by the heartbeat batch writer.', registers: r }),
    bufferDepth: new Gauge({ name: 'ingest_buffer_depth', help: 'Heartbeats waiting to be written.', registers: r }),
    bufferDropped: new Counter({ name: 'ingest_buffer_dropped_total', help: 'Metric samples dropped because the write buffer was full.', registers: r }),
    registrations: new Counter({ name: 'ingest_registrations_total', help: 'Register calls by outcome.', labelNames: ['outcome'], registers: r }),
    tokenFailures: new Counter({ name: 'ingest_token_failures_total', help: 'Enrolment token checks that failed, by reason.', labelNames: ['reason'], registers: r }),
    jwtsIssued: new Counter({ name: 'ingest_jwts_issued_total', help: 'Agent JWTs issued.', registers: r }),
    queuePublished: new Counter({ name: 'ingest_queue_published_total', help: 'Events published to the queue.', labelNames: ['topic'], registers: r }),
    queueBacklog: new Gauge({ name: 'ingest_queue_backlog', help: 'Events in the queue not yet consumed.', labelNames: ['topic'], registers: r }),
    queueExpired: new Counter({ name: 'ingest_queue_expired_total', help: 'Unconsumed queue events dropped by retention.', registers: r }),
    metricsDeleted: new Counter({ name: 'ingest_retention_deleted_rows_total', help: 'host_metrics rows deleted by retention.', registers: r }),
    keyReloads: new Counter({ name: 'ingest_key_reloads_total', help: 'Signing key (re)loads by result.', labelNames: ['result'], registers: r }),
    streamsEnded: new Counter({ name: 'ingest_streams_ended_total', help: 'Heartbeat streams ended by the server, by reason.', labelNames: ['reason'], registers: r }),
    agentsMarkedOffline: new Counter({ name: 'ingest_agents_marked_offline_total', help: 'Agents marked offline, by cause.', labelNames: ['cause'], registers: r }),
    ready: new Gauge({ name: 'ingest_ready', help: '1 when this replica reports ready.', registers: r }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
