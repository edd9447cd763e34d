import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { migrate, readMigrations } from '../../src/db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { startTestService } from '../helpers/service.ts';
import { runIngest } from '../helpers/cli.ts';

/** Every table and column SPEC §4 names (the web app reads these names). */
const SPEC_COLUMNS: Record<string, string[]> = {
  organisations: ['id', 'name', 'metadata', 'created_at', 'updated_at', 'deleted_at'],
  agent_enrolment_tokens: [
    'id', 'organisation_id', 'label', 'token_hash', 'auto_approve', 'max_uses', 'usage_count', 'expires_at',
    'created_at', 'updated_at', 'deleted_at', 'metadata',
  ],
  agents: [
    'id', 'organisation_id', 'hostname', 'public_key', 'status', 'version', 'os', 'arch', 'last_heartbeat_at',
    'approved_at', 'enrolment_token_id', 'created_at', 'updated_at', 'deleted_at', 'metadata',
  ],
  agent_status_history: ['id', 'agent_id', 'organisation_id', 'status', 'actor_id', 'reason', 'created_at'],
  hosts: [
    'id', 'organisation_id', 'agent_id', 'hostname', 'display_name', 'os', 'os_version', 'arch', 'ip_addresses',
    'cpu_percent', 'memory_percent', 'disk_percent', 'uptime_seconds', 'status', 'last_seen_at', 'created_at',
    'updated_at', 'deleted_at', 'metadata',
  ],
  host_metrics: [
    'id', 'organisation_id', 'host_id', 'recorded_at', 'cpu_percent', 'memory_percent', 'disk_percent',
    'uptime_seconds', 'created_at',
  ],
};

/** Types SPEC §4 fixes: text ids, timestamptz timestamps, jsonb metadata, and the named numeric/boolean columns. */
function expectedType(table: string, column: string): string | undefined {
  if (column === 'id' || column.endsWith('_id')) return table === 'queue_events' ? undefined : 'text';
  if (column.endsWith('_at')) return 'timestamp with time zone';
  if (column === 'metadata' || column === 'ip_addresses') return 'jsonb';
  if (column === 'auto_approve') return 'boolean';
  if (column === 'max_uses' || column === 'usage_count') return 'integer';
  if (column.endsWith('_percent')) return 'real';
  if (column === 'uptime_seconds') return 'bigint';
  return undefined;
}

async function schemaMigrationsRows(pool: pg.Pool): Promise<Array<{ version: number; count: string }>> {
  const { rows } = await pool.query<{ version: number; count: string }>('SELECT version, count(*)::text AS count FROM schema_migrations GROUP BY version ORDER BY version');
  return rows;
}

