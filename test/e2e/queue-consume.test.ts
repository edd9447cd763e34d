import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { runIngest, NODE, MAIN } from '../helpers/cli.ts';
import { eventually } from '../helpers/fleet.ts';

async function publish(db: TestDatabase, count: number): Promise<void> {
  await db.pool.query(
    `INSERT INTO queue_events (topic, payload)
     SELECT 'metrics.raw', jsonb_build_object('agent_id', 'a' || g, 'org_id', 'o', 'host_id', 'h', 'timestamp', g, 'cpu', 1, 'memory', 2, 'disk', 3, 'uptime', 4, 'agent_version', 'v', 'os_version', 'x')
     FROM generate_series(1, $1::int) AS g`,
    [count],
  );
}

describe('ingest consume', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });

  it('should deliver each event exactly once to two competing consumers and ack them all', async () => {
    await publish(db, 3000);
    const [a, b] = await Promise.all([
      runIngest(['consume', '--json', '--batch', '25'], { DATABASE_URL: db.url }),
      runIngest(['consume', '--json', '--batch', '25'], { DATABASE_URL: db.url }),
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const ids = [...a.stdout.trim().split('\n'), ...b.stdout.trim().split('\n')].filter((l) => l !== '').map((l) => (JSON.parse(l) as { id: string }).id);
    assert.equal(ids.length, 3000);
    assert.equal(new Set(ids).size, 3000, 'no event delivered twice');
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM queue_events');
    assert.equal(rows[0].n, 0, 'every delivered event was acked');
  });

  it('should print payload objects by default, one per line', async () => {
    await publish(db, 3);
    const result = await runIngest(['consume'], { DATABASE_URL: db.url });
    const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 3);
    assert.deepEqual(Object.keys(lines[0] ?? {}).sort(), ['agent_id', 'agent_version', 'cpu', 'disk', 'host_id', 'memory', 'org_id', 'os_version', 'timestamp', 'uptime']);
  });

  it('should wake on NOTIFY with --follow and deliver events published later', async () => {
    const child = spawn(NODE, [MAIN, 'consume', '--follow', '--json', '--limit', '5'], { env: { PATH: process.env['PATH'] ?? '', DATABASE_URL: db.url }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    // Publish once the consumer found the queue empty and is LISTENing.
    await eventually(async () => {
      const { rows } = await db.pool.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'ct-ops-ingest-consume' AND query LIKE 'LISTEN%'");
      return rows.length > 0 ? true : undefined;
    }, 20_000, 'the consumer to LISTEN');
    await publish(db, 5);
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await exited;
    clearTimeout(timer);
    assert.equal(code, 0);
    assert.equal(out.trim().split('\n').length, 5);
  });

  it('should reject a bad --batch value with a clear error', async () => {
    const result = await runIngest(['consume', '--batch', '0'], { DATABASE_URL: db.url });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /batch/);
  });
});
