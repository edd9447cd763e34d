import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { existsSync, realpathSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { createTestPki, type TestPki } from '../helpers/tls.ts';
import { ingestClient } from '../helpers/client.ts';
import { callRenewCertificate } from '../helpers/grpc-probe.ts';

const ROOT = path.resolve('.');
const NODE = path.join(ROOT, 'node_modules/.bin/node');
const MAIN = path.join(ROOT, 'src/main.ts');

interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A subprocess whose output is collected; `exited` settles when it ends (killed after `limitMs`). */
class Subprocess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<Finished>;

  constructor(command: string, args: string[], options: { env: Record<string, string>; cwd?: string; limitMs?: number; detached?: boolean }) {
    this.child = spawn(command, args, { env: options.env, cwd: options.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false });
    this.child.stdout?.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    const timer = setTimeout(() => this.child.kill('SIGKILL'), options.limitMs ?? 60_000);
    this.exited = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  /** Resolves with the first match of `pattern` in stdout; rejects if the process ends first or after `limitMs`. */
  async waitFor(pattern: RegExp, limitMs = 30_000): Promise<RegExpExecArray> {
    const until = Date.now() + limitMs;
    let ended = false;
    void this.exited.then(() => (ended = true));
    for (;;) {
      const match = pattern.exec(this.stdout);
      if (match !== null) return match;
      if (ended || Date.now() > until) {
        throw new Error(`no ${pattern} in the output${ended ? ' (the process exited)' : ''}:\n${this.stdout}\n${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const baseEnv = (): Record<string, string> => ({ PATH: `${path.join(ROOT, 'node_modules/.bin')}:${process.env['PATH'] ?? ''}`, HOME: process.env['HOME'] ?? '/tmp' });

const run = (args: string[], env: Record<string, string>, options: { cwd?: string; limitMs?: number; command?: string } = {}): Promise<Finished> =>
  new Subprocess(options.command ?? NODE, options.command === undefined ? [MAIN, ...args] : args, { env: { ...baseEnv(), ...env }, ...options }).exited;

function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('ingest serve (subprocess)', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let dir: string;
  before(async () => {
    [db, pki, dir] = await Promise.all([createTestDatabase(), createTestPki(), mkdtemp(path.join(tmpdir(), 'ingest-e2e-'))]);
  });
  after(async () => {
    await db.drop();
    await rm(pki.dir, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  });

  const serveEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
    DATABASE_URL: db.url,
    INGEST_TLS_CERT: pki.certFile,
    INGEST_TLS_KEY: pki.keyFile,
    INGEST_JWT_KEY_FILE: path.join(dir, 'keys', `jwt-${Math.random().toString(16).slice(2)}.pem`),
    INGEST_GRPC_PORT: '0',
    INGEST_HTTP_PORT: '0',
    INGEST_BIND_ADDRESS: '127.0.0.1',
    INGEST_SHUTDOWN_GRACE_SECONDS: '3',
    ...extra,
  });

  for (const args of [['serve'], []]) {
    it(`should exit non-zero naming DATABASE_URL, INGEST_TLS_CERT and INGEST_TLS_KEY when they are missing (${args.length === 0 ? 'default command' : 'serve'})`, async () => {
      const result = await run(args, { INGEST_HTTP_PORT: '0', INGEST_GRPC_PORT: '0' });
      assert.equal(result.code, 2, result.stderr);
      for (const name of ['DATABASE_URL', 'INGEST_TLS_CERT', 'INGEST_TLS_KEY']) assert.match(result.stderr, new RegExp(`- ${name} is required`));
      assert.doesNotMatch(result.stdout, /serving/);
    });
  }

  it('should exit non-zero before binding any port when a variable is invalid', async () => {
    const result = await run(['serve'], serveEnv({ INGEST_HTTP_PORT: 'eighty' }));
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /INGEST_HTTP_PORT must be an integer port 0-65535/);
    assert.doesNotMatch(result.stdout, /serving/);
  });

  it('should refuse to start with a clear error when the TLS certificate cannot be read', async () => {
    for (const certFile of [path.join(dir, 'missing.crt'), dir]) {
      const result = await run(['serve'], serveEnv({ INGEST_TLS_CERT: certFile }));
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, new RegExp(`INGEST_TLS_CERT: cannot read ${certFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\((ENOENT|EISDIR)\\)`));
      assert.doesNotMatch(result.stdout, /ct-ops ingest serving/);
    }
  });

  it('should refuse a TLS key that does not belong to the certificate', async () => {
    const other = await createTestPki();
    try {
      const result = await run(['serve'], serveEnv({ INGEST_TLS_KEY: other.keyFile }));
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /INGEST_TLS_CERT\/INGEST_TLS_KEY: not a usable certificate and key pair/);
    } finally {
      await rm(other.dir, { recursive: true, force: true });
    }
  });

  it('should refuse to start with an existing invalid signing key file and leave it untouched', async () => {
    const keyFile = path.join(dir, 'invalid-key.pem');
    await writeFile(keyFile, 'not a key at all\n', { mode: 0o600 });
    const before = await stat(keyFile);
    const result = await run(['serve'], serveEnv({ INGEST_JWT_KEY_FILE: keyFile }));
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`signing key ${keyFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} does not hold a PEM private key`));
    assert.equal(await readFile(keyFile, 'utf8'), 'not a key at all\n');
    assert.equal((await stat(keyFile)).mtimeMs, before.mtimeMs);
  });

  it('should exit non-zero, not hang, when the HTTP port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as AddressInfo).port;
    try {
      const result = await run(['serve'], serveEnv({ INGEST_HTTP_PORT: String(taken), INGEST_LOG_LEVEL: 'info' }), { limitMs: 30_000 });
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /EADDRINUSE/);
    } finally {
      blocker.close();
    }
  });

  it('should serve /healthz and gRPC, then drain and exit 0 on SIGTERM with a client still connected', async () => {
    const server = new Subprocess(NODE, [MAIN, 'serve'], { env: { ...baseEnv(), ...serveEnv({ INGEST_GRCP_PORT: '9999' }) } });
    try {
      const line = await server.waitFor(/^.*"msg":"ct-ops ingest serving".*$/m);
      // A misspelt variable is called out rather than silently ignored.
      const warning = await server.waitFor(/^.*ignoring unknown INGEST_\* variables.*$/m);
      assert.deepEqual((JSON.parse(warning[0]) as { variables: string[] }).variables, ['INGEST_GRCP_PORT']);
      const { grpcPort, httpPort } = JSON.parse(line[0]) as { grpcPort: number; httpPort: number };
      const res = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
      assert.equal(await res.text(), 'ok\n');
      const client = ingestClient(grpcPort, { caPem: pki.ca.certPem });
      try {
        assert.equal((await callRenewCertificate(client)).code, status.UNIMPLEMENTED);
        server.child.kill('SIGTERM');
        const finished = await server.exited;
        assert.equal(finished.code, 0, finished.stderr + finished.stdout.slice(-2000));
        assert.match(finished.stdout, /"msg":"shutdown complete"/);
      } finally {
        client.close();
      }
      assert.equal(await portAccepts(httpPort), false);
      assert.equal(await portAccepts(grpcPort), false);
    } finally {
      server.child.kill('SIGKILL');
    }
  });
});

/** The machine's own `node` (PATH without node_modules/.bin), when it is not the pinned Node 24. */
function systemNode(): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    if (dir === '' || path.resolve(dir).startsWith(path.join(ROOT, 'node_modules'))) continue;
    const candidate = path.join(dir, 'node');
    if (existsSync(candidate) && realpathSync(candidate) !== realpathSync(NODE)) return candidate;
  }
  return undefined;
}

describe('ingest executable', () => {
  it('should print help through bin/ingest.js', async () => {
    const result = await run([path.join(ROOT, 'bin/ingest.js'), '--help'], {}, { command: NODE });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^Usage: ingest /m);
    for (const command of ['serve', 'migrate', 'dev']) assert.match(result.stdout, new RegExp(`^\\s+${command}\\b`, 'm'));
  });

  it('should run bin/ingest.js under the machine\'s own Node, handing SIGTERM on to the service', { skip: systemNode() === undefined }, async () => {
    const node = systemNode() ?? 'node';
    const db = await createTestDatabase();
    const pki = await createTestPki();
    const dir = await mkdtemp(path.join(tmpdir(), 'ingest-sysnode-'));
    const env = {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      HOME: process.env['HOME'] ?? '/tmp',
      DATABASE_URL: db.url,
      INGEST_TLS_CERT: pki.certFile,
      INGEST_TLS_KEY: pki.keyFile,
      INGEST_JWT_KEY_FILE: path.join(dir, 'jwt_key.pem'),
      INGEST_GRPC_PORT: '0',
      INGEST_HTTP_PORT: '0',
      INGEST_BIND_ADDRESS: '127.0.0.1',
      INGEST_SHUTDOWN_GRACE_SECONDS: '3',
    };
    const server = new Subprocess(node, [path.join(ROOT, 'bin/ingest.js'), 'serve'], { env, cwd: dir });
    try {
      const line = await server.waitFor(/^.*"msg":"ct-ops ingest serving".*$/m);
      const { httpPort } = JSON.parse(line[0]) as { httpPort: number };
      assert.equal(await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).text(), 'ok\n');
      server.child.kill('SIGTERM');
      const finished = await server.exited;
      assert.equal(finished.code, 0, finished.stderr);
      assert.match(finished.stdout, /"msg":"shutdown complete"/);
      assert.equal(await portAccepts(httpPort), false);
    } finally {
      server.child.kill('SIGKILL');
      await db.drop();
      await rm(pki.dir, { recursive: true, force: true });
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('should print help through `npx ingest`', async () => {
    const result = await run(['--no-install', 'ingest', '--help'], {}, { command: 'npx' });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^Usage: ingest /m);
  });

  it('should exit 2 on an unknown command or option', async () => {
    for (const args of [['no-such-command'], ['migrate', '--no-such-option']]) {
      const result = await run(args, {});
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, /no-such-/);
    }
  });

  it('should build dist/ingest with `make ingest` and migrate a database with it', { timeout: 240_000 }, async () => {
    // Built in a copy of the sources so the working tree's dist/ is left alone.
    const copy = await mkdtemp(path.join(tmpdir(), 'ingest-build-'));
    const db = await createTestDatabase({ migrated: false });
    try {
      for (const entry of ['src', 'proto', 'bin', 'Makefile', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) {
        await cp(path.join(ROOT, entry), path.join(copy, entry), { recursive: true });
      }
      await symlink(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
      // -o node_modules: the dependencies are installed already; never run npm ci here.
      const build = await run(['-o', 'node_modules', 'ingest'], {}, { command: 'make', cwd: copy, limitMs: 200_000 });
      assert.equal(build.code, 0, build.stdout + build.stderr);
      const executable = path.join(copy, 'dist', 'ingest');
      assert.ok(((await stat(executable)).mode & 0o111) !== 0, 'dist/ingest is not executable');
      const migrated = await run(['migrate', '--json'], { DATABASE_URL: db.url }, { command: executable, cwd: tmpdir() });
      assert.equal(migrated.code, 0, migrated.stderr);
      assert.ok((JSON.parse(migrated.stdout) as { applied: number[] }).applied.length >= 1);
      const { rows } = await db.pool.query<{ n: string }>('SELECT count(*)::text AS n FROM schema_migrations');
      assert.ok(Number(rows[0]?.n) >= 1);
      const help = await run(['--help'], {}, { command: executable, cwd: tmpdir() });
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, /^Usage: ingest /m);
    } finally {
      await db.drop();
      await rm(copy, { recursive: true, force: true });
    }
  });
});

describe('ingest dev (subprocess)', () => {
  for (const target of ['process', 'process group'] as const) {
  it(`should run with an embedded PostgreSQL, answer /healthz, and stop everything on SIGINT to the ${target}`, { timeout: 180_000 }, async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'ingest-dev-'));
    // Run as root, the embedded server runs as a `postgres` user that must be able to reach its data directory.
    await chmod(work, 0o755);
    const dataDir = path.join(work, 'data');
    await mkdir(dataDir);
    const dev = new Subprocess(NODE, [MAIN, 'dev'], {
      cwd: work,
      env: { ...baseEnv(), INGEST_DEV_DATA_DIR: dataDir, INGEST_HTTP_PORT: '0', INGEST_GRPC_PORT: '0', INGEST_BIND_ADDRESS: '127.0.0.1', INGEST_LOG_LEVEL: 'warn' },
      limitMs: 170_000,
      // A terminal's Ctrl-C reaches the whole process group: the service and its PostgreSQL alike.
      detached: target === 'process group',
    });
    try {
      await dev.waitFor(/running in dev mode/, 120_000);
      const http = await dev.waitFor(/HTTP:\s+http:\/\/localhost:(\d+)\/healthz/);
      const grpc = await dev.waitFor(/gRPC \(TLS\):\s+localhost:(\d+)/);
      const pg = await dev.waitFor(/PostgreSQL:\s+postgres:\/\/[^@]+@127\.0\.0\.1:(\d+)\//);
      assert.doesNotMatch(dev.stdout, /ingest-dev@/, 'the database password is printed');
      const res = await fetch(`http://127.0.0.1:${http[1]}/healthz`);
      assert.equal(await res.text(), 'ok\n');
      assert.ok(existsSync(path.join(work, 'deploy', 'dev-tls', 'server.crt')));
      assert.ok(existsSync(path.join(dataDir, 'jwt_key.pem')));
      assert.ok(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid')));
      if (target === 'process group') process.kill(-(dev.child.pid ?? 0), 'SIGINT');
      else dev.child.kill('SIGINT');
      const finished = await dev.exited;
      assert.equal(finished.code, 0, finished.stderr);
      assert.equal(await portAccepts(Number(http[1])), false);
      assert.equal(await portAccepts(Number(grpc[1])), false);
      assert.equal(await portAccepts(Number(pg[1])), false, 'the embedded PostgreSQL is still listening');
      assert.equal(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid')), false, 'the embedded PostgreSQL did not stop');
    } finally {
      dev.child.kill('SIGKILL');
      await dev.exited.catch(() => undefined);
      await rm(work, { recursive: true, force: true });
    }
  });
  }
});
