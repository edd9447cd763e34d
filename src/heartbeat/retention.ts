import type { Pool } from '../db/pool.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { advisoryLocks, withTryAdvisoryLock } from '../db/advisory-locks.ts';

export interface RetentionOptions {
  readonly pool: Pool;
  readonly retentionDays: number;
  readonly queueMaxAgeSeconds: number;
  readonly batchSize: number;
  readonly intervalMs: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export interface RetentionResult {
  readonly metricsDeleted: number;
  readonly eventsExpired: number;
}

/**
 * Keeps host_metrics and the queue bounded (SPEC §4, §7): deletes metric rows older than the retention
 * and unconsumed events older than the queue's max age, in small batches (short locks, little WAL at a
 * time), on one replica at a time.
 */
export class RetentionJob {
  readonly #options: RetentionOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;

  constructor(options: RetentionOptions) {
    this.#options = options;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#running ??= this.run()
        .catch((error: unknown) => this.#options.logger.warn({ err: { message: (error as Error).message } }, 'retention run failed'))
        .finally(() => {
          this.#running = undefined;
        });
    }, this.#options.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  /** One pass; each batch is its own short transaction under the advisory lock. */
  async run(maxBatches = 100): Promise<RetentionResult> {
    const { pool, retentionDays, queueMaxAgeSeconds, batchSize, metrics, logger } = this.#options;
    let metricsDeleted = 0;
    let eventsExpired = 0;
    for (let i = 0; i < maxBatches; i += 1) {
      const deleted = await withTryAdvisoryLock(pool, advisoryLocks.retention, async (query) => {
        const m = await query(
          `DELETE FROM host_metrics WHERE id IN (
             SELECT id FROM host_metrics WHERE recorded_at < now() - make_interval(days => $1::int)
             LIMIT $2::int)`,
          [retentionDays, batchSize],
        );
        const q = await query(
          `DELETE FROM queue_events WHERE id IN (
             SELECT id FROM queue_events WHERE created_at < now() - make_interval(secs => $1::int)
             ORDER BY id LIMIT $2::int FOR UPDATE SKIP LOCKED)`,
          [queueMaxAgeSeconds, batchSize],
        );
        return { metrics: m.rowCount ?? 0, events: q.rowCount ?? 0 };
      });
      if (deleted === undefined) break;
      metricsDeleted += deleted.metrics;
      eventsExpired += deleted.events;
      if (deleted.metrics < batchSize && deleted.events < batchSize) break;
    }
    if (metricsDeleted > 0) metrics.metricsDeleted.inc(metricsDeleted);
    if (eventsExpired > 0) {
      metrics.queueExpired.inc(eventsExpired);
      logger.warn({ events: eventsExpired, maxAgeSeconds: queueMaxAgeSeconds }, 'dropped unconsumed queue events past their max age');
    }
    return { metricsDeleted, eventsExpired };
  }
}
