import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestService } from '../helpers/service.ts';
import { insertAgents, eventually } from '../helpers/fleet.ts';
import { openHeartbeat } from '../helpers/heartbeat.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, freePort } from '../../src/dev/embedded-postgres.ts';

describe('Heartbeats while PostgreSQL is down', () => {
  it('should keep streams open, report not ready, acknowledge nothing unwritten, and write the buffer when PostgreSQL restarts', async () => {
    // A PostgreSQL server of this test's own, really stopped for 10 s and started again.
    const dataRoot = await mkdtemp(path.join(tmpdir(), 'ingest-outage-'));
    const port = await freePort();
    let postgres = await startEmbeddedPostgres({ dataDir: path.join(dataRoot, 'data'), port, persistent: true });
    const dbUrl = new URL(postgres.url);
    dbUrl.pathname = '/ingest';
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    await admin.query('CREATE DATABASE ingest');
    await admin.end();
    const db = new pg.Pool({ connectionString: dbUrl.toString(), max: 2 });
    db.on('error', () => undefined);
    const svc = await startTestService({ env: { DATABASE_URL: dbUrl.toString(), INGEST_BATCH_MAX_DELAY_MS: '10' } });
    try {
      const agents = await insertAgents(db, svc.service.context.agentTokens, 3);
      const streams = agents.map((agent) => openHeartbeat(svc.client(), { jwt: agent.jwt }));
      for (const stream of streams) assert.equal((await stream.send({})).ok, true);
      let statusEvents = 0;
      for (const stream of streams) stream.call.on('status', () => (statusEvents += 1));

      await postgres.stop();
      // Agents keep sending on their own schedule, acknowledged or not: 10 heartbeats over 10 s.
      const sentDuringOutage = 10;
      const pending: Array<Promise<unknown>> = [];
      for (let i = 0; i < sentDuringOutage; i += 1) {
        for (const stream of streams) pending.push(stream.send({ cpu_percent: i }));
        await new Promise((r) => setTimeout(r, 1_000));
      }
      const ready = await svc.http('/readyz');
      assert.equal(ready.status, 503);
      const reasons = (await ready.json()) as { reasons: string[] };
      assert.ok(reasons.reasons.includes('database writes failing') || reasons.reasons.includes('database unreachable'), JSON.stringify(reasons));
      assert.equal(streams.reduce((n, s) => n + s.responses.length, 0), 3, 'nothing acknowledged while the database is down');
      assert.equal(statusEvents, 0, 'streams stay open');
      assert.equal((await svc.http('/healthz')).status, 200, 'the process stays alive');

      postgres = await startEmbeddedPostgres({ dataDir: path.join(dataRoot, 'data'), port, persistent: true });
      const acks = (await Promise.all(pending)) as Array<{ ok: boolean }>;
      assert.ok(acks.every((a) => a.ok), 'every buffered heartbeat is written and acknowledged');
      for (const agent of agents) {
        const { rows } = await db.query('SELECT count(*)::int AS n FROM host_metrics WHERE host_id = $1', [agent.hostId]);
        assert.equal(rows[0].n, 1 + sentDuringOutage);
        const { rows: events } = await db.query("SELECT count(*)::int AS n FROM queue_events WHERE payload->>'agent_id' = $1", [agent.agentId]);
        assert.equal(events[0].n, 1 + sentDuringOutage);
      }
      await eventually(async () => ((await svc.http('/readyz')).status === 200 ? true : undefined), 15_000, 'readiness to recover');
      for (const stream of streams) stream.close();
    } finally {
      await svc.stop();
      await db.end();
      await postgres.stop();
      await rm(dataRoot, { recursive: true, force: true });
    }
  });
});

describe('Bounded heartbeat buffer', () => {
  it('should drop and count samples beyond the bound, keep the newest vitals of every agent, and never acknowledge a dropped one', async () => {
    const db = await createTestDatabase();
    const proxy = await startTcpProxy('127.0.0.1', Number(new URL(db.url).port));
    const viaProxy = new URL(db.url);
    viaProxy.port = String(proxy.port);
    const svc = await startTestService({ db, env: { DATABASE_URL: viaProxy.toString(), INGEST_BUFFER_MAX_HEARTBEATS: '4', INGEST_BATCH_MAX_DELAY_MS: '10' } });
    try {
      const agents = await insertAgents(db.pool, svc.service.context.agentTokens, 2);
      const streams = agents.map((agent) => openHeartbeat(svc.client(), { jwt: agent.jwt }));
      for (const stream of streams) assert.equal((await stream.send({})).ok, true);
      proxy.cut();
      const pending: Array<Promise<{ ok: boolean }>> = [];
      for (let i = 1; i <= 5; i += 1) for (const stream of streams) pending.push(stream.send({ cpu_percent: i * 10 }));
      // Restore the database only once every sample beyond the bound was dropped (a batch in flight is
      // put back and trimmed when it fails).
      await eventually(async () => (/^ingest_buffer_dropped_total 6$/m.test(await (await svc.http('/metrics')).text()) ? true : undefined), 20_000, 'samples to be dropped');
      assert.equal((await svc.http('/readyz')).status, 503);
      proxy.restore();
      const acks = await Promise.all(pending);
      const written = acks.filter((a) => a.ok).length;
      const dropped = acks.length - written;
      assert.equal(dropped, 6, '10 samples, room for 4');
      for (const agent of agents) {
        const { rows } = await db.pool.query('SELECT cpu_percent FROM hosts WHERE id = $1', [agent.hostId]);
        assert.equal(rows[0].cpu_percent, 50, 'the newest vitals won');
      }
      const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM host_metrics');
      assert.equal(rows[0].n, 2 + written, 'only acknowledged samples were written');
      const metrics = await (await svc.http('/metrics')).text();
      assert.match(metrics, /^ingest_buffer_dropped_total 6$/m);
      for (const stream of streams) stream.close();
    } finally {
      proxy.restore();
      await svc.stop();
      await proxy.close();
      await db.drop();
    }
  });
});
