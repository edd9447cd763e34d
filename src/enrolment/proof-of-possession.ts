import 'reflect-metadata';
import { timingSafeEqual, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { rawEd25519FromSpki, rawEd25519Key } from './agent-public-key.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export type ProofResult = { readonly proven: true } | { readonly proven: false; readonly reason: 'malformed_csr' | 'bad_signature' | 'key_mismatch' | 'registered_key_unreadable' };

/**
 * SPEC §5.3 proof of possession: the CSR's self-signature verifies and its subject public key is the registered
 * Ed25519 key. Keys are compared as raw 32 bytes because the registered PEM may hold SPKI or the raw key.
 */
export async function verifyProofOfPossession(csrDer: Uint8Array, registeredPublicKey: string): Promise<ProofResult> {
  const registered = rawEd25519Key(registeredPublicKey);
  if (registered === undefined) return { proven: false, reason: 'registered_key_unreadable' };
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(Buffer.from(csrDer));
  } catch {
    return { proven: false, reason: 'malformed_csr' };
  }
  const presented = rawEd25519FromSpki(new Uint8Array(csr.publicKey.rawData));
  if (presented === undefined || presented.length !== registered.length || !timingSafeEqual(presented, registered)) return { proven: false, reason: 'key_mismatch' };
  let signatureValid = false;
  try {
    signatureValid = await csr.verify();
  } catch {
    signatureValid = false;
  }
  return signatureValid ? { proven: true } : { proven: false, reason: 'bad_signature' };
}
