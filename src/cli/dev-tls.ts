import { mkdir, writeFile, chmod } from 'node:fs/promises';
import path from 'node:path';
import { issueCertificate } from '../tls/certificates.ts';

/** Names a dev certificate is valid for: loopback plus the Helm chart's in-cluster service names. */
export const DEV_TLS_DNS_NAMES = [
  'localhost',
  'ct-ops-ingest',
  'ct-ops-ingest.default',
  'ct-ops-ingest.default.svc',
  'ct-ops-ingest.default.svc.cluster.local',
  'ct-ops-ingest-grpc',
  'ct-ops-ingest-grpc.default',
  'ct-ops-ingest-grpc.default.svc',
  'ct-ops-ingest-grpc.default.svc.cluster.local',
];

export interface DevTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/** Writes a self-signed server certificate and key (SPEC §9 `make dev-tls`). */
export async function writeDevTls(directory: string): Promise<DevTlsFiles> {
  await mkdir(directory, { recursive: true });
  const issued = await issueCertificate({
    commonName: 'ct-ops-ingest dev',
    dnsNames: DEV_TLS_DNS_NAMES,
    ipAddresses: ['127.0.0.1', '::1'],
    validDays: 825,
    usage: 'server',
  });
  const certFile = path.join(directory, 'server.crt');
  const keyFile = path.join(directory, 'server.key');
  await writeFile(certFile, issued.certPem);
  await writeFile(keyFile, issued.keyPem, { mode: 0o600 });
  await chmod(keyFile, 0o600);
  return { certFile, keyFile };
}
