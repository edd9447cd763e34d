import { databaseUrlFromEnv } from '../config/database-url.ts';
import { ConfigError } from '../config/config.ts';
import { environmentSchema } from '../config/schema.ts';
import { createPool } from '../db/pool.ts';
import { migrate } from '../db/migrate.ts';
import { createLogger } from '../telemetry/logger.ts';

/** `ingest migrate`: needs only DATABASE_URL (and an optional INGEST_LOG_LEVEL, default warn). */
export async function runMigrate(options: { json?: boolean }, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const databaseUrl = databaseUrlFromEnv(env);
  const rawLevel = env['INGEST_LOG_LEVEL'];
  const level = environmentSchema.shape.INGEST_LOG_LEVEL.safeParse(rawLevel === undefined || rawLevel.trim() === '' ? 'warn' : rawLevel);
  if (!level.success) throw new ConfigError([`INGEST_LOG_LEVEL ${level.error.issues[0]?.message ?? 'is invalid'} (got ${JSON.stringify(rawLevel)})`]);
  // Logs go to stderr so that stdout carries only the result (`--json` is machine-read).
  const logger = createLogger(level.data, process.stderr);
  const pool = createPool(databaseUrl, { max: 1, statementTimeoutMs: 600_000 }, logger);
  try {
    const applied = await migrate(pool);
    if (options.json === true) process.stdout.write(`${JSON.stringify({ applied })}\n`);
    else process.stdout.write(applied.length > 0 ? `applied migrations: ${applied.join(', ')}\n` : 'database schema is up to date\n');
  } finally {
    await pool.end();
  }
}
