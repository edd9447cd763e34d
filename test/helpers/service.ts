import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { startService, type ComponentFactory, type RunningService } from '../../src/service.ts';
import { serviceComponents } from '../../src/components.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { createTestPki, type TestPki } from './tls.ts';
import { ingestClient, type IngestClient, type ClientTls } from './client.ts';

export interface TestService {
  readonly service: RunningService;
  readonly config: Config;
  readonly db: TestDatabase;
  readonly pki: TestPki;
  readonly dir: string;
  /** Every log line the service wrote, as text (JSON lines). */
  logs(): string;
  client(tls?: Partial<ClientTls>, options?: Record<string, unknown>): IngestClient;
  http(pathname: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

export interface TestServiceOptions {
  readonly env?: Record<string, string>;
  /** Reuse a database (e.g. two services on one database); created and dropped otherwise. */
  readonly db?: TestDatabase;
  readonly pki?: TestPki;
  /** Extra components started after the real ones (test probes: handlers that report what they saw, drain hooks). */
  readonly components?: readonly ComponentFactory[];
}

/** Starts the real service in-process: real TLS gRPC and HTTP on loopback ports, real PostgreSQL. */
export async function startTestService(options: TestServiceOptions = {}): Promise<TestService> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ingest-svc-'));
  const db = options.db ?? (await createTestDatabase());
  const pki = options.pki ?? (await createTestPki());
  // What this helper created is removed again, also when the service refuses to start (a tested outcome).
  const removeOwned = async (): Promise<void> => {
    if (options.db === undefined) await db.drop();
    await rm(dir, { recursive: true, force: true });
    if (options.pki === undefined) await rm(pki.dir, { recursive: true, force: true });
  };
  let config: Config;
  let service: RunningService;
  const captured: string[] = [];
  try {
    config = loadConfig({
      DATABASE_URL: db.url,
      INGEST_TLS_CERT: pki.certFile,
      INGEST_TLS_KEY: pki.keyFile,
      INGEST_JWT_KEY_FILE: path.join(dir, 'keys', 'jwt_key.pem'),
      INGEST_GRPC_PORT: '0',
      INGEST_HTTP_PORT: '0',
      INGEST_BIND_ADDRESS: '127.0.0.1',
      INGEST_SHUTDOWN_GRACE_SECONDS: '5',
      INGEST_TLS_RELOAD_INTERVAL_SECONDS: '1',
      INGEST_LOG_LEVEL: process.env['TEST_LOG_LEVEL'] ?? 'debug',
      ...options.env,
    });
    const sink = new PassThrough();
    sink.on('data', (chunk: Buffer) => {
      captured.push(chunk.toString('utf8'));
      if (process.env['TEST_LOG'] === '1') process.stderr.write(chunk);
    });
    const logger = createLogger(config.logLevel, sink);
    service = await startService(config, { logger, components: [...serviceComponents, ...(options.components ?? [])] });
  } catch (error) {
    await removeOwned();
    throw error;
  }
  const clients: IngestClient[] = [];
  let stopped = false;
  return {
    service,
    config,
    db,
    pki,
    dir,
    logs: () => captured.join(''),
    client: (tls = {}, clientOptions = {}) => {
      const client = ingestClient(service.grpcPort, { caPem: pki.ca.certPem, ...tls }, clientOptions);
      clients.push(client);
      return client;
    },
    http: (pathname, init) => fetch(`http://127.0.0.1:${service.httpPort}${pathname}`, init),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      for (const client of clients) client.close();
      await service.shutdown();
      await removeOwned();
    },
  };
}
