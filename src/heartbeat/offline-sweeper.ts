import type { Pool } from '../db/pool.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { advisoryLocks, withTryAdvisoryLock } from '../db/advisory-locks.ts';

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
      const { rows } = await query<{ id: string }>(
        `WITH silent AS (
           UPDATE agents SET status = 'offline', stream_session_id = NULL, updated_at = now()
           WHERE status = 'active' AND deleted_at IS NULL
             AND COALESCE(last_heartbeat_at, approved_at, created_at) < now() - make_interval(secs => $1::int)
           RETURNING id, organisation_id
         ),
         hosts_offline AS (
           UPDATE hosts h SET status = 'offline', updated_at = now()
           FROM silent s WHERE h.agent_id = s.id AND h.deleted_at IS NULL
         ),
         history AS (
           INSERT INTO agent_status_history (id, agent_id, organisation_id, status, reason)
           SELECT md5(random()::text || s.id), s.id, s.organisation_id, 'offline', 'heartbeat timed out' FROM silent s
         )
         SELECT id FROM silent`,
        [this.#timeoutSeconds],
      );
      return rows.length;
    });
    if (marked !== undefined && marked > 0) {
      this.#metrics.agentsMarkedOffline.inc({ cause: 'heartbeat_timeout' }, marked);
      this.#logger.info({ agents: marked }, 'marked silent agents offline');
    }
    return marked;
  }
}
