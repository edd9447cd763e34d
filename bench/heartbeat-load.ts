// Heartbeat load benchmark (SPEC §14, issue 4): N virtual agents, each with its own Ed25519 key, enrol
// through an auto-approve token and stream heartbeats over real TLS to a real `ingest serve` process
// (a separate process, so the generator does not share the service's event loop) backed by PostgreSQL.
// Reports registrations/s, acknowledged heartbeats/s, p50/p99 acknowledgement latency, SQL statements
// per heartbeat (the service's own counter, cross-checked with pg_stat_database), idle streams and memory
// per stream, and how long a reconnect storm (every connection dropped at once) takes to recover.
// Traffic goes to 127.0.0.1 only; every loop is bounded by --duration.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { webcrypto } from 'node:crypto';
import { Command } from 'commander';
import pg from 'pg';
import { startEmbeddedPostgres, freePort, type EmbeddedPostgresHandle } from '../src/dev/embedded-postgres.ts';
import { migrate } from '../src/db/migrate.ts';
import { createEnrolmentToken } from '../src/enrolment/enrolment-tokens.ts';
import { issueCertificate } from '../src/tls/certificates.ts';
import { ingestClient, type IngestClient } from '../test/helpers/client.ts';
import { openHeartbeat } from '../test/helpers/heartbeat.ts';
import { writeFile } from 'node:fs/promises';

const options = new Command('heartbeat-load')
  .option('--agents <n>', 'virtual agents (one stream each)', (v) => Number(v), 1000)
  .option('--interval-ms <n>', 'heartbeat interval per agent', (v) => Number(v), 200)
  .option('--duration <s>', 'measured seconds of streaming', (v) => Number(v), 60)
  .option('--warmup <s>', 'seconds of streaming before measuring', (v) => Number(v), 5)
  .option('--connections <n>', 'TLS connections the agents share', (v) => Number(v), 50)
  .option('--database-url <url>', 'PostgreSQL admin URL (default: BENCH_DATABASE_URL, else an embedded server)')
  .option('--service-env <k=v...>', 'extra environment for the service', [])
  .parse()
  .opts<{ agents: number; intervalMs: number; duration: number; warmup: number; connections: number; databaseUrl?: string; serviceEnv: string[] }>();