describe('database migrations', () => {
  let db: TestDatabase;
  let versions: number[];
  before(async () => {
    db = await createTestDatabase({ migrated: false });
    versions = (await readMigrations()).map((m) => m.version);
  });
  after(async () => {
    await db.drop();
  });

  it('should number migration files uniquely and in order', async () => {
    assert.ok(versions.length >= 1);
    assert.deepEqual([...versions].sort((a, b) => a - b), versions);
    assert.equal(new Set(versions).size, versions.length);
  });

  it('should create every SPEC §4 table and column on an empty database', async () => {
    assert.deepEqual(await migrate(db.pool), versions);
    const { rows } = await db.pool.query<{ table_name: string; column_name: string; data_type: string }>(
      `SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'`,
    );
    const columns = new Map(rows.map((r) => [`${r.table_name}.${r.column_name}`, r.data_type]));
    const missing: string[] = [];
    const wrongType: string[] = [];
    for (const [table, names] of Object.entries(SPEC_COLUMNS)) {
      for (const column of names) {
        const type = columns.get(`${table}.${column}`);
        if (type === undefined) missing.push(`${table}.${column}`);
        const expected = expectedType(table, column);
        if (type !== undefined && expected !== undefined && type !== expected) wrongType.push(`${table}.${column} is ${type}, expected ${expected}`);
      }
    }
    assert.deepEqual(missing, []);
    assert.deepEqual(wrongType, []);
  });

  it('should keep the status values of SPEC §4 and the unique token hash', async () => {
    const org = await db.pool.query<{ id: string }>(`INSERT INTO organisations (id, name) VALUES ('org_m', 'm') RETURNING id`);
    assert.equal(org.rows[0]?.id, 'org_m');
    await assert.rejects(
      db.pool.query(`INSERT INTO agents (id, organisation_id, hostname, public_key, status) VALUES ('a1', 'org_m', 'h', 'k', 'online')`),
      { code: '23514' },
    );
    await db.pool.query(`INSERT INTO agents (id, organisation_id, hostname, public_key, status) VALUES ('a1', 'org_m', 'h', 'k', 'pending')`);
    await assert.rejects(
      db.pool.query(`INSERT INTO hosts (id, organisation_id, agent_id, hostname, status) VALUES ('h1', 'org_m', 'a1', 'h', 'active')`),
      { code: '23514' },
    );
    await db.pool.query(`INSERT INTO agent_enrolment_tokens (id, organisation_id, token_hash) VALUES ('t1', 'org_m', 'abc')`);
    await assert.rejects(db.pool.query(`INSERT INTO agent_enrolment_tokens (id, organisation_id, token_hash) VALUES ('t2', 'org_m', 'abc')`), { code: '23505' });
  });

  it('should define the indexes the hot paths use', async () => {
    const { rows } = await db.pool.query<{ tablename: string; indexdef: string }>(`SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'`);
    const defs = rows.map((r) => r.indexdef.replace(/\s+/g, ' '));
    const has = (pattern: RegExp, what: string): void => assert.ok(defs.some((d) => pattern.test(d)), `no index for ${what}:\n${defs.join('\n')}`);
    has(/ON public\.hosts USING btree \(agent_id\)/, 'hosts by agent_id');
    has(/ON public\.hosts USING btree \(organisation_id, lower\(hostname\)\)/, 'hosts by organisation + hostname');
    has(/ON public\.host_metrics USING btree \(organisation_id, host_id, recorded_at\)/, 'host_metrics (organisation_id, host_id, recorded_at)');
    has(/UNIQUE INDEX .* ON public\.agents USING btree \(public_key\)/, 'agents by public key');
    has(/UNIQUE INDEX .* ON public\.agent_enrolment_tokens USING btree \(token_hash\)/, 'tokens by hash');
    has(/ON public\.host_metrics USING brin \(recorded_at\)/, 'metrics retention');
    has(/ON public\.queue_events USING brin \(created_at\)/, 'queue retention');
  });

  it('should apply nothing the second time', async () => {
    assert.deepEqual(await migrate(db.pool), []);
    assert.deepEqual(await schemaMigrationsRows(db.pool), versions.map((version) => ({ version, count: '1' })));
  });
});

