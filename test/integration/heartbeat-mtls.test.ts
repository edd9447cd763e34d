import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { startTestService, type TestService } from '../helpers/service.ts';
import { createTestPki, clientCertificate, type TestPki } from '../helpers/tls.ts';
import { insertAgents } from '../helpers/fleet.ts';
import { openHeartbeat } from '../helpers/heartbeat.ts';

describe('Heartbeat with agent client certificates (mTLS optional)', () => {
  let pki: TestPki;
  let svc: TestService;
  before(async () => {
    pki = await createTestPki();
    svc = await startTestService({ pki, env: { INGEST_TLS_CLIENT_CA: pki.caFile } });
  });
  after(async () => {
    await svc.stop();
  });

  it('should accept a stream whose certificate names the JWT subject', async () => {
    const [agent] = await insertAgents(svc.db.pool, svc.service.context.agentTokens, 1);
    assert.ok(agent);
    const cert = await clientCertificate(pki.ca, agent.organisationId, agent.agentId);
    const stream = openHeartbeat(svc.client({ certPem: cert.certPem, keyPem: cert.keyPem }), { jwt: agent.jwt });
    assert.equal((await stream.send({})).ok, true);
    stream.close();
  });

  it('should answer PERMISSION_DENIED when the certificate names another agent', async () => {
    const [agent, other] = await insertAgents(svc.db.pool, svc.service.context.agentTokens, 2);
    assert.ok(agent && other);
    const cert = await clientCertificate(pki.ca, other.organisationId, other.agentId);
    const stream = openHeartbeat(svc.client({ certPem: cert.certPem, keyPem: cert.keyPem }), { jwt: agent.jwt });
    await assert.rejects(stream.send({}));
    assert.equal((await stream.ended).code, status.PERMISSION_DENIED);
    const { rows } = await svc.db.pool.query('SELECT count(*)::int AS n FROM host_metrics WHERE host_id = $1', [agent.hostId]);
    assert.equal(rows[0].n, 0);
  });

  it('should accept a stream without a client certificate in optional mode', async () => {
    const [agent] = await insertAgents(svc.db.pool, svc.service.context.agentTokens, 1);
    assert.ok(agent);
    const stream = openHeartbeat(svc.client(), { jwt: agent.jwt });
    assert.equal((await stream.send({})).ok, true);
    stream.close();
  });
});
