import type { Pool } from '../db/pool.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { advisoryLocks, withTryAdvisoryLock } from '../db/advisory-locks.ts';
import { markOfflineStatement } from './mark-offline.ts';

const SWEEP_SQL = markOfflineStatement(
  'COALESCE(last_heartbeat_at, approved_at, created_at) < now() - make_interval(secs => $1::int)',
  'heartbeat timed out',
);

/**
 * Marks agents offline whose last heartbeat is older than the timeout (SPEC §6.6), so a crashed
 * replica's agents do not stay online forever. One replica sweeps at a time (advisory lock).
 */
export class OfflineSweeper {
  readonly #pool: Pool;
  readonly #timeoutSeconds: number;
  readonly #intervalMs: number;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;

  constructor(options: { pool: Pool; timeoutSeconds: number; intervalMs: number; logger: Logger; metrics: Metrics }) {
    this.#pool = options.pool;
    this.#timeoutSeconds = options.timeoutSeconds;
    this.#intervalMs = options.intervalMs;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#running ??= this.sweep()
        .catch((error: unknown) => this.#logger.warn({ err: { message: (error as Error).message } }, 'offline sweep failed'))
        .finally(() => {
          this.#running = undefined;
        });
    }, this.#intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  /** Returns the number of agents marked offline, or undefined when another replica holds the lock. */
  async sweep(): Promise<number | undefined> {
    const marked = await withTryAdvisoryLock(this.#pool, advisoryLocks.offlineSweeper, async (query) => {
      const { rows } = await query<{ id: string }>(SWEEP_SQL, [this.#timeoutSeconds]);
      return rows.length;
    });
    if (marked !== undefined && marked > 0) {
      this.#metrics.agentsMarkedOffline.inc({ cause: 'heartbeat_timeout' }, marked);
      this.#logger.info({ agents: marked }, 'marked silent agents offline');
    }
    return marked;
  }
}
