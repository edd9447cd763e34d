import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { startTestService, type TestService } from '../helpers/service.ts';
import { insertAgents, eventually } from '../helpers/fleet.ts';
import { openHeartbeat } from '../helpers/heartbeat.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';

describe('Heartbeat stream', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ env: { INGEST_LATEST_AGENT_VERSION: '2.0.0', INGEST_AGENT_DOWNLOAD_BASE_URL: 'https://app.example.test/' } });
  });
  after(async () => {
    await svc.stop();
  });
  const tokens = () => svc.service.context.agentTokens;

  it('should acknowledge a heartbeat only after agent, host, host_metrics and queue event are stored (JWT in the first message)', async () => {
    const [agent] = await insertAgents(svc.db.pool, tokens(), 1);
    assert.ok(agent);
    const stream = openHeartbeat(svc.client(), { jwt: agent.jwt });
    const response = await stream.send({
      cpu_percent: 12.5,
      memory_percent: 40,
      disk_percent: 55,
      uptime_seconds: 3600,
      agent_version: '1.2.3',
      os: 'linux',
      os_version: '6.1',
      arch: 'amd64',
      disks: [{ mount_point: '/', device: '/dev/sda1', fs_type: 'ext4', total_bytes: 1000, used_bytes: 400, free_bytes: 600, percent_used: 40 }],
      network_interfaces: [{ name: 'eth0', ip_addresses: ['10.1.2.3/24', 'fe80::1/64'], mac_address: 'aa:bb', is_up: true }],
    });
    assert.equal(response.ok, true);
    const { rows: agents } = await svc.db.pool.query('SELECT status, version, last_heartbeat_at FROM agents WHERE id = $1', [agent.agentId]);
    assert.equal(agents[0].status, 'active');
    assert.equal(agents[0].version, '1.2.3');
    assert.ok(agents[0].last_heartbeat_at instanceof Date);
    const { rows: hosts } = await svc.db.pool.query('SELECT * FROM hosts WHERE agent_id = $1', [agent.agentId]);
    assert.equal(hosts.length, 1);
    assert.equal(hosts[0].status, 'online');
    assert.equal(hosts[0].cpu_percent, 12.5);
    assert.equal(hosts[0].os_version, '6.1');
    assert.deepEqual(hosts[0].ip_addresses, ['10.1.2.3', 'fe80::1']);
    assert.equal(hosts[0].metadata.disks[0].mount_point, '/');
    assert.equal(hosts[0].metadata.network_interfaces[0].name, 'eth0');
    const { rows: metrics } = await svc.db.pool.query('SELECT * FROM host_metrics WHERE host_id = $1', [agent.hostId]);
    assert.equal(metrics.length, 1);
    assert.equal(metrics[0].memory_percent, 40);
    const { rows: events } = await svc.db.pool.query("SELECT payload FROM queue_events WHERE topic = 'metrics.raw' AND payload->>'agent_id' = $1", [agent.agentId]);
    assert.equal(events.length, 1);
    assert.deepEqual(Object.keys(events[0].payload).sort(), ['agent_id', 'agent_version', 'cpu', 'disk', 'host_id', 'memory', 'org_id', 'os_version', 'timestamp', 'uptime']);
    assert.equal(events[0].payload.host_id, agent.hostId);
    assert.equal(events[0].payload.org_id, agent.organisationId);
    assert.ok(Math.abs(events[0].payload.timestamp - Date.now() / 1000) < 60);
    stream.close();
    assert.equal((await stream.ended).code, status.OK);
  });

  it('should accept the JWT from authorization Bearer metadata', async () => {
    const [agent] = await insertAgents(svc.db.pool, tokens(), 1);
    assert.ok(agent);
    const stream = openHeartbeat(svc.client(), { jwt: agent.jwt, via: 'metadata' });
    const first = await stream.send({ agent_id: agent.agentId });
    const second = await stream.send({ agent_id: agent.agentId });
    assert.equal(first.ok && second.ok, true);
    const { rows } = await svc.db.pool.query('SELECT count(*)::int AS n FROM host_metrics WHERE host_id = $1', [agent.hostId]);
    assert.equal(rows[0].n, 2);
    stream.close();
  });

  it('should signal an update to agents on another real version, and not to dev builds', async () => {
    const [agent] = await insertAgents(svc.db.pool, tokens(), 1);
    assert.ok(agent);
    const stream = openHeartbeat(svc.client(), { jwt: agent.jwt });
    const old = await stream.send({ agent_version: '1.9.0' });
    assert.equal(old.update_available, true);
    assert.equal(old.latest_version, '2.0.0');
    assert.equal(old.download_url, 'https://app.example.test/api/agent/download');
    const dev = await stream.send({ agent_version: 'dev' });
    assert.equal(dev.update_available, false);
    const current = await stream.send({ agent_version: '2.0.0' });
    assert.equal(current.update_available, false);
    assert.equal(current.download_url, '');
    stream.close();
  });

  it('should store NaN and Infinity as NULL and clamp out-of-range percentages without poisoning the batch', async () => {
    const [bad, good] = await insertAgents(svc.db.pool, tokens(), 2);
    assert.ok(bad && good);
    const badStream = openHeartbeat(svc.client(), { jwt: bad.jwt });
    const goodStream = openHeartbeat(svc.client(), { jwt: good.jwt });
    const [badAck, goodAck] = await Promise.all([
      badStream.send({ cpu_percent: Number.NaN, memory_percent: Number.POSITIVE_INFINITY, disk_percent: 250, uptime_seconds: -5 }),
      goodStream.send({ cpu_percent: 10 }),
    ]);
    assert.equal(badAck.ok, true);
    assert.equal(goodAck.ok, true);
    const { rows } = await svc.db.pool.query('SELECT cpu_percent, memory_percent, disk_percent, uptime_seconds FROM host_metrics WHERE host_id = $1', [bad.hostId]);
    assert.deepEqual(rows[0], { cpu_percent: null, memory_percent: null, disk_percent: 100, uptime_seconds: null });
    const { rows: host } = await svc.db.pool.query('SELECT cpu_percent FROM hosts WHERE id = $1', [bad.hostId]);
    assert.equal(host[0].cpu_percent, null);
    badStream.close();
    goodStream.close();
  });

  it('should merge disks and interfaces into host metadata, keeping keys written by the web app', async () => {
    const [agent] = await insertAgents(svc.db.pool, tokens(), 1);
    assert.ok(agent);
    await svc.db.pool.query(`UPDATE hosts SET metadata = '{"tags":[{"key":"env","value":"prod"}],"owner_team_id":"team-42"}' WHERE id = $1`, [agent.hostId]);
    const stream = openHeartbeat(svc.client(), { jwt: agent.jwt });
    await stream.send({ disks: [{ mount_point: '/data', device: 'sdb', fs_type: 'xfs', total_bytes: 10, used_bytes: 1, free_bytes: 9, percent_used: 10 }] });
    await stream.send({ os: '' });
    const { rows } = await svc.db.pool.query('SELECT metadata, os FROM hosts WHERE id = $1', [agent.hostId]);
    assert.equal(rows[0].metadata.owner_team_id, 'team-42');
    assert.deepEqual(rows[0].metadata.tags, [{ key: 'env', value: 'prod' }]);
    assert.equal(rows[0].metadata.disks[0].mount_point, '/data', 'an empty disk list keeps the last one');
    stream.close();
  });

  it('should end the stream with INVALID_ARGUMENT naming the field when structural limits are exceeded', async () => {
    const [agent] = await insertAgents(svc.db.pool, tokens(), 1);
    assert.ok(agent);
    const disks = Array.from({ length: 257 }, (_, i) => ({ mount_point: `/m${i}`, device: 'd', fs_type: 'ext4', total_bytes: 1, used_bytes: 1, free_bytes: 0, percent_used: 1 }));
    const tooMany = openHeartbeat(svc.client(), { jwt: agent.jwt });
    await assert.rejects(tooMany.send({ disks }));
    const endStatus = await tooMany.ended;
    assert.equal(endStatus.code, status.INVALID_ARGUMENT);
    assert.match(endStatus.details, /disks/);
    const tooLong = openHeartbeat(svc.client(), { jwt: agent.jwt });
    await assert.rejects(tooLong.send({ os_version: 'x'.repeat(1025) }));
    const longStatus = await tooLong.ended;
    assert.equal(longStatus.code, status.INVALID_ARGUMENT);
    assert.match(longStatus.details, /os_version/);
    const { rows } = await svc.db.pool.query('SELECT count(*)::int AS n FROM host_metrics WHERE host_id = $1', [agent.hostId]);
    assert.equal(rows[0].n, 0);
  });

  it('should answer NOT_FOUND for an unknown agent and PERMISSION_DENIED for pending and revoked agents', async () => {
    const stranger = await tokens().sign('no-such-agent-00000000000', 'no-such-org');
    const unknown = openHeartbeat(svc.client(), { jwt: stranger });
    await assert.rejects(unknown.send({}));
    assert.equal((await unknown.ended).code, status.NOT_FOUND);
    for (const state of ['pending', 'revoked'] as const) {
      const [agent] = await insertAgents(svc.db.pool, tokens(), 1, state);
      assert.ok(agent);
      const stream = openHeartbeat(svc.client(), { jwt: agent.jwt });
      await assert.rejects(stream.send({}));
      assert.equal((await stream.ended).code, status.PERMISSION_DENIED, state);
      const { rows } = await svc.db.pool.query('SELECT status FROM agents WHERE id = $1', [agent.agentId]);
      assert.equal(rows[0].status, state);
    }
    const [deleted] = await insertAgents(svc.db.pool, tokens(), 1);
    assert.ok(deleted);
    await svc.db.pool.query('UPDATE agents SET deleted_at = now() WHERE id = $1', [deleted.agentId]);
    const gone = openHeartbeat(svc.client(), { jwt: deleted.jwt });
    await assert.rejects(gone.send({}));
    assert.equal((await gone.ended).code, status.NOT_FOUND);
  });

  it('should make an offline agent active again with an "agent reconnected" history row', async () => {
    const [agent] = await insertAgents(svc.db.pool, tokens(), 1, 'offline');
    assert.ok(agent);
    const stream = openHeartbeat(svc.client(), { jwt: agent.jwt });
    assert.equal((await stream.send({})).ok, true);
    const { rows } = await svc.db.pool.query('SELECT status FROM agents WHERE id = $1', [agent.agentId]);
    assert.equal(rows[0].status, 'active');
    const { rows: history } = await svc.db.pool.query('SELECT status, reason FROM agent_status_history WHERE agent_id = $1', [agent.agentId]);
    assert.deepEqual(history, [{ status: 'active', reason: 'agent reconnected' }]);
    stream.close();
  });

  it('should mark the agent and host offline with history when its stream closes', async () => {
    const [agent] = await insertAgents(svc.db.pool, tokens(), 1);
    assert.ok(agent);
    const stream = openHeartbeat(svc.client(), { jwt: agent.jwt });
    await stream.send({});
    stream.close();
    await stream.ended;
    const row = await eventually(async () => {
      const { rows } = await svc.db.pool.query("SELECT a.status AS agent, h.status AS host FROM agents a JOIN hosts h ON h.agent_id = a.id WHERE a.id = $1 AND a.status = 'offline'", [agent.agentId]);
      return rows[0];
    });
    assert.deepEqual(row, { agent: 'offline', host: 'offline' });
    const { rows: history } = await svc.db.pool.query("SELECT reason FROM agent_status_history WHERE agent_id = $1 AND status = 'offline'", [agent.agentId]);
    assert.deepEqual(history, [{ reason: 'heartbeat stream closed' }]);
  });
});

