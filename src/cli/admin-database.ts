import { databaseUrlFromEnv } from '../config/database-url.ts';
import { createPool, type Pool } from '../db/pool.ts';
import { createLogger } from '../telemetry/logger.ts';

/**
 * Runs an admin command against DATABASE_URL only (no TLS or key settings needed). Logs go to stderr so that
 * `--json` output on stdout stays machine-readable.
 */
export async function withAdminPool<T>(work: (pool: Pool, databaseUrl: string) => Promise<T>): Promise<T> {
  const databaseUrl = databaseUrlFromEnv();
  const logger = createLogger(process.env['INGEST_LOG_LEVEL'] ?? 'warn', process.stderr);
  const pool = createPool(databaseUrl, { max: 2, statementTimeoutMs: 30_000, applicationName: 'ct-ops-ingest-cli' }, logger);
  try {
    return await work(pool, databaseUrl);
  } finally {
    await pool.end();
  }
}

export const printJson = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
export const print = (text: string): void => void process.stdout.write(`${text}\n`);
