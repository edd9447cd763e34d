import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { createEnrolmentToken } from '../../src/enrolment/enrolment-tokens.ts';
import { announceDevEnrolment } from '../../src/cli/token.ts';
import { startTestService, type TestService } from '../helpers/service.ts';
import { expectGrpcError } from '../helpers/client.ts';
import { generateAgentKey, registerRequest } from '../helpers/agent-keys.ts';

describe('Register: new agents', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService();
  });
  after(async () => {
    await svc.stop();
  });

  it('should register a new agent as pending, without a JWT, with an auto-approve-less token', async () => {
    const token = await createEnrolmentToken(svc.db.pool, { organisationName: 'pending-org' });
    const key = await generateAgentKey();
    const response = await svc.client().register(await registerRequest(token.token, key, { agent_info: { agent_id: '', version: '1.0.0', hostname: 'web-1' } }));
    assert.equal(response.status, 'pending');
    assert.equal(response.jwt_token, '');
    assert.equal(response.message, 'awaiting admin approval');
    const agent = await svc.db.pool.query('SELECT organisation_id, status, hostname, approved_at, enrolment_token_id FROM agents WHERE id = $1', [response.agent_id]);
    assert.deepEqual(agent.rows[0], { organisation_id: token.organisationId, status: 'pending', hostname: 'web-1', approved_at: null, enrolment_token_id: token.id });
    const history = await svc.db.pool.query('SELECT status, reason FROM agent_status_history WHERE agent_id = $1 ORDER BY created_at', [response.agent_id]);
    assert.deepEqual(history.rows, [{ status: 'pending', reason: 'initial registration' }]);
    const host = await svc.db.pool.query('SELECT status, hostname, organisation_id FROM hosts WHERE agent_id = $1', [response.agent_id]);
    assert.deepEqual(host.rows, [{ status: 'unknown', hostname: 'web-1', organisation_id: token.organisationId }]);
    const uses = await svc.db.pool.query('SELECT usage_count FROM agent_enrolment_tokens WHERE id = $1', [token.id]);
    assert.equal(uses.rows[0].usage_count, 1);
  });

  it('should register an agent as active with a JWT that verifies against the served JWKS', async () => {
    const token = await createEnrolmentToken(svc.db.pool, { organisationName: 'auto-org', autoApprove: true });
    const key = await generateAgentKey();
    const response = await svc.client().register(await registerRequest(token.token, key));
    assert.equal(response.status, 'active');
    const jwks = (await (await svc.http('/.well-known/jwks.json')).json()) as JSONWebKeySet;
    const { payload, protectedHeader } = await jwtVerify(response.jwt_token, createLocalJWKSet(jwks), { issuer: 'ct-ops-ingest', algorithms: ['RS256'] });
    assert.equal(payload.sub, response.agent_id);
    assert.equal(payload['org'], token.organisationId);
    assert.equal(typeof payload.iat, 'number');
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 86_400);
    assert.equal(protectedHeader.kid, jwks.keys[0]?.kid);
    assert.equal(decodeProtectedHeader(response.jwt_token).alg, 'RS256');
    const agent = await svc.db.pool.query('SELECT status, approved_at IS NOT NULL AS approved FROM agents WHERE id = $1', [response.agent_id]);
    assert.deepEqual(agent.rows[0], { status: 'active', approved: true });
    const history = await svc.db.pool.query('SELECT status, reason FROM agent_status_history WHERE agent_id = $1 ORDER BY created_at, status DESC', [response.agent_id]);
    assert.deepEqual(history.rows, [
      { status: 'pending', reason: 'initial registration' },
      { status: 'active', reason: 'auto-approved by enrolment token' },
    ]);
  });

  it('should store token tags merged with request tags on the host, the request winning case-insensitively', async () => {
    const token = await createEnrolmentToken(svc.db.pool, {
      organisationName: 'tag-org',
      tags: [
        { key: 'env', value: 'prod' },
        { key: 'team', value: 'core' },
      ],
    });
    const key = await generateAgentKey();
    const response = await svc.client().register(
      await registerRequest(token.token, key, {
        tags: [
          { key: 'ENV', value: 'staging' },
          { key: 'rack', value: 'r1' },
          { key: '', value: 'dropped' },
          { key: 'dropped', value: '' },
        ],
      }),
    );
    const host = await svc.db.pool.query('SELECT metadata FROM hosts WHERE agent_id = $1', [response.agent_id]);
    assert.deepEqual(host.rows[0].metadata.tags, [
      { key: 'ENV', value: 'staging' },
      { key: 'team', value: 'core' },
      { key: 'rack', value: 'r1' },
    ]);
  });

  it('should name the host unknown when the agent sends an empty hostname', async () => {
    const token = await createEnrolmentToken(svc.db.pool, { organisationName: 'unknown-org' });
    const response = await svc.client().register(await registerRequest(token.token, await generateAgentKey(), { agent_info: { agent_id: '', version: '', hostname: '' } }));
    const host = await svc.db.pool.query('SELECT hostname FROM hosts WHERE agent_id = $1', [response.agent_id]);
    assert.equal(host.rows[0].hostname, 'unknown');
  });

  it('should yield exactly 5 agents from 20 parallel registrations on a max_uses=5 token', async () => {
    const token = await createEnrolmentToken(svc.db.pool, { organisationName: 'race-org', maxUses: 5, autoApprove: true });
    const client = svc.client();
    const requests = await Promise.all(Array.from({ length: 20 }, async () => registerRequest(token.token, await generateAgentKey())));
    const results = await Promise.allSettled(requests.map((request) => client.register(request)));
    const succeeded = results.filter((r) => r.status === 'fulfilled');
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(succeeded.length, 5);
    assert.ok(failed.every((r) => (r.reason as { code: number }).code === status.UNAUTHENTICATED));
    const agents = await svc.db.pool.query('SELECT count(*)::int AS n FROM agents WHERE organisation_id = $1', [token.organisationId]);
    assert.equal(agents.rows[0].n, 5);
    const uses = await svc.db.pool.query('SELECT usage_count FROM agent_enrolment_tokens WHERE id = $1', [token.id]);
    assert.equal(uses.rows[0].usage_count, 5);
  });

  it('should answer concurrent registrations of one new key with one agent and no error', async () => {
    const token = await createEnrolmentToken(svc.db.pool, { organisationName: 'same-key-org', autoApprove: true });
    const key = await generateAgentKey();
    const request = await registerRequest(token.token, key);
    const client = svc.client();
    const responses = await Promise.all(Array.from({ length: 6 }, () => client.register(request)));
    assert.equal(new Set(responses.map((r) => r.agent_id)).size, 1);
    assert.ok(responses.every((r) => r.status === 'active' && r.jwt_token !== ''));
    const agents = await svc.db.pool.query('SELECT count(*)::int AS n FROM agents WHERE public_key = $1', [key.publicKeyPem]);
    assert.equal(agents.rows[0].n, 1);
  });

  it('should count registrations and issued JWTs in the metrics', async () => {
    const body = await (await svc.http('/metrics')).text();
    assert.match(body, /ingest_registrations_total\{outcome="enrolled_active"\} \d+/);
    assert.match(body, /ingest_jwts_issued_total \d+/);
  });

  it('should print, in dev mode, a working auto-approve token of the default organisation and an agent configuration', async () => {
    const lines: string[] = [];
    await announceDevEnrolment(svc.service, (text) => void lines.push(text));
    const output = lines.join('\n');
    const token = /org_token: (\S+)/.exec(output)?.[1] ?? '';
    assert.match(output, new RegExp(`server_address: localhost:${svc.service.grpcPort}`));
    assert.ok(output.includes(`ca_cert_file: ${svc.config.tls.certFile}`));
    const response = await svc.client().register(await registerRequest(token, await generateAgentKey()));
    assert.equal(response.status, 'active');
    const org = await svc.db.pool.query('SELECT o.name FROM agents a JOIN organisations o ON o.id = a.organisation_id WHERE a.id = $1', [response.agent_id]);
    assert.equal(org.rows[0].name, 'default');
  });

  it('should refuse an unknown token with UNAUTHENTICATED', async () => {
    const error = await expectGrpcError(svc.client().register(await registerRequest('no-such-token', await generateAgentKey())));
    assert.equal(error.code, status.UNAUTHENTICATED);
  });
});
