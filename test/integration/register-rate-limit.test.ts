import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Metadata, status, type Client, type ServiceError } from '@grpc/grpc-js';
import { ingestServiceClient } from '../../src/grpc/proto.ts';
import type { RegisterRequest, RegisterResponse } from '../../src/grpc/messages.ts';
import { createEnrolmentToken } from '../../src/enrolment/enrolment-tokens.ts';
import { startTestService, type TestService } from '../helpers/service.ts';
import { expectGrpcError } from '../helpers/client.ts';
import { enrolAgent, generateAgentKey, registerRequest, type EnrolledAgent } from '../helpers/agent-keys.ts';

type RegisterClient = Client & {
  Register(request: unknown, metadata: Metadata, callback: (error: ServiceError | null, response: RegisterResponse) => void): void;
};

/** A real client whose connection comes from ::1 (still verifying the server as `localhost`). */
function clientFromSecondAddress(port: number, caPem: string): { register(request: Partial<RegisterRequest>): Promise<RegisterResponse>; close(): void } {
  const Ctor = ingestServiceClient();
  const raw = new Ctor(`[::1]:${port}`, credentials.createSsl(Buffer.from(caPem)), { 'grpc.ssl_target_name_override': 'localhost' }) as unknown as RegisterClient;
  return {
    register: (request) => new Promise((resolve, reject) => raw.Register(request, new Metadata(), (error, response) => (error === null ? resolve(response) : reject(error)))),
    close: () => raw.close(),
  };
}

describe('Register: failed-attempt limit per client address', () => {
  let svc: TestService;
  let fromSecondAddress: ReturnType<typeof clientFromSecondAddress>;
  let knownAgent: EnrolledAgent;
  before(async () => {
    // Listening on every address (dual-stack) lets a second client connect over IPv6 loopback: another source address.
    svc = await startTestService({ env: { INGEST_REGISTER_FAILURES_PER_MINUTE: '3', INGEST_BIND_ADDRESS: '::' } });
    fromSecondAddress = clientFromSecondAddress(svc.service.grpcPort, svc.pki.ca.certPem);
    knownAgent = await enrolAgent(svc, { autoApprove: true });
  });
  after(async () => {
    fromSecondAddress.close();
    await svc.stop();
  });

  it('should answer RESOURCE_EXHAUSTED after the allowed failures, even for a correct token from that address, while another address is not slowed', async () => {
    const token = await createEnrolmentToken(svc.db.pool, { organisationName: 'limited', autoApprove: true });
    const attacker = svc.client();
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const error = await expectGrpcError(attacker.register(await registerRequest(`guess-${attempt}`, await generateAgentKey())));
      assert.equal(error.code, status.UNAUTHENTICATED);
    }
    const limited = await expectGrpcError(attacker.register(await registerRequest(token.token, await generateAgentKey())));
    assert.equal(limited.code, status.RESOURCE_EXHAUSTED);
    const agents = await svc.db.pool.query('SELECT count(*)::int AS n FROM agents WHERE organisation_id = $1', [token.organisationId]);
    assert.equal(agents.rows[0].n, 0);

    const honest = await fromSecondAddress.register(await registerRequest(token.token, await generateAgentKey()));
    assert.equal(honest.status, 'active');
    const metrics = await (await svc.http('/metrics')).text();
    assert.match(metrics, /ingest_registrations_total\{outcome="rate_limited"\} 1/);
  });

  it('should still let a known agent with a valid proof refresh from a limited address', async () => {
    const refused = await expectGrpcError(svc.client().register(await registerRequest('another-guess', await generateAgentKey())));
    assert.equal(refused.code, status.RESOURCE_EXHAUSTED);
    await svc.db.pool.query("UPDATE agent_enrolment_tokens SET expires_at = now() - interval '1 hour' WHERE id = $1", [knownAgent.tokenId]);
    const response = await svc.client().register(await registerRequest(knownAgent.token, knownAgent.key));
    assert.deepEqual([response.status, response.agent_id], ['active', knownAgent.agentId]);
  });
});
