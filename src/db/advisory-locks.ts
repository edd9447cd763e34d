import { inTransaction, type Pool } from './pool.ts';

/** Advisory lock ids of the background jobs that must run on one replica at a time. */
export const advisoryLocks = {
  offlineSweeper: 7_345_201_002,
  retention: 7_345_201_003,
} as const;

/**
 * Runs `work` in a transaction holding a transaction-scoped advisory lock, or returns undefined at once
 * when another replica holds it.
 */
export async function withTryAdvisoryLock<T>(pool: Pool, lockId: number, work: (query: Pool['query']) => Promise<T>): Promise<T | undefined> {
  return inTransaction(pool, async (client) => {
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1::bigint) AS locked', [lockId]);
    if (rows[0]?.locked !== true) return undefined;
    return work(client.query.bind(client) as Pool['query']);
  });
}
