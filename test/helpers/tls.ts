import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { issueCertificate, type IssuedCertificate } from '../../src/tls/certificates.ts';

export interface TestPki {
  readonly dir: string;
  readonly ca: IssuedCertificate;
  readonly server: IssuedCertificate;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** A CA and a server certificate for localhost/127.0.0.1, written to a fresh temp directory. */
export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ingest-pki-'));
  const ca = await issueCertificate({ commonName: 'ingest test CA', isCa: true });
  const server = await issueCertificate({ commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], issuer: ca });
  const caFile = path.join(dir, 'ca.crt');
  const certFile = path.join(dir, 'server.crt');
  const keyFile = path.join(dir, 'server.key');
  await Promise.all([writeFile(caFile, ca.certPem), writeFile(certFile, server.certPem), writeFile(keyFile, server.keyPem, { mode: 0o600 })]);
  return { dir, ca, server, caFile, certFile, keyFile };
}

export function clientCertificate(ca: IssuedCertificate, organisationId: string, agentId: string): Promise<IssuedCertificate> {
  return issueCertificate({
    commonName: agentId,
    uris: [`spiffe://ct-ops/org/${organisationId}/agent/${agentId}`],
    usage: 'client',
    issuer: ca,
  });
}
