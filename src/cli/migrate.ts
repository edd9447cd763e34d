import { databaseUrlFromEnv } from '../config/database-url.ts';
import { createPool } from '../db/pool.ts';
import { migrate } from '../db/migrate.ts';
import { createLogger } from '../telemetry/logger.ts';

export async function runMigrate(options: { json?: boolean }): Promise<void> {
  const logger = createLogger(process.env['INGEST_LOG_LEVEL'] ?? 'warn');
  const pool = createPool(databaseUrlFromEnv(), { max: 1, statementTimeoutMs: 600_000 }, logger);
  try {
    const applied = await migrate(pool);
    if (options.json === true) process.stdout.write(`${JSON.stringify({ applied })}\n`);
    else process.stdout.write(applied.length > 0 ? `applied migrations: ${applied.join(', ')}\n` : 'database schema is up to date\n');
  } finally {
    await pool.end();
  }
}
