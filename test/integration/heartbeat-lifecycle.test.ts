import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { status, type StatusObject } from '@grpc/grpc-js';
import pg from 'pg';
import { startTestService, type TestService } from '../helpers/service.ts';
import { insertAgents, eventually } from '../helpers/fleet.ts';
import { openHeartbeat, type HeartbeatStream } from '../helpers/heartbeat.ts';
import { runIngest } from '../helpers/cli.ts';
import { advisoryLocks } from '../../src/db/advisory-locks.ts';
import { OfflineSweeper } from '../../src/heartbeat/offline-sweeper.ts';

/** The status the stream ended with, or a failure if it did not end within `ms` (SPEC §6.4: 10 s). */
function endedWithin(stream: HeartbeatStream, ms: number): Promise<StatusObject> {
  return Promise.race([stream.ended, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`stream still open after ${ms} ms`)), ms).unref())]);
}

describe('Heartbeat stream lifecycle', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ env: { INGEST_REVOCATION_CHECK_SECONDS: '5' } });
  });
  after(async () => {
    await svc.stop();
  });
  const tokens = () => svc.service.context.agentTokens;

  it('should end the stream with PERMISSION_DENIED within 10 s when the agent is revoked with the CLI', async () => {
    const [agent] = await insertAgents(svc.db.pool, tokens(), 1);
    assert.ok(agent);
    const stream = openHeartbeat(svc.client(), { jwt: agent.jwt });
    assert.equal((await stream.send({})).ok, true);
    const result = await runIngest(['agent', 'revoke', agent.agentId], { DATABASE_URL: svc.db.url });
    assert.equal(result.code, 0, result.stderr);
    const ended = await endedWithin(stream, 10_000);
    assert.equal(ended.code, status.PERMISSION_DENIED);
    const { rows } = await svc.db.pool.query('SELECT status FROM agents WHERE id = $1', [agent.agentId]);
    assert.equal(rows[0].status, 'revoked', 'a revoked agent stays revoked after its stream closed');
  });

  it('should end the stream with NOT_FOUND within 10 s when the agent is deleted with the CLI', async () => {
    const [agent] = await insertAgents(svc.db.pool, tokens(), 1);
    assert.ok(agent);
    const stream = openHeartbeat(svc.client(), { jwt: agent.jwt });
    await stream.send({});
    const result = await runIngest(['agent', 'delete', agent.agentId], { DATABASE_URL: svc.db.url });
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await endedWithin(stream, 10_000)).code, status.NOT_FOUND);
  });

  it('should end the stream when the web app revokes the agent directly in the database', async () => {
    const [agent] = await insertAgents(svc.db.pool, tokens(), 1);
    assert.ok(agent);
    const stream = openHeartbeat(svc.client(), { jwt: agent.jwt });
    await stream.send({});
    await svc.db.pool.query("UPDATE agents SET status = 'revoked' WHERE id = $1", [agent.agentId]);
    assert.equal((await endedWithin(stream, 10_000)).code, status.PERMISSION_DENIED);
  });

  it('should never turn a revoked agent active again through a heartbeat that raced the revocation', async () => {
    const [agent] = await insertAgents(svc.db.pool, tokens(), 1);
    assert.ok(agent);
    const stream = openHeartbeat(svc.client(), { jwt: agent.jwt });
    await stream.send({});
    await svc.db.pool.query("UPDATE agents SET status = 'revoked' WHERE id = $1", [agent.agentId]);
    await stream.send({}).catch(() => undefined);
    await stream.ended;
    const { rows } = await svc.db.pool.query('SELECT status FROM agents WHERE id = $1', [agent.agentId]);
    assert.equal(rows[0].status, 'revoked');
  });
});

