import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createPool, databaseAnswers, inTransaction, type Pool } from '../../src/db/pool.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';

describe('database pool', () => {
  let db: TestDatabase;
  let pool: Pool;
  const logged: string[] = [];
  before(async () => {
    db = await createTestDatabase();
    const sink = new PassThrough();
    sink.on('data', (chunk: Buffer) => logged.push(chunk.toString()));
    pool = createPool(db.url, { max: 2, statementTimeoutMs: 5_000 }, createLogger('warn', sink));
    await pool.query('CREATE TABLE pool_test (id int PRIMARY KEY)');
  });
  after(async () => {
    await pool.end();
    await db.drop();
  });

  const count = async (): Promise<number> => Number((await pool.query<{ n: string }>('SELECT count(*)::text AS n FROM pool_test')).rows[0]?.n);

  it('should commit the work of a transaction that succeeds', async () => {
    const result = await inTransaction(pool, async (client) => {
      await client.query('INSERT INTO pool_test (id) VALUES (1)');
      return 'done';
    });
    assert.equal(result, 'done');
    assert.equal(await count(), 1);
  });

  it('should roll back the work of a transaction that fails and return its client', async () => {
    await assert.rejects(
      inTransaction(pool, async (client) => {
        await client.query('INSERT INTO pool_test (id) VALUES (2)');
        await client.query('INSERT INTO pool_test (id) VALUES (1)');
      }),
      { code: '23505' },
    );
    assert.equal(await count(), 1);
    assert.equal(pool.totalCount - pool.idleCount, 0, 'a client was not released');
  });

  it('should report a connection lost inside a transaction as its error, without crashing the process', async () => {
    await assert.rejects(
      inTransaction(pool, async (client) => {
        await client.query('INSERT INTO pool_test (id) VALUES (3)');
        await client.query('SELECT pg_terminate_backend(pg_backend_pid())');
      }),
    );
    // Give a stray 'error' event time to surface as an uncaught exception (it would fail this test file).
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await count(), 1);
    // The pool replaced the broken connection.
    for (let i = 0; i < 4; i++) await inTransaction(pool, (client) => client.query('SELECT 1'));
  });

  it('should apply the statement timeout', async () => {
    const short = createPool(db.url, { max: 1, statementTimeoutMs: 100 }, createLogger('silent'));
    try {
      await assert.rejects(short.query('SELECT pg_sleep(2)'), { code: '57014' });
    } finally {
      await short.end();
    }
  });

  it('should tell whether the database answers', async () => {
    assert.equal(await databaseAnswers(pool), true);
    const target = new URL(db.url);
    const proxy = await startTcpProxy(target.hostname, Number(target.port));
    const viaProxy = new URL(db.url);
    viaProxy.port = String(proxy.port);
    const unreachable = createPool(viaProxy.toString(), { max: 1, statementTimeoutMs: 1_000 }, createLogger('silent'));
    try {
      assert.equal(await databaseAnswers(unreachable), true);
      proxy.cut();
      assert.equal(await databaseAnswers(unreachable, 1_000), false);
    } finally {
      await unreachable.end();
      await proxy.close();
    }
  });

  it('should log, not crash on, an idle connection that is cut', async () => {
    await pool.query('SELECT 1');
    await db.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1::text AND application_name = 'ct-ops-ingest'`, [db.name]);
    const until = Date.now() + 5_000;
    while (!logged.some((l) => l.includes('idle database connection failed')) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    assert.ok(logged.some((l) => l.includes('idle database connection failed')));
    assert.equal(await databaseAnswers(pool), true);
  });
});
