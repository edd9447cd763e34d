import { createPublicKey } from 'node:crypto';

const PEM_BLOCK = /-----BEGIN [A-Z0-9 ]+-----([\s\S]*?)-----END [A-Z0-9 ]+-----/;

/**
 * The raw 32-byte Ed25519 key of a registered public key string. Agents send a PEM block holding either
 * SPKI DER or (some versions) the raw 32 bytes, so both are accepted. Undefined when it is neither.
 */
export function rawEd25519Key(publicKeyPem: string): Buffer | undefined {
  const body = PEM_BLOCK.exec(publicKeyPem)?.[1];
  if (body === undefined) return undefined;
  const der = Buffer.from(body.replace(/\s+/g, ''), 'base64');
  if (der.length === 32) return der;
  return rawEd25519FromSpki(der);
}

export function rawEd25519FromSpki(spkiDer: Uint8Array): Buffer | undefined {
  try {
    const key = createPublicKey({ key: Buffer.from(spkiDer), format: 'der', type: 'spki' });
    if (key.asymmetricKeyType !== 'ed25519') return undefined;
    const x = key.export({ format: 'jwk' }).x;
    return x === undefined ? undefined : Buffer.from(x, 'base64url');
  } catch {
    return undefined;
  }
}