const log = (line: string): void => void process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ingest-bench-'));
  let embedded: EmbeddedPostgresHandle | undefined;
  let service: ChildProcess | undefined;
  try {
    let adminUrl = options.databaseUrl ?? process.env['BENCH_DATABASE_URL'];
    if (adminUrl === undefined) {
      embedded = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), persistent: false });
      adminUrl = embedded.url;
    }
    const dbName = `ingest_bench_${Date.now()}`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    await admin.end();
    const dbUrl = new URL(adminUrl);
    dbUrl.pathname = `/${dbName}`;
    const pool = new pg.Pool({ connectionString: dbUrl.toString(), max: 2 });
    await migrate(pool);

    const ca = await issueCertificate({ commonName: 'bench CA', isCa: true });
    const server = await issueCertificate({ commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], issuer: ca });
    await writeFile(path.join(dir, 'server.crt'), server.certPem);
    await writeFile(path.join(dir, 'server.key'), server.keyPem);
    const [grpcPort, httpPort] = [await freePort(), await freePort()];
    const extraEnv = Object.fromEntries(options.serviceEnv.map((kv) => [kv.split('=')[0], kv.slice(kv.indexOf('=') + 1)]));
    service = spawn(path.resolve('node_modules/.bin/node'), [path.resolve('src/main.ts'), 'serve'], {
      env: {
        PATH: process.env['PATH'] ?? '',
        DATABASE_URL: dbUrl.toString(),
        INGEST_TLS_CERT: path.join(dir, 'server.crt'),
        INGEST_TLS_KEY: path.join(dir, 'server.key'),
        INGEST_JWT_KEY_FILE: path.join(dir, 'jwt_key.pem'),
        INGEST_GRPC_PORT: String(grpcPort),
        INGEST_HTTP_PORT: String(httpPort),
        INGEST_BIND_ADDRESS: '127.0.0.1',
        INGEST_LOG_LEVEL: 'warn',
        ...extraEnv,
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    await waitFor(async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined))?.status === 200, 60_000);

    const token = await createEnrolmentToken(pool, { organisationName: 'bench', autoApprove: true });
    const clients: IngestClient[] = Array.from({ length: options.connections }, () =>
      ingestClient(grpcPort, { caPem: ca.certPem }, { 'grpc.use_local_subchannel_pool': 1 }),
    );

    // Registration: each agent has its own Ed25519 key.
    log(`registering ${options.agents} agents...`);
    const registerStarted = performance.now();
    const jwts: string[] = [];
    const concurrency = 32;
    for (let i = 0; i < options.agents; i += concurrency) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(concurrency, options.agents - i) }, async (_, j) => {
          const keys = (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as unknown as webcrypto.CryptoKeyPair;
          const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey)).toString('base64');
          const response = await clients[(i + j) % clients.length]!.register({
            org_token: token.token,
            public_key: `-----BEGIN PUBLIC KEY-----\n${spki}\n-----END PUBLIC KEY-----\n`,
            agent_info: { agent_id: '', version: '1.0.0', hostname: `bench-${i + j}` },
            platform_info: { os: 'linux', arch: 'amd64', os_version: '6.1', ip_addresses: [`10.${(i + j) >> 16 & 255}.${(i + j) >> 8 & 255}.${(i + j) & 255}`] },
          });
          if (response.status !== 'active') throw new Error(`registration returned ${response.status}`);
          return response.jwt_token;
        }),
      );
      jwts.push(...batch);
    }
    const registrationsPerSecond = options.agents / ((performance.now() - registerStarted) / 1000);
    const baseline = await counters(httpPort, pool, dbName);

    // Streaming: every agent sends a heartbeat every interval, without waiting for acknowledgements.
    const latencies: number[] = [];
    let measuring = false;
    let acknowledged = 0;
    let failedStreams = 0;
    let stopping = false;
    const streams = jwts.map((jwt, i) => {
      const stream = openHeartbeat(clients[i % clients.length]!, { jwt });
      void stream.ended.then((s) => {
        if (!stopping) {
          failedStreams += 1;
          log(`stream ended early: ${s.code} ${s.details}`);
        }
      });
      return stream;
    });
    const timers = streams.map((stream, i) => {
      const send = (): void => {
        const started = performance.now();
        stream.send({ cpu_percent: Math.random() * 100, memory_percent: 50, disk_percent: 60, uptime_seconds: 1000, agent_version: '1.0.0' }).then(
          (response) => {
            if (measuring && response.ok) {
              acknowledged += 1;
              latencies.push(performance.now() - started);
            }
          },
          () => undefined,
        );
      };
      // Spread the agents evenly over the interval.
      return setTimeout(() => {
        send();
        timers[i] = setInterval(send, options.intervalMs);
      }, (i * options.intervalMs) / streams.length);
    });

    await sleep(options.warmup * 1000);
    const before = await counters(httpPort, pool, dbName);
    measuring = true;
    const started = performance.now();
    await sleep(options.duration * 1000);
    measuring = false;
    const elapsed = (performance.now() - started) / 1000;
    const after = await counters(httpPort, pool, dbName);
    for (const t of timers) clearTimeout(t), clearInterval(t);
    // Idle phase: every stream stays open without traffic; memory per connected stream.
    await sleep(3_000);
    const idle = await counters(httpPort, pool, dbName);
    const connectedIdle = idle.connectedStreams;

    // Reconnect storm: every connection drops at once, then every agent reconnects and sends a heartbeat.
    stopping = true;
    for (const s of streams) s.call.cancel();
    for (const c of clients) c.close();
    await Promise.all(streams.map((s) => s.ended));
    const stormStarted = performance.now();
    const stormClients: IngestClient[] = Array.from({ length: options.connections }, () =>
      ingestClient(grpcPort, { caPem: ca.certPem }, { 'grpc.use_local_subchannel_pool': 1 }),
    );
    const reopened = jwts.map((jwt, i) => openHeartbeat(stormClients[i % stormClients.length]!, { jwt }));
    const stormAcks = await Promise.all(reopened.map((s) => s.send({ cpu_percent: 1 }).then((r) => r.ok, () => false)));
    const stormRecoverySeconds = (performance.now() - stormStarted) / 1000;
    for (const s of reopened) s.close();
    await Promise.all(reopened.map((s) => s.ended));
    for (const c of stormClients) c.close();

    latencies.sort((a, b) => a - b);
    const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? Number.NaN;
    const serverAcks = after.acknowledged - before.acknowledged;
    const result = {
      agents: options.agents,
      interval_ms: options.intervalMs,
      offered_heartbeats_per_second: Math.round((options.agents * 1000) / options.intervalMs),
      duration_seconds: Math.round(elapsed),
      registrations_per_second: Math.round(registrationsPerSecond),
      acknowledged_heartbeats_per_second: Math.round(acknowledged / elapsed),
      ack_latency_ms_p50: Number(pct(50).toFixed(1)),
      ack_latency_ms_p99: Number(pct(99).toFixed(1)),
      sql_statements_per_heartbeat: Number(((after.statements - before.statements) / serverAcks).toFixed(4)),
      db_transactions_per_heartbeat: Number(((after.commits - before.commits) / serverAcks).toFixed(4)),
      mean_batch_size: Number(((after.batchCount === before.batchCount ? 0 : (after.batchSum - before.batchSum) / (after.batchCount - before.batchCount))).toFixed(1)),
      service_rss_mib: Math.round(after.rssBytes / 1048576),
      idle_connected_streams: connectedIdle,
      memory_per_idle_stream_kib: Math.round((idle.rssBytes - baseline.rssBytes) / Math.max(1, connectedIdle) / 1024),
      reconnect_storm_recovery_seconds: Number(stormRecoverySeconds.toFixed(2)),
      reconnect_storm_acknowledged: stormAcks.filter(Boolean).length,
      streams_ended_early: failedStreams,
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    await pool.end();
  } finally {
    if (service !== undefined && service.exitCode === null) {
      service.kill('SIGTERM');
      await new Promise((r) => service?.once('exit', r));
    }
    await embedded?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

interface Counters {
  acknowledged: number;
  statements: number;
  commits: number;
  batchSum: number;
  batchCount: number;
  rssBytes: number;
  connectedStreams: number;
}

async function counters(httpPort: number, pool: pg.Pool, dbName: string): Promise<Counters> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const value = (name: string): number => Number(new RegExp(`^${name} ([0-9.e+]+)$`, 'm').exec(text)?.[1] ?? 0);
  const { rows } = await pool.query<{ commits: string }>('SELECT xact_commit::text AS commits FROM pg_stat_database WHERE datname = $1', [dbName]);
  return {
    acknowledged: value('ingest_heartbeats_acknowledged_total'),
    statements: value('ingest_batch_statements_total'),
    commits: Number(rows[0]?.commits ?? 0),
    batchSum: value('ingest_batch_size_sum'),
    batchCount: value('ingest_batch_size_count'),
    rssBytes: value('process_resident_memory_bytes'),
    connectedStreams: value('ingest_connected_streams'),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('service did not become ready');
    await sleep(100);
  }
}

await main();
process.exit(0);
