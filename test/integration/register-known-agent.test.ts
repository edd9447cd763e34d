import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { createEnrolmentToken, revokeEnrolmentToken } from '../../src/enrolment/enrolment-tokens.ts';
import { startTestService, type TestService } from '../helpers/service.ts';
import { expectGrpcError } from '../helpers/client.ts';
import { enrolAgent, generateAgentKey, makeCsr, registerRequest, type EnrolledAgent } from '../helpers/agent-keys.ts';

describe('Register: known agents (the daily refresh)', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService();
  });
  after(async () => {
    await svc.stop();
  });

  const reRegister = async (agent: EnrolledAgent, token = agent.token, csr?: Buffer) => svc.client().register(await registerRequest(token, agent.key, csr === undefined ? {} : { csr_der: csr }));
  const usageCount = async (tokenId: string): Promise<number> => (await svc.db.pool.query('SELECT usage_count FROM agent_enrolment_tokens WHERE id = $1', [tokenId])).rows[0].usage_count as number;

  async function verifyJwt(jwt: string) {
    const jwks = (await (await svc.http('/.well-known/jwks.json')).json()) as JSONWebKeySet;
    return (await jwtVerify(jwt, createLocalJWKSet(jwks), { issuer: 'ct-ops-ingest' })).payload;
  }

  it('should give an active agent a fresh JWT and the same agent id without consuming a token use', async () => {
    const agent = await enrolAgent(svc, { autoApprove: true });
    const response = await reRegister(agent);
    assert.equal(response.status, 'active');
    assert.equal(response.agent_id, agent.agentId);
    assert.equal((await verifyJwt(response.jwt_token)).sub, agent.agentId);
    assert.equal(await usageCount(agent.tokenId), 1);
  });

  it('should answer pending, without a JWT, while the agent awaits approval', async () => {
    const agent = await enrolAgent(svc, { autoApprove: false });
    const response = await reRegister(agent);
    assert.deepEqual([response.status, response.jwt_token, response.message], ['pending', '', 'awaiting admin approval']);
    assert.equal(await usageCount(agent.tokenId), 1);
  });

  it('should answer revoked, without a JWT, for a revoked agent', async () => {
    const agent = await enrolAgent(svc, { autoApprove: true });
    await svc.db.pool.query("UPDATE agents SET status = 'revoked' WHERE id = $1", [agent.agentId]);
    const response = await reRegister(agent);
    assert.deepEqual([response.status, response.jwt_token], ['revoked', '']);
  });

  it('should turn an offline agent active with a JWT and a history row, never answering offline', async () => {
    const agent = await enrolAgent(svc, { autoApprove: true });
    await svc.db.pool.query("UPDATE agents SET status = 'offline' WHERE id = $1", [agent.agentId]);
    const response = await reRegister(agent);
    assert.equal(response.status, 'active');
    assert.notEqual(response.jwt_token, '');
    const row = await svc.db.pool.query('SELECT status FROM agents WHERE id = $1', [agent.agentId]);
    assert.equal(row.rows[0].status, 'active');
    const history = await svc.db.pool.query('SELECT status, reason FROM agent_status_history WHERE agent_id = $1 ORDER BY created_at DESC LIMIT 1', [agent.agentId]);
    assert.deepEqual(history.rows[0], { status: 'active', reason: 'agent re-registered' });
  });

  for (const [state, spoil] of [
    ['expired', (id: string) => svc.db.pool.query("UPDATE agent_enrolment_tokens SET expires_at = now() - interval '1 day' WHERE id = $1", [id])],
    ['used up', (id: string) => svc.db.pool.query('UPDATE agent_enrolment_tokens SET max_uses = 1, usage_count = 1 WHERE id = $1', [id])],
    ['revoked', (id: string) => revokeEnrolmentToken(svc.db.pool, id)],
  ] as const) {
    it(`should refresh with a valid CSR after the token was ${state}`, async () => {
      const agent = await enrolAgent(svc, { autoApprove: true });
      await spoil(agent.tokenId);
      const response = await reRegister(agent);
      assert.equal(response.status, 'active');
      assert.equal((await verifyJwt(response.jwt_token)).sub, agent.agentId);
    });

    it(`should refuse a refresh without a CSR with UNAUTHENTICATED once the token was ${state}`, async () => {
      const agent = await enrolAgent(svc, { autoApprove: true });
      await spoil(agent.tokenId);
      const error = await expectGrpcError(reRegister(agent, agent.token, Buffer.alloc(0)));
      assert.equal(error.code, status.UNAUTHENTICATED);
    });
  }

  it('should refresh without a CSR when the token is valid and of the agent organisation', async () => {
    const agent = await enrolAgent(svc, { autoApprove: true });
    const response = await reRegister(agent, agent.token, Buffer.alloc(0));
    assert.equal(response.status, 'active');
  });

  it('should refuse a refresh without a CSR using a valid token of another organisation', async () => {
    const agent = await enrolAgent(svc, { autoApprove: true });
    const other = await createEnrolmentToken(svc.db.pool, { organisationName: 'someone-else', autoApprove: true });
    const error = await expectGrpcError(reRegister(agent, other.token, Buffer.alloc(0)));
    assert.equal(error.code, status.UNAUTHENTICATED);
    assert.match(svc.logs(), /enrolment token refused: wrong_organisation/);
  });

  it('should refuse a CSR made with a different key with UNAUTHENTICATED, even with a valid token', async () => {
    const agent = await enrolAgent(svc, { autoApprove: true });
    const other = await generateAgentKey();
    const error = await expectGrpcError(reRegister(agent, agent.token, await makeCsr(other.privateKey, other.publicKey)));
    assert.equal(error.code, status.UNAUTHENTICATED);
    assert.match(svc.logs(), /key_mismatch/);
  });

  it('should refuse a CSR for the agent key signed by another private key with UNAUTHENTICATED', async () => {
    const agent = await enrolAgent(svc, { autoApprove: true });
    const other = await generateAgentKey();
    const error = await expectGrpcError(reRegister(agent, agent.token, await makeCsr(other.privateKey, agent.key.publicKey)));
    assert.equal(error.code, status.UNAUTHENTICATED);
    assert.match(svc.logs(), /bad_signature/);
  });

  it('should refuse bytes that are not a CSR with UNAUTHENTICATED', async () => {
    const agent = await enrolAgent(svc, { autoApprove: true });
    const error = await expectGrpcError(reRegister(agent, agent.token, Buffer.from('not a certificate request')));
    assert.equal(error.code, status.UNAUTHENTICATED);
  });

  it('should accept a proof for an agent that registered the raw 32-byte key inside the PEM block', async () => {
    const key = await generateAgentKey();
    const token = await createEnrolmentToken(svc.db.pool, { organisationName: 'raw-keys', autoApprove: true });
    const first = await svc.client().register(await registerRequest(token.token, key, { public_key: key.rawPublicKeyPem }));
    assert.equal(first.status, 'active');
    await revokeEnrolmentToken(svc.db.pool, token.id);
    const again = await svc.client().register(await registerRequest(token.token, key, { public_key: key.rawPublicKeyPem }));
    assert.deepEqual([again.status, again.agent_id], ['active', first.agent_id]);
    const other = await generateAgentKey();
    const forged = await expectGrpcError(svc.client().register(await registerRequest(token.token, other, { public_key: key.rawPublicKeyPem })));
    assert.equal(forged.code, status.UNAUTHENTICATED);
  });
});
