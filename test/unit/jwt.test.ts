import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, decodeProtectedHeader, decodeJwt } from 'jose';
import { AgentTokens, InvalidJwtError, JWT_CLOCK_LEEWAY_SECONDS } from '../../src/keys/jwt.ts';
import { KeyRing } from '../../src/keys/key-ring.ts';
import { fromPrivateKey, type SigningKey } from '../../src/keys/key-material.ts';
import type { Clock } from '../../src/clock.ts';

const ISSUER = 'ct-ops-ingest';
const TTL_SECONDS = 86_400;
const T0_MS = Date.UTC(2026, 0, 15, 12, 0, 0);

class FixedClock implements Clock {
  ms = T0_MS;
  nowMs(): number {
    return this.ms;
  }
}

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** Signs header.payload with RS256 by hand, so tests can build tokens jose would refuse to make. */
function rs256(header: object, payload: object, key: KeyObject): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const signature = createSign('RSA-SHA256').update(input).sign(key).toString('base64url');
  return `${input}.${signature}`;
}

async function rsaKey(): Promise<SigningKey> {
  return fromPrivateKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
}

function rejectedWith(reason: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof InvalidJwtError, `expected InvalidJwtError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_INVALID_JWT');
    assert.match(error.reason, reason);
    assert.match(error.message, /^invalid agent token: /);
    return true;
  };
}

describe('agent JWTs', () => {
  let current: SigningKey;
  let previous: SigningKey;
  let stranger: SigningKey;
  let clock: FixedClock;
  let tokens: AgentTokens;
  const iat = Math.floor(T0_MS / 1000);
  const claims = (extra: object = {}) => ({ sub: 'agent_1', org: 'org_1', iss: ISSUER, iat, exp: iat + TTL_SECONDS, ...extra });

  before(async () => {
    [current, previous, stranger] = await Promise.all([rsaKey(), rsaKey(), rsaKey()]);
    clock = new FixedClock();
    tokens = new AgentTokens(new KeyRing({ current, previous }), { issuer: ISSUER, ttlSeconds: TTL_SECONDS, clock });
  });

  const at = (ms: number): void => {
    clock.ms = ms;
  };

  it('should sign RS256 with the current kid and the agent claims, expiring ttl after issue', async () => {
    at(T0_MS);
    const token = await tokens.sign('agent_1', 'org_1');
    assert.deepEqual(decodeProtectedHeader(token), { alg: 'RS256', typ: 'JWT', kid: current.kid });
    assert.deepEqual(decodeJwt(token), { sub: 'agent_1', org: 'org_1', iss: ISSUER, iat, exp: iat + TTL_SECONDS });
    assert.deepEqual(await tokens.verify(token), { agentId: 'agent_1', organisationId: 'org_1', expiresAt: iat + TTL_SECONDS });
  });

  it(`should accept a token expired by less than ${JWT_CLOCK_LEEWAY_SECONDS} s and refuse one expired longer ago`, async () => {
    at(T0_MS);
    const token = await tokens.sign('agent_1', 'org_1');
    const exp = iat + TTL_SECONDS;
    at((exp + JWT_CLOCK_LEEWAY_SECONDS - 1) * 1000);
    assert.equal((await tokens.verify(token)).agentId, 'agent_1');
    at((exp + JWT_CLOCK_LEEWAY_SECONDS + 1) * 1000);
    await assert.rejects(tokens.verify(token), rejectedWith(/ERR_JWT_EXPIRED/));
    at(T0_MS);
  });

  it('should refuse alg none', async () => {
    at(T0_MS);
    const unsigned = `${b64({ alg: 'none', typ: 'JWT', kid: current.kid })}.${b64(claims())}.`;
    await assert.rejects(tokens.verify(unsigned), rejectedWith(/./));
    const noKid = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`;
    await assert.rejects(tokens.verify(noKid), rejectedWith(/./));
  });

  it('should refuse HS256 signed with the public key bytes', async () => {
    at(T0_MS);
    const publicSecrets = [
      current.publicKey.export({ format: 'pem', type: 'spki' }) as string,
      current.publicKey.export({ format: 'pem', type: 'pkcs1' }) as string,
      current.publicKey.export({ format: 'der', type: 'spki' }) as Buffer,
    ];
    for (const secret of publicSecrets) {
      for (const header of [{ alg: 'HS256', typ: 'JWT', kid: current.kid }, { alg: 'HS256', typ: 'JWT' }]) {
        const input = `${b64(header)}.${b64(claims())}`;
        const token = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
        await assert.rejects(tokens.verify(token), rejectedWith(/./));
      }
    }
  });

  it('should refuse RS256-family look-alikes signed with the right key (RS384, PS256)', async () => {
    at(T0_MS);
    for (const alg of ['RS384', 'PS256']) {
      const token = await new SignJWT({ org: 'org_1' })
        .setProtectedHeader({ alg, kid: current.kid })
        .setSubject('agent_1')
        .setIssuer(ISSUER)
        .setIssuedAt(iat)
        .setExpirationTime(iat + 60)
        .sign(current.privateKey);
      await assert.rejects(tokens.verify(token), rejectedWith(/ERR_JOSE_ALG_NOT_ALLOWED/), alg);
    }
  });

  it('should refuse a wrong issuer', async () => {
    at(T0_MS);
    const token = rs256({ alg: 'RS256', kid: current.kid }, claims({ iss: 'someone-else' }), current.privateKey);
    await assert.rejects(tokens.verify(token), rejectedWith(/ERR_JWT_CLAIM_VALIDATION_FAILED/));
    const missing = rs256({ alg: 'RS256', kid: current.kid }, { sub: 'agent_1', org: 'org_1', iat, exp: iat + 60 }, current.privateKey);
    await assert.rejects(tokens.verify(missing), rejectedWith(/ERR_JWT_CLAIM_VALIDATION_FAILED/));
  });

  it('should refuse a tampered payload', async () => {
    at(T0_MS);
    const [header, , signature] = (await tokens.sign('agent_1', 'org_1')).split('.');
    const forged = `${header}.${b64(claims({ sub: 'agent_2' }))}.${signature}`;
    await assert.rejects(tokens.verify(forged), rejectedWith(/ERR_JWS_SIGNATURE_VERIFICATION_FAILED/));
  });

  it('should refuse an unknown kid', async () => {
    at(T0_MS);
    const token = rs256({ alg: 'RS256', kid: stranger.kid }, claims(), stranger.privateKey);
    await assert.rejects(tokens.verify(token), rejectedWith(/^unknown kid$/));
  });

  it('should refuse a known kid on a token signed by another key', async () => {
    at(T0_MS);
    const token = rs256({ alg: 'RS256', kid: current.kid }, claims(), stranger.privateKey);
    await assert.rejects(tokens.verify(token), rejectedWith(/ERR_JWS_SIGNATURE_VERIFICATION_FAILED/));
  });

  it('should verify a token signed by the previous key, with or without a kid', async () => {
    at(T0_MS);
    const withKid = rs256({ alg: 'RS256', kid: previous.kid }, claims({ sub: 'agent_old' }), previous.privateKey);
    assert.equal((await tokens.verify(withKid)).agentId, 'agent_old');
    const withoutKid = rs256({ alg: 'RS256' }, claims({ sub: 'agent_older' }), previous.privateKey);
    assert.equal((await tokens.verify(withoutKid)).agentId, 'agent_older');
  });

  it('should refuse a token without a kid that no published key signed', async () => {
    at(T0_MS);
    const token = rs256({ alg: 'RS256' }, claims(), stranger.privateKey);
    await assert.rejects(tokens.verify(token), rejectedWith(/ERR_JWS_SIGNATURE_VERIFICATION_FAILED/));
  });

  it('should refuse an empty or missing subject', async () => {
    at(T0_MS);
    const empty = rs256({ alg: 'RS256', kid: current.kid }, claims({ sub: '' }), current.privateKey);
    await assert.rejects(tokens.verify(empty), rejectedWith(/./));
    const { sub: _sub, ...withoutSub } = claims();
    const missing = rs256({ alg: 'RS256', kid: current.kid }, withoutSub, current.privateKey);
    await assert.rejects(tokens.verify(missing), rejectedWith(/./));
  });

  it('should refuse a token without an expiry', async () => {
    at(T0_MS);
    const { exp: _exp, ...withoutExp } = claims();
    const token = rs256({ alg: 'RS256', kid: current.kid }, withoutExp, current.privateKey);
    await assert.rejects(tokens.verify(token), rejectedWith(/ERR_JWT_CLAIM_VALIDATION_FAILED/));
  });

  it('should refuse malformed, empty and oversized tokens', async () => {
    at(T0_MS);
    for (const token of ['', 'abc', 'a.b', '!!!.b.c', `${b64('null')}.${b64(claims())}.x`, 'x'.repeat(10_000)]) {
      await assert.rejects(tokens.verify(token), rejectedWith(/./), JSON.stringify(token.slice(0, 20)));
    }
  });

  it('should verify with the new key after the ring swaps keys', async () => {
    at(T0_MS);
    const ring = new KeyRing({ current: previous, previous: undefined });
    const rotating = new AgentTokens(ring, { issuer: ISSUER, ttlSeconds: 60, clock });
    const old = await rotating.sign('agent_1', 'org_1');
    ring.replace({ current, previous });
    const fresh = await rotating.sign('agent_1', 'org_1');
    assert.equal(decodeProtectedHeader(fresh).kid, current.kid);
    assert.equal((await rotating.verify(old)).agentId, 'agent_1');
    ring.replace({ current: stranger, previous: current });
    await assert.rejects(rotating.verify(old), rejectedWith(/^unknown kid$/));
  });
});