describe('Heartbeat stream authentication', () => {
  it('should answer UNAUTHENTICATED for missing, forged or expired JWTs before touching the database', async () => {
    const target = await startTestService();
    // Route the service's database through a proxy and cut it: a database lookup would now fail with
    // UNAVAILABLE, so UNAUTHENTICATED proves the token was rejected first.
    const proxy = await startTcpProxy('127.0.0.1', Number(new URL(target.db.url).port));
    const dbUrl = new URL(target.db.url);
    dbUrl.port = String(proxy.port);
    const svc = await startTestService({ db: target.db, pki: target.pki, env: { DATABASE_URL: dbUrl.toString(), INGEST_JWT_KEY_FILE: `${target.dir}/keys/jwt_key.pem` } });
    try {
      proxy.cut();
      const key = svc.service.context.keys.keys.current;
      const cases: Record<string, string> = {
        missing: '',
        garbage: 'not-a-jwt',
        expired: await new SignJWT({ org: 'o' }).setProtectedHeader({ alg: 'RS256', kid: key.kid }).setSubject('a').setIssuer('ct-ops-ingest').setIssuedAt(1_000).setExpirationTime(2_000).sign(key.privateKey),
        wrongIssuer: await new SignJWT({ org: 'o' }).setProtectedHeader({ alg: 'RS256', kid: key.kid }).setSubject('a').setIssuer('someone-else').setExpirationTime('1h').sign(key.privateKey),
      };
      for (const [name, jwt] of Object.entries(cases)) {
        const stream = openHeartbeat(svc.client(), { jwt });
        await assert.rejects(stream.send({}));
        const ended = await stream.ended;
        assert.equal(ended.code, status.UNAUTHENTICATED, name);
      }
    } finally {
      proxy.restore();
      await svc.stop();
      await proxy.close();
      await target.stop();
    }
  });
});
