import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createPrivateKey } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import { parseSigningKey, generateSigningKeyPem, InvalidKeyError, MIN_RSA_BITS, type SigningKey } from '../../src/keys/key-material.ts';
import { KeyRing } from '../../src/keys/key-ring.ts';

function rsaPem(bits: number, type: 'pkcs1' | 'pkcs8'): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return privateKey.export({ format: 'pem', type }) as string;
}

const isInvalidKey = (pattern: RegExp) => (error: unknown) =>
  error instanceof InvalidKeyError && error.code === 'ERR_INVALID_SIGNING_KEY' && pattern.test(error.message);

describe('signing key material', () => {
  it('should load a PKCS#8 RSA key', async () => {
    const pem = rsaPem(2048, 'pkcs8');
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----/);
    const key = await parseSigningKey(pem, 'test key');
    assert.equal(key.privateKey.asymmetricKeyDetails?.modulusLength, 2048);
  });

  it('should load a PKCS#1 RSA key', async () => {
    const pem = rsaPem(3072, 'pkcs1');
    assert.match(pem, /^-----BEGIN RSA PRIVATE KEY-----/);
    const key = await parseSigningKey(Buffer.from(pem), 'test key');
    assert.equal(key.privateKey.asymmetricKeyDetails?.modulusLength, 3072);
  });

  it('should give the same key the same kid whether it is written as PKCS#1 or PKCS#8', async () => {
    const pkcs1 = rsaPem(2048, 'pkcs1');
    const pkcs8 = createPrivateKey(pkcs1).export({ format: 'pem', type: 'pkcs8' }) as string;
    assert.equal((await parseSigningKey(pkcs1, 'a')).kid, (await parseSigningKey(pkcs8, 'b')).kid);
  });

  it('should refuse an RSA key shorter than 2048 bits', async () => {
    await assert.rejects(parseSigningKey(rsaPem(1024, 'pkcs8'), 'signing key /k.pem'), isInvalidKey(/signing key \/k\.pem holds a 1024-bit RSA key; at least 2048 bits are required/));
  });

  it('should refuse keys that are not RSA', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    const ed = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    await assert.rejects(parseSigningKey(ec, 'k'), isInvalidKey(/holds a ec key; an RSA key is required/));
    await assert.rejects(parseSigningKey(ed, 'k'), isInvalidKey(/holds a ed25519 key; an RSA key is required/));
  });

  it('should refuse text that is not a PEM private key, without echoing it', async () => {
    const publicOnly = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'pem', type: 'spki' }) as string;
    for (const content of ['', 'hello', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', publicOnly]) {
      await assert.rejects(parseSigningKey(content, 'signing key /k.pem'), (error: unknown) => {
        assert.ok(isInvalidKey(/^signing key \/k\.pem does not hold a PEM private key \(PKCS#1 or PKCS#8 RSA expected\)$/)(error), String(error));
        return true;
      });
    }
  });

  it('should use the RFC 7638 thumbprint as kid and publish only public members', async () => {
    const key = await parseSigningKey(rsaPem(2048, 'pkcs8'), 'k');
    const { n, e } = key.publicJwk;
    assert.equal(key.kid, await calculateJwkThumbprint({ kty: 'RSA', n, e }, 'sha256'));
    assert.deepEqual(Object.keys(key.publicJwk).sort(), ['alg', 'e', 'kid', 'kty', 'n', 'use']);
    assert.deepEqual({ kty: key.publicJwk.kty, use: key.publicJwk.use, alg: key.publicJwk.alg, kid: key.publicJwk.kid }, { kty: 'RSA', use: 'sig', alg: 'RS256', kid: key.kid });
    assert.ok(Object.isFrozen(key.publicJwk));
  });

  it('should generate 2048-bit PKCS#8 RSA keys that load back', async () => {
    const pem = await generateSigningKeyPem();
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----/);
    const key = await parseSigningKey(pem, 'generated');
    assert.equal(key.privateKey.asymmetricKeyDetails?.modulusLength, MIN_RSA_BITS);
    assert.equal(key.privateKey.asymmetricKeyDetails?.publicExponent, 65537n);
  });
});

describe('key ring and JWKS', () => {
  let current: SigningKey;
  let previous: SigningKey;
  before(async () => {
    current = await parseSigningKey(rsaPem(2048, 'pkcs8'), 'current');
    previous = await parseSigningKey(rsaPem(2048, 'pkcs1'), 'previous');
  });

  it('should publish only the current key when there is no previous one', () => {
    const ring = new KeyRing({ current, previous: undefined });
    assert.deepEqual(ring.jwks(), { keys: [current.publicJwk] });
  });

  it('should publish the current key first, then the previous one', () => {
    const ring = new KeyRing({ current, previous });
    assert.deepEqual(ring.jwks().keys.map((k) => k.kid), [current.kid, previous.kid]);
    assert.deepEqual(ring.verificationKeys(), [current, previous]);
  });

  it('should publish a key once when previous and current are the same key', () => {
    const ring = new KeyRing({ current, previous: current });
    assert.deepEqual(ring.jwks().keys.map((k) => k.kid), [current.kid]);
  });

  it('should refuse to hand out keys before any are loaded', () => {
    const ring = new KeyRing();
    assert.equal(ring.loaded, false);
    assert.throws(() => ring.keys, /signing keys are not loaded/);
  });

  it('should swap the key set atomically and tell listeners', () => {
    const ring = new KeyRing({ current: previous, previous: undefined });
    const heard: string[] = [];
    const stop = ring.onReplace((keys) => heard.push(keys.current.kid));
    ring.replace({ current, previous });
    stop();
    ring.replace({ current: previous, previous: undefined });
    assert.deepEqual(heard, [current.kid]);
    assert.equal(ring.keys.current.kid, previous.kid);
  });

  it('should never put private key members into the JWKS', () => {
    const ring = new KeyRing({ current, previous });
    const json = JSON.stringify(ring.jwks());
    for (const member of ['"d"', '"p"', '"q"', '"dp"', '"dq"', '"qi"']) assert.ok(!json.includes(member), member);
  });
});