describe('failing migrations', () => {
  let db: TestDatabase;
  let dir: string;
  before(async () => {
    db = await createTestDatabase({ migrated: false });
    dir = await mkdtemp(path.join(tmpdir(), 'ingest-migrations-'));
  });
  after(async () => {
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('should keep nothing of a failing migration, name it, and release the lock for the next run', async () => {
    await writeFile(path.join(dir, '0001_first.sql'), 'CREATE TABLE first_table (id int);');
    await writeFile(path.join(dir, '0002_broken.sql'), 'CREATE TABLE second_table (id int); SELECT no_such_column FROM first_table;');
    await assert.rejects(migrate(db.pool, dir), /^Error: migration 0002_broken.sql failed: column "no_such_column" does not exist$/);
    const tables = async (): Promise<string[]> =>
      (await db.pool.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`)).rows.map((r) => r.table_name);
    assert.deepEqual(await tables(), ['first_table', 'schema_migrations']);
    assert.deepEqual(await schemaMigrationsRows(db.pool), [{ version: 1, count: '1' }]);
    // Fixed, it applies on the next run: the advisory lock was released although the run failed.
    await writeFile(path.join(dir, '0002_broken.sql'), 'CREATE TABLE second_table (id int);');
    assert.deepEqual(await migrate(db.pool, dir), [2]);
    assert.deepEqual(await tables(), ['first_table', 'schema_migrations', 'second_table']);
  });

  it('should name the migration whose database connection was lost', async () => {
    await writeFile(path.join(dir, '0003_connection_lost.sql'), 'SELECT pg_terminate_backend(pg_backend_pid());');
    await assert.rejects(migrate(db.pool, dir), /^Error: migration 0003_connection_lost.sql failed: /);
    // The pool recovers and the migration is still pending.
    const { rows } = await db.pool.query<{ n: string }>('SELECT count(*)::text AS n FROM schema_migrations WHERE version = 3');
    assert.equal(rows[0]?.n, '0');
  });
});

describe('concurrent migrations', () => {
  it('should apply each migration once when two pools migrate the same empty database at once', async () => {
    const db = await createTestDatabase({ migrated: false });
    const other = new pg.Pool({ connectionString: db.url, max: 2 });
    try {
      const versions = (await readMigrations()).map((m) => m.version);
      const [a, b] = await Promise.all([migrate(db.pool), migrate(other)]);
      assert.deepEqual([...a, ...b].sort((x, y) => x - y), versions);
      assert.ok(a.length === 0 || b.length === 0, `both applied something: ${JSON.stringify([a, b])}`);
      assert.deepEqual(await schemaMigrationsRows(db.pool), versions.map((version) => ({ version, count: '1' })));
    } finally {
      await other.end();
      await db.drop();
    }
  });

  it('should let two `ingest migrate` processes on an empty database both succeed, applying each migration once', async () => {
    const db = await createTestDatabase({ migrated: false });
    try {
      const versions = (await readMigrations()).map((m) => m.version);
      const results = await Promise.all([runIngest(['migrate', '--json'], { DATABASE_URL: db.url }), runIngest(['migrate', '--json'], { DATABASE_URL: db.url })]);
      for (const r of results) assert.equal(r.code, 0, r.stderr);
      const applied = results.map((r) => (JSON.parse(r.stdout.trim()) as { applied: number[] }).applied);
      assert.deepEqual(applied.flat().sort((x, y) => x - y), versions);
      assert.deepEqual(await schemaMigrationsRows(db.pool), versions.map((version) => ({ version, count: '1' })));
      const again = await runIngest(['migrate'], { DATABASE_URL: db.url });
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, 'database schema is up to date\n');
    } finally {
      await db.drop();
    }
  });

  it('should print only the JSON result on stdout, whatever INGEST_LOG_LEVEL says', async () => {
    const db = await createTestDatabase();
    try {
      for (const level of ['', 'trace']) {
        const result = await runIngest(['migrate', '--json'], { DATABASE_URL: db.url, INGEST_LOG_LEVEL: level });
        assert.equal(result.code, 0, result.stderr);
        assert.deepEqual(JSON.parse(result.stdout), { applied: [] });
      }
      const invalid = await runIngest(['migrate'], { DATABASE_URL: db.url, INGEST_LOG_LEVEL: 'loud' });
      assert.equal(invalid.code, 2);
      assert.match(invalid.stderr, /INGEST_LOG_LEVEL must be one of/);
    } finally {
      await db.drop();
    }
  });

  it('should name DATABASE_URL when `ingest migrate` runs without it', async () => {
    const result = await runIngest(['migrate'], { DATABASE_URL: '' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /DATABASE_URL is required/);
  });
});

describe('migrations at start', () => {
  it('should migrate an empty database when the service starts', async () => {
    const db = await createTestDatabase({ migrated: false });
    const svc = await startTestService({ db }).catch(async (error: unknown) => {
      await db.drop();
      throw error;
    });
    try {
      const { rows } = await db.pool.query<{ n: string }>('SELECT count(*)::text AS n FROM schema_migrations');
      assert.equal(Number(rows[0]?.n), (await readMigrations()).length);
    } finally {
      await svc.stop();
      await db.drop();
    }
  });

  it('should leave the database alone with INGEST_MIGRATE=false', async () => {
    const db = await createTestDatabase({ migrated: false });
    try {
      const svc = await startTestService({ db, env: { INGEST_MIGRATE: 'false' } });
      await svc.stop();
      assert.doesNotMatch(svc.logs(), /database migrations applied|database schema up to date/);
      const { rows } = await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM information_schema.tables WHERE table_schema = 'public'`);
      assert.equal(rows[0]?.n, '0');
    } finally {
      await db.drop();
    }
  });
});
