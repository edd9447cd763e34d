import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

/** Serialises migrations across replicas (an arbitrary constant: "ct-ops ingest migrations"). */
export const MIGRATION_LOCK_ID = 7_345_201_001;

const defaultDirectory = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly file: string;
  readonly sql: string;
}

export async function readMigrations(directory = defaultDirectory): Promise<Migration[]> {
  const files = (await readdir(directory)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (file) => ({
      version: Number(file.slice(0, 4)),
      name: file.slice(5, -4),
      file,
      sql: await readFile(path.join(directory, file), 'utf8'),
    })),
  );
}

/**
 * Applies pending migrations, each in its own transaction, holding a session advisory lock so
 * replicas starting together apply each migration exactly once. Returns the versions applied.
 */
export async function migrate(pool: pg.Pool, directory?: string): Promise<number[]> {
  const migrations = await readMigrations(directory);
  const client = await pool.connect();
  let broken = false;
  // A checked-out client re-emits a lost connection as an 'error' event, fatal without a listener; the failed
  // query reports it already.
  const ignoreConnectionError = (): void => {
    broken = true;
  };
  client.on('error', ignoreConnectionError);
  try {
    await client.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_ID]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
      const applied = new Set(rows.map((r) => r.version));
      const done: number[] = [];
      for (const migration of migrations) {
        if (applied.has(migration.version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(migration.sql);
          await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2::text)', [migration.version, migration.name]);
          await client.query('COMMIT');
        } catch (error) {
          // The connection may be gone (that may be why it failed): the original error is the one to report.
          await client.query('ROLLBACK').catch(() => undefined);
          throw new Error(`migration ${migration.file} failed: ${(error as Error).message}`, { cause: error });
        }
        done.push(migration.version);
      }
      return done;
    } finally {
      // A lost connection has released its session lock already; that must not hide the error being thrown.
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_ID]).catch(() => {
        broken = true;
      });
    }
  } finally {
    client.off('error', ignoreConnectionError);
    client.release(broken);
  }
}
