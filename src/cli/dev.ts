import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../config/config.ts';
import { createLogger } from '../telemetry/logger.ts';
import { startEmbeddedPostgres, takeOverSignals } from '../dev/embedded-postgres.ts';
import { writeDevTls } from './dev-tls.ts';
import { serveUntilSignalled } from './serve.ts';
import type { RunningService } from '../service.ts';
import { announceDevEnrolment } from './token.ts';

export const DEV_TLS_DIR = path.join('deploy', 'dev-tls');

/** Extra start-up output of dev mode (enrolment token, agent configuration, ...). */
export type DevAnnouncer = (service: RunningService, write: (text: string) => void) => Promise<void> | void;
export const devAnnouncers: DevAnnouncer[] = [];
devAnnouncers.push(announceDevEnrolment);

/**
 * `ingest dev`: the whole service on a laptop with nothing installed — an embedded PostgreSQL under
 * `.data/dev`, the dev TLS pair in deploy/dev-tls, a key file under `.data/dev`. Ctrl-C stops everything.
 */
export async function runDev(): Promise<void> {
  const dataDir = path.resolve(process.env['INGEST_DEV_DATA_DIR'] ?? path.join('.data', 'dev'));
  const tls = { certFile: path.join(DEV_TLS_DIR, 'server.crt'), keyFile: path.join(DEV_TLS_DIR, 'server.key') };
  if (!existsSync(tls.certFile) || !existsSync(tls.keyFile)) await writeDevTls(DEV_TLS_DIR);
  const postgres = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'postgres'), persistent: true });
  try {
    const config = loadConfig({
      INGEST_LOG_LEVEL: 'info',
      INGEST_JWT_KEY_FILE: path.join(dataDir, 'jwt_key.pem'),
      INGEST_SHUTDOWN_GRACE_SECONDS: '5',
      ...process.env,
      DATABASE_URL: postgres.url,
      INGEST_TLS_CERT: path.resolve(tls.certFile),
      INGEST_TLS_KEY: path.resolve(tls.keyFile),
    });
    const logger = createLogger(config.logLevel);
    await serveUntilSignalled(config, logger, async (service) => {
      // From here Ctrl-C drains the service first, then the `finally` below stops PostgreSQL.
      takeOverSignals();
      const lines: string[] = [
        '',
        'ct-ops ingest is running in dev mode',
        `  gRPC (TLS):  localhost:${service.grpcPort}   (CA certificate for agents: ${path.resolve(tls.certFile)})`,
        `  HTTP:        http://localhost:${service.httpPort}/healthz  /readyz  /.well-known/jwks.json  /metrics`,
        `  PostgreSQL:  ${postgres.url.replace(/:[^:@/]+@/, ':***@')}  (data in ${path.join(dataDir, 'postgres')})`,
      ];
      const write = (text: string): void => void lines.push(text);
      for (const announce of devAnnouncers) await announce(service, write);
      lines.push('Press Ctrl-C to stop.', '');
      process.stdout.write(`${lines.join('\n')}\n`);
    });
  } finally {
    await postgres.stop();
  }
}
