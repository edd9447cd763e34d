import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { createEnrolmentToken, revokeEnrolmentToken } from '../../src/enrolment/enrolment-tokens.ts';
import type { RegisterRequest } from '../../src/grpc/messages.ts';
import { startTestService, type TestService } from '../helpers/service.ts';
import { expectGrpcError } from '../helpers/client.ts';
import { generateAgentKey, makeCsr, registerRequest } from '../helpers/agent-keys.ts';
import { rowCounts } from '../helpers/row-counts.ts';

describe('Register: refused requests', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService();
  });
  after(async () => {
    await svc.stop();
  });

  /** Sends the request, expects the status, and checks that no table changed. */
  async function expectRefusedWithoutWrites(request: Partial<RegisterRequest>, code: number): Promise<string> {
    const before = await rowCounts(svc.db.pool);
    const error = await expectGrpcError(svc.client().register(request));
    assert.equal(error.code, code, `got ${error.code}: ${error.details}`);
    assert.deepEqual(await rowCounts(svc.db.pool), before);
    return error.details;
  }

  describe('token failures', () => {
    it('should give the same UNAUTHENTICATED status and message for unknown, expired, used-up and revoked tokens', async () => {
      const expired = await createEnrolmentToken(svc.db.pool, { organisationName: 'refusals', expiresAt: new Date(Date.now() - 60_000) });
      const usedUp = await createEnrolmentToken(svc.db.pool, { organisationName: 'refusals', maxUses: 1 });
      await svc.db.pool.query('UPDATE agent_enrolment_tokens SET usage_count = 1 WHERE id = $1', [usedUp.id]);
      const revoked = await createEnrolmentToken(svc.db.pool, { organisationName: 'refusals' });
      assert.equal(await revokeEnrolmentToken(svc.db.pool, revoked.id), true);
      const tokens = { unknown: 'ctet_not-a-real-token', expired: expired.token, used_up: usedUp.token, revoked: revoked.token };
      const messages = new Set<string>();
      for (const [reason, token] of Object.entries(tokens)) {
        const key = await generateAgentKey();
        messages.add(await expectRefusedWithoutWrites(await registerRequest(token, key), status.UNAUTHENTICATED));
        assert.match(svc.logs(), new RegExp(`enrolment token refused: ${reason}`));
        assert.ok(!svc.logs().includes(token), 'the token must never be logged');
      }
      assert.deepEqual([...messages], ['registration refused: invalid enrolment token or key proof']);
      const metrics = await (await svc.http('/metrics')).text();
      for (const reason of Object.keys(tokens)) assert.match(metrics, new RegExp(`ingest_token_failures_total\\{reason="${reason}"\\} 1`));
      const uses = await svc.db.pool.query('SELECT usage_count FROM agent_enrolment_tokens WHERE id = ANY($1) ORDER BY usage_count', [[expired.id, revoked.id]]);
      assert.deepEqual(uses.rows, [{ usage_count: 0 }, { usage_count: 0 }]);
    });

    it('should refuse a new agent whose CSR was made with another key with UNAUTHENTICATED, writing nothing', async () => {
      const token = await createEnrolmentToken(svc.db.pool, { organisationName: 'refusals', autoApprove: true });
      const key = await generateAgentKey();
      const other = await generateAgentKey();
      const details = await expectRefusedWithoutWrites(await registerRequest(token.token, key, { csr_der: await makeCsr(other.privateKey, other.publicKey) }), status.UNAUTHENTICATED);
      assert.equal(details, 'registration refused: invalid enrolment token or key proof');
      const uses = await svc.db.pool.query('SELECT usage_count FROM agent_enrolment_tokens WHERE id = $1', [token.id]);
      assert.equal(uses.rows[0].usage_count, 0);
    });

    it('should never log the public key', async () => {
      const key = await generateAgentKey();
      await expectGrpcError(svc.client().register(await registerRequest('bad', key)));
      const body = key.publicKeyPem.split('\n')[1] ?? '';
      assert.ok(body.length > 0 && !svc.logs().includes(body));
    });
  });

  describe('input validation', () => {
    const ip = (ip_addresses: string[]): Partial<RegisterRequest> => ({ platform_info: { os: 'linux', arch: 'amd64', os_version: '', ip_addresses } });
    const cases: Array<[string, Partial<RegisterRequest>, string]> = [
      ['org_token missing', { org_token: '' }, 'org_token'],
      ['org_token over 256 characters', { org_token: 'x'.repeat(257) }, 'org_token'],
      ['public_key missing', { public_key: '' }, 'public_key'],
      ['public_key over 4 KiB', { public_key: 'k'.repeat(4097) }, 'public_key'],
      ['hostname over 253 characters', { agent_info: { agent_id: '', version: '', hostname: 'h'.repeat(254) } }, 'agent_info.hostname'],
      ['more than 64 IP addresses', ip(Array.from({ length: 65 }, (_, i) => `10.0.0.${i}`)), 'platform_info.ip_addresses'],
      ['an invalid IP address', ip(['10.0.0.1', '999.1.1.1']), 'platform_info.ip_addresses[1]'],
      ['more than 64 tags', { tags: Array.from({ length: 65 }, (_, i) => ({ key: `k${i}`, value: 'v' })) }, 'tags'],
      ['a tag key over 255 characters', { tags: [{ key: 'k'.repeat(256), value: 'v' }] }, 'tags[0].key'],
      ['a tag value over 255 characters', { tags: [{ key: 'k', value: 'v'.repeat(256) }] }, 'tags[0].value'],
      ['a NUL character in the hostname', { agent_info: { agent_id: '', version: '', hostname: 'web\u0000-1' } }, 'agent_info.hostname'],
      ['a NUL character in a tag value', { tags: [{ key: 'k', value: 'a\u0000b' }] }, 'tags[0].value'],
    ];
    for (const [name, overrides, field] of cases) {
      it(`should answer INVALID_ARGUMENT naming ${field} for ${name}, writing nothing`, async () => {
        const token = await createEnrolmentToken(svc.db.pool, { organisationName: 'validation', autoApprove: true });
        const details = await expectRefusedWithoutWrites(await registerRequest(token.token, await generateAgentKey(), overrides), status.INVALID_ARGUMENT);
        assert.ok(details.startsWith(`${field}:`), details);
      });
    }

    it('should answer RESOURCE_EXHAUSTED for a message over the size limit, writing nothing', async () => {
      const token = await createEnrolmentToken(svc.db.pool, { organisationName: 'validation', autoApprove: true });
      await expectRefusedWithoutWrites(await registerRequest(token.token, await generateAgentKey(), { csr_der: Buffer.alloc(1_100_000) }), status.RESOURCE_EXHAUSTED);
    });

    it('should refuse an ALREADY_EXISTS duplicate without consuming a token use', async () => {
      const token = await createEnrolmentToken(svc.db.pool, { organisationName: 'dup-no-write', autoApprove: true });
      await svc.client().register(await registerRequest(token.token, await generateAgentKey(), { agent_info: { agent_id: '', version: '', hostname: 'db-1' } }));
      await expectRefusedWithoutWrites(await registerRequest(token.token, await generateAgentKey(), { agent_info: { agent_id: '', version: '', hostname: 'db-1' } }), status.ALREADY_EXISTS);
      const uses = await svc.db.pool.query('SELECT usage_count FROM agent_enrolment_tokens WHERE id = $1', [token.id]);
      assert.equal(uses.rows[0].usage_count, 1);
    });
  });
});
