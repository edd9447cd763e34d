import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { createEnrolmentToken } from '../../src/enrolment/enrolment-tokens.ts';
import { startTestService, type TestService } from '../helpers/service.ts';
import { expectGrpcError } from '../helpers/client.ts';
import { enrolAgent, generateAgentKey, registerRequest } from '../helpers/agent-keys.ts';

describe('Register: duplicate-host protection', () => {
  let svc: TestService;
  let orgCounter = 0;
  before(async () => {
    svc = await startTestService();
  });
  after(async () => {
    await svc.stop();
  });

  const nextOrg = (): string => `dup-org-${(orgCounter += 1)}`;

  async function setStatuses(agentId: string, agentStatus: string, hostStatus: string): Promise<void> {
    await svc.db.pool.query('UPDATE agents SET status = $2 WHERE id = $1', [agentId, agentStatus]);
    await svc.db.pool.query('UPDATE hosts SET status = $2 WHERE agent_id = $1', [agentId, hostStatus]);
  }

  /** Registers a second machine (new key, auto-approve token) into the organisation. */
  async function registerSecond(organisationName: string, hostname: string, ipAddresses: string[] = []) {
    const token = await createEnrolmentToken(svc.db.pool, { organisationName, autoApprove: true });
    const key = await generateAgentKey();
    const request = await registerRequest(token.token, key, {
      agent_info: { agent_id: '', version: '2.0.0', hostname },
      platform_info: { os: 'linux', arch: 'arm64', os_version: '', ip_addresses: ipAddresses },
    });
    return { key, call: svc.client().register(request) };
  }

  for (const [agentStatus, hostStatus] of [
    ['active', 'unknown'],
    ['revoked', 'offline'],
    ['offline', 'online'],
  ] as const) {
    it(`should answer ALREADY_EXISTS naming the host when its agent is ${agentStatus} and the host ${hostStatus}`, async () => {
      const org = nextOrg();
      const first = await enrolAgent(svc, { organisationName: org, hostname: 'web-1' });
      await setStatuses(first.agentId, agentStatus, hostStatus);
      const hostId = (await svc.db.pool.query('SELECT id FROM hosts WHERE agent_id = $1', [first.agentId])).rows[0].id as string;
      const error = await expectGrpcError((await registerSecond(org, 'web-1')).call);
      assert.equal(error.code, status.ALREADY_EXISTS);
      assert.match(error.details, /"web-1"/);
      assert.ok(error.details.includes(hostId));
      assert.match(error.details, /delete it before re-registering/);
    });
  }

  it('should match the hostname case-insensitively', async () => {
    const org = nextOrg();
    await enrolAgent(svc, { organisationName: org, hostname: 'Web-2.Example.COM' });
    const error = await expectGrpcError((await registerSecond(org, 'web-2.example.com')).call);
    assert.equal(error.code, status.ALREADY_EXISTS);
  });

  it('should match a host by an overlapping IP address under another hostname', async () => {
    const org = nextOrg();
    await enrolAgent(svc, { organisationName: org, hostname: 'old-name', ipAddresses: ['10.1.2.3', '2001:db8::5'] });
    const error = await expectGrpcError((await registerSecond(org, 'new-name', ['192.168.7.7', '2001:0DB8:0::5'])).call);
    assert.equal(error.code, status.ALREADY_EXISTS);
    assert.match(error.details, /"old-name"/);
  });

  it('should compare addresses without their /prefix', async () => {
    const org = nextOrg();
    await enrolAgent(svc, { organisationName: org, hostname: 'prefixed-a', ipAddresses: ['10.20.30.40/24'] });
    const stored = await svc.db.pool.query('SELECT ip_addresses FROM hosts WHERE hostname = $1', ['prefixed-a']);
    assert.deepEqual(stored.rows[0].ip_addresses, ['10.20.30.40']);
    const error = await expectGrpcError((await registerSecond(org, 'prefixed-b', ['10.20.30.40'])).call);
    assert.equal(error.code, status.ALREADY_EXISTS);
  });

  it('should ignore loopback and link-local addresses when comparing', async () => {
    const org = nextOrg();
    const first = await enrolAgent(svc, { organisationName: org, hostname: 'box-a', ipAddresses: ['127.0.0.1', '::1', 'fe80::1', '169.254.10.10'] });
    const second = await (await registerSecond(org, 'box-b', ['127.0.0.1', '::1', 'fe80::1', '169.254.10.10'])).call;
    assert.equal(second.status, 'active');
    assert.notEqual(second.agent_id, first.agentId);
  });

  it('should not match hosts of another organisation', async () => {
    await enrolAgent(svc, { organisationName: nextOrg(), hostname: 'shared-name', ipAddresses: ['10.9.9.9'] });
    const second = await (await registerSecond(nextOrg(), 'shared-name', ['10.9.9.9'])).call;
    assert.equal(second.status, 'active');
  });

  it('should not match two agents that both report no hostname', async () => {
    const org = nextOrg();
    await enrolAgent(svc, { organisationName: org, hostname: '' });
    const second = await (await registerSecond(org, '')).call;
    assert.equal(second.status, 'active');
  });

  for (const [agentStatus, hostStatus] of [
    ['offline', 'offline'],
    ['pending', 'unknown'],
  ] as const) {
    it(`should adopt a host whose agent is ${agentStatus} and host ${hostStatus}: new key, pending even with an auto-approve token`, async () => {
      const org = nextOrg();
      const first = await enrolAgent(svc, { organisationName: org, hostname: 'db-1', ipAddresses: ['10.0.0.5'] });
      await setStatuses(first.agentId, agentStatus, hostStatus);
      await svc.db.pool.query(`UPDATE hosts SET metadata = metadata || '{"notes":"kept"}' WHERE agent_id = $1`, [first.agentId]);
      const { key, call } = await registerSecond(org, 'DB-1', ['10.0.0.6']);
      const response = await call;
      assert.equal(response.status, 'pending');
      assert.equal(response.jwt_token, '');
      assert.equal(response.agent_id, first.agentId);
      const agent = await svc.db.pool.query('SELECT public_key, status, approved_at FROM agents WHERE id = $1', [first.agentId]);
      assert.deepEqual(agent.rows[0], { public_key: key.publicKeyPem, status: 'pending', approved_at: null });
      const hosts = await svc.db.pool.query('SELECT agent_id, hostname, arch, ip_addresses, metadata FROM hosts WHERE organisation_id = $1', [first.organisationId]);
      assert.equal(hosts.rows.length, 1);
      assert.deepEqual(hosts.rows[0], { agent_id: first.agentId, hostname: 'DB-1', arch: 'arm64', ip_addresses: ['10.0.0.6'], metadata: { notes: 'kept', tags: [] } });
      const history = await svc.db.pool.query('SELECT status, reason FROM agent_status_history WHERE agent_id = $1 ORDER BY created_at DESC LIMIT 1', [first.agentId]);
      assert.deepEqual(history.rows[0], { status: 'pending', reason: 're-registered with a new key on an existing host; approval required' });
      // The old key no longer belongs to any agent.
      const old = await svc.db.pool.query('SELECT count(*)::int AS n FROM agents WHERE public_key = $1', [first.key.publicKeyPem]);
      assert.equal(old.rows[0].n, 0);
    });
  }

  it('should adopt a host whose agent was deleted with a new agent', async () => {
    const org = nextOrg();
    const first = await enrolAgent(svc, { organisationName: org, hostname: 'orphan-1' });
    await setStatuses(first.agentId, 'offline', 'offline');
    await svc.db.pool.query('UPDATE agents SET deleted_at = now() WHERE id = $1', [first.agentId]);
    const response = await (await registerSecond(org, 'orphan-1')).call;
    assert.equal(response.status, 'pending');
    assert.notEqual(response.agent_id, first.agentId);
    const hosts = await svc.db.pool.query('SELECT agent_id FROM hosts WHERE organisation_id = $1 AND deleted_at IS NULL', [first.organisationId]);
    assert.deepEqual(hosts.rows, [{ agent_id: response.agent_id }]);
  });

  it('should insert a new host when nothing matches', async () => {
    const org = nextOrg();
    await enrolAgent(svc, { organisationName: org, hostname: 'alpha', ipAddresses: ['10.5.5.5'] });
    const response = await (await registerSecond(org, 'beta', ['10.5.5.6'])).call;
    assert.equal(response.status, 'active');
    const hosts = await svc.db.pool.query('SELECT hostname FROM hosts WHERE agent_id = $1', [response.agent_id]);
    assert.deepEqual(hosts.rows, [{ hostname: 'beta' }]);
  });
});
