import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContextOptions } from 'node:tls';

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCaFile: string | undefined;
}

export class TlsConfigError extends Error {
  readonly code = 'ERR_TLS_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'TlsConfigError';
  }
}

async function readPem(file: string, variable: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new TlsConfigError(`${variable}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** Reads the certificate, key and optional client CA and checks they form a usable secure context. */
export async function readTlsContextOptions(files: TlsFiles): Promise<SecureContextOptions> {
  const [cert, key, ca] = await Promise.all([
    readPem(files.certFile, 'INGEST_TLS_CERT'),
    readPem(files.keyFile, 'INGEST_TLS_KEY'),
    files.clientCaFile === undefined ? Promise.resolve(undefined) : readPem(files.clientCaFile, 'INGEST_TLS_CLIENT_CA'),
  ]);
  const options: SecureContextOptions = ca === undefined ? { cert, key } : { cert, key, ca };
  try {
    createSecureContext(options);
  } catch (error) {
    throw new TlsConfigError(`INGEST_TLS_CERT/INGEST_TLS_KEY: not a usable certificate and key pair (${(error as Error).message})`);
  }
  return options;
}
