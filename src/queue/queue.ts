/** Topic of the per-heartbeat vitals event (SPEC §7). */
export const METRICS_RAW_TOPIC = 'metrics.raw';

/** Payload of a `metrics.raw` event. */
export interface MetricsRawEvent {
  readonly agent_id: string;
  readonly org_id: string;
  readonly host_id: string;
  readonly timestamp: number;
  readonly cpu: number | null;
  readonly memory: number | null;
  readonly disk: number | null;
  readonly uptime: number | null;
  readonly agent_version: string;
  readonly os_version: string;
}

export interface QueueEvent<T = unknown> {
  readonly id: string;
  readonly topic: string;
  readonly createdAt: string;
  readonly payload: T;
}

/**
 * The consumer side of the queue. Events are published transactionally with the heartbeat rows
 * (the PostgreSQL outbox); an external engine (NATS, RabbitMQ, ...) plugs in as a relay built on this
 * interface: claim a batch, publish it, ack it.
 */
export interface QueueConsumer {
  /** Claims up to `limit` events and hands them to `handle`; they are acked (deleted) only if it resolves. */
  consumeBatch(topic: string, limit: number, handle: (events: QueueEvent[]) => Promise<void>): Promise<number>;
  /** Resolves when new events may be available (or after `timeoutMs`). */
  waitForEvents(timeoutMs: number): Promise<void>;
  backlog(topic: string): Promise<number>;
  close(): Promise<void>;
}
