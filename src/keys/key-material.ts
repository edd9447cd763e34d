import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { calculateJwkThumbprint, type JWK } from 'jose';

const generateKeyPairAsync = promisify(generateKeyPair);

export const MIN_RSA_BITS = 2048;

/** One RSA signing key with its RFC 7638 thumbprint as `kid`. */
export interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly publicJwk: JWK;
}

export class InvalidKeyError extends Error {
  readonly code = 'ERR_INVALID_SIGNING_KEY';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidKeyError';
  }
}

/** Parses a PKCS#1 or PKCS#8 PEM RSA private key of at least 2048 bits. */
export async function parseSigningKey(pem: string | Buffer, source: string): Promise<SigningKey> {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new InvalidKeyError(`${source} does not hold a PEM private key (PKCS#1 or PKCS#8 RSA expected)`);
  }
  if (privateKey.asymmetricKeyType !== 'rsa') {
    throw new InvalidKeyError(`${source} holds a ${privateKey.asymmetricKeyType ?? 'unknown'} key; an RSA key is required`);
  }
  const bits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) {
    throw new InvalidKeyError(`${source} holds a ${bits}-bit RSA key; at least ${MIN_RSA_BITS} bits are required`);
  }
  return fromPrivateKey(privateKey);
}

export async function fromPrivateKey(privateKey: KeyObject): Promise<SigningKey> {
  const publicKey = createPublicKey(privateKey);
  const exported = publicKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint({ kty: 'RSA', n: exported.n, e: exported.e }, 'sha256');
  const publicJwk: JWK = { kty: 'RSA', kid, use: 'sig', alg: 'RS256', n: exported.n, e: exported.e };
  return Object.freeze({ kid, privateKey, publicKey, publicJwk: Object.freeze(publicJwk) });
}

/** Generates a fresh 2048-bit RSA key and returns it as PKCS#8 PEM. */
export async function generateSigningKeyPem(bits = MIN_RSA_BITS): Promise<string> {
  const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: bits, publicExponent: 0x10001 });
  return privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
}
