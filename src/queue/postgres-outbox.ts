import pg from 'pg';
import { inTransaction, type Pool } from '../db/pool.ts';
import type { QueueConsumer, QueueEvent } from './queue.ts';

/** Channel the queue_events trigger notifies once per inserting statement. */
export const QUEUE_CHANNEL = 'ingest_queue_events';

/**
 * Consumer of the PostgreSQL outbox (table queue_events). Claim protocol, usable from any language:
 *   BEGIN;
 *   SELECT id, topic, payload, created_at FROM queue_events WHERE topic = $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED;
 *   -- process the events
 *   DELETE FROM queue_events WHERE id = ANY($ids);  -- ack
 *   COMMIT;      -- or ROLLBACK to release them for redelivery
 * Competing consumers never see the same event at once (SKIP LOCKED); LISTEN ingest_queue_events to wake up.
 */
export class PostgresOutboxConsumer implements QueueConsumer {
  readonly #pool: Pool;
  readonly #url: string;
  #listener: pg.Client | undefined;
  #wake: (() => void) | undefined;

  constructor(pool: Pool, url: string) {
    this.#pool = pool;
    this.#url = url;
  }

  async consumeBatch(topic: string, limit: number, handle: (events: QueueEvent[]) => Promise<void>): Promise<number> {
    return inTransaction(this.#pool, async (client) => {
      const { rows } = await client.query<{ id: string; topic: string; payload: unknown; created_at: Date }>(
        `SELECT id::text AS id, topic, payload, created_at FROM queue_events
         WHERE topic = $1::text ORDER BY id LIMIT $2::int FOR UPDATE SKIP LOCKED`,
        [topic, limit],
      );
      if (rows.length > 0) {
        await handle(rows.map((r) => ({ id: r.id, topic: r.topic, createdAt: r.created_at.toISOString(), payload: r.payload })));
        await client.query('DELETE FROM queue_events WHERE id = ANY($1::bigint[])', [rows.map((r) => r.id)]);
      }
      return rows.length;
    });
  }

  async waitForEvents(timeoutMs: number): Promise<void> {
    if (this.#listener === undefined) {
      const listener = new pg.Client({ connectionString: this.#url, application_name: 'ct-ops-ingest-consume' });
      listener.on('error', () => {
        this.#listener = undefined;
      });
      listener.on('notification', () => this.#wake?.());
      await listener.connect();
      await listener.query(`LISTEN ${QUEUE_CHANNEL}`);
      this.#listener = listener;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
    this.#wake = undefined;
  }

  async backlog(topic: string): Promise<number> {
    const { rows } = await this.#pool.query<{ n: number }>('SELECT count(*)::int AS n FROM queue_events WHERE topic = $1::text', [topic]);
    return rows[0]?.n ?? 0;
  }

  async close(): Promise<void> {
    this.#wake?.();
    await this.#listener?.end().catch(() => undefined);
    this.#listener = undefined;
  }
}