describe('Heartbeat streams across two replicas', () => {
  it('should not mark an agent offline when its old stream on replica A closes after it moved to replica B', async () => {
    const a = await startTestService();
    const b = await startTestService({ db: a.db, pki: a.pki, env: { INGEST_JWT_KEY_FILE: `${a.dir}/keys/jwt_key.pem` } });
    try {
      const [agent] = await insertAgents(a.db.pool, a.service.context.agentTokens, 1);
      assert.ok(agent);
      const onA = openHeartbeat(a.client(), { jwt: agent.jwt });
      assert.equal((await onA.send({})).ok, true);
      const onB = openHeartbeat(b.client(), { jwt: agent.jwt });
      assert.equal((await onB.send({})).ok, true);
      // A's late cleanup: the old stream closes after the agent reconnected to B.
      onA.close();
      await onA.ended;
      // Shutting A down waits for its stream-close work, so its late cleanup has certainly run.
      await a.service.shutdown();
      const { rows } = await a.db.pool.query('SELECT status FROM agents WHERE id = $1', [agent.agentId]);
      assert.equal(rows[0].status, 'active');
      assert.equal((await onB.send({})).ok, true);
      onB.close();
      await onB.ended;
      await eventually(async () => {
        const { rows: now } = await a.db.pool.query("SELECT 1 FROM agents WHERE id = $1 AND status = 'offline'", [agent.agentId]);
        return now.length > 0 ? true : undefined;
      }, 10_000, 'the current stream close to mark the agent offline');
    } finally {
      await b.stop();
      await a.stop();
    }
  });
});

describe('Offline sweeper', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ env: { INGEST_HEARTBEAT_TIMEOUT_SECONDS: '60', INGEST_SWEEP_INTERVAL_SECONDS: '1' } });
  });
  after(async () => {
    await svc.stop();
  });

  it('should mark agents silent for longer than the timeout offline with a "heartbeat timed out" row, and leave fresh ones', async () => {
    const [silent, fresh] = await insertAgents(svc.db.pool, svc.service.context.agentTokens, 2);
    assert.ok(silent && fresh);
    await svc.db.pool.query("UPDATE agents SET last_heartbeat_at = now() - interval '5 minutes' WHERE id = $1", [silent.agentId]);
    await svc.db.pool.query('UPDATE agents SET last_heartbeat_at = now() WHERE id = $1', [fresh.agentId]);
    await eventually(async () => {
      const { rows } = await svc.db.pool.query("SELECT 1 FROM agents WHERE id = $1 AND status = 'offline'", [silent.agentId]);
      return rows.length > 0 ? true : undefined;
    }, 10_000, 'the sweeper');
    const { rows: host } = await svc.db.pool.query('SELECT status FROM hosts WHERE agent_id = $1', [silent.agentId]);
    assert.equal(host[0].status, 'offline');
    const { rows: history } = await svc.db.pool.query('SELECT status, reason FROM agent_status_history WHERE agent_id = $1', [silent.agentId]);
    assert.deepEqual(history, [{ status: 'offline', reason: 'heartbeat timed out' }]);
    const { rows: other } = await svc.db.pool.query('SELECT status FROM agents WHERE id = $1', [fresh.agentId]);
    assert.equal(other[0].status, 'active');
  });

  it('should skip a sweep while another replica holds the sweeper lock', async () => {
    const holder = new pg.Client({ connectionString: svc.db.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [advisoryLocks.offlineSweeper]);
      const { logger, metrics, pool } = svc.service.context;
      const sweeper = new OfflineSweeper({ pool, timeoutSeconds: 60, intervalMs: 60_000, logger, metrics });
      assert.equal(await sweeper.sweep(), undefined);
      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [advisoryLocks.offlineSweeper]);
      assert.equal(typeof (await sweeper.sweep()), 'number');
    } finally {
      await holder.end();
    }
  });
});

describe('Max connection age', () => {
  it('should send GOAWAY and end streams with UNAVAILABLE after the grace, and the agent can reconnect', async () => {
    const svc = await startTestService({ env: { INGEST_MAX_CONNECTION_AGE_SECONDS: '2', INGEST_MAX_CONNECTION_AGE_GRACE_SECONDS: '1' } });
    try {
      const [agent] = await insertAgents(svc.db.pool, svc.service.context.agentTokens, 1);
      assert.ok(agent);
      const client = svc.client();
      const stream = openHeartbeat(client, { jwt: agent.jwt });
      assert.equal((await stream.send({})).ok, true);
      const ended = await endedWithin(stream, 10_000);
      assert.equal(ended.code, status.UNAVAILABLE);
      const again = openHeartbeat(client, { jwt: agent.jwt });
      assert.equal((await again.send({})).ok, true);
      again.close();
      await again.ended;
    } finally {
      await svc.stop();
    }
  });
});
