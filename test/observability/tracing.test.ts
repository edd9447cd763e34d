import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createServer, type AddressInfo } from 'node:net';
import { Metadata, type ClientDuplexStream } from '@grpc/grpc-js';
import { createEnrolmentToken } from '../../src/enrolment/enrolment-tokens.ts';
import type { HeartbeatRequest, HeartbeatResponse } from '../../src/grpc/messages.ts';
import { tracingEnabled } from '../../src/telemetry/tracing.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { createTestPki, type TestPki } from '../helpers/tls.ts';
import { ingestClient, type IngestClient } from '../helpers/client.ts';
import { generateAgentKey, registerRequest } from '../helpers/agent-keys.ts';
import { OtlpReceiver, type ReceivedSpan } from './otlp-receiver.ts';

const SPAN_KIND_SERVER = 2;

/** The service as an operator runs it: `node src/main.ts serve` in its own process, so tracing starts before anything loads. */
async function spawnService(env: Record<string, string>): Promise<{ child: ChildProcess; grpcPort: number; logs: string[] }> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('OTEL_') && !name.startsWith('INGEST_') && name !== 'DATABASE_URL'));
  const child = spawn(path.resolve('node_modules/.bin/node'), ['src/main.ts', 'serve'], { env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  const stderr: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
  const grpcPort = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`service exited with ${code}: ${stderr.join('')}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      logs.push(line);
      const parsed = JSON.parse(line) as { msg?: string; grpcPort?: number };
      if (parsed.msg === 'ct-ops ingest serving' && parsed.grpcPort !== undefined) resolve(parsed.grpcPort);
    });
  });
  return { child, grpcPort, logs };
}

function descendants(spans: readonly ReceivedSpan[], root: ReceivedSpan): ReceivedSpan[] {
  const children = spans.filter((s) => s.parentSpanId === root.spanId);
  return [...children, ...children.flatMap((c) => descendants(spans, c))];
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** SIGTERM, then resolves with the exit code once the process has exited and its stdout has been read to the end. */
async function stopService(service: { child: ChildProcess }): Promise<number | null> {
  const { child } = service;
  const closed = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null && child.stdout?.readableEnded === true) resolve(child.exitCode);
    else child.once('close', (code) => resolve(code));
  });
  if (child.exitCode === null) child.kill('SIGTERM');
  return closed;
}

describe('OpenTelemetry traces', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let dir: string;
  let receiver: OtlpReceiver;
  let service: { child: ChildProcess; grpcPort: number; logs: string[] };
  let client: IngestClient;
  const traceId = randomBytes(16).toString('hex');
  const callerSpanId = randomBytes(8).toString('hex');

  const serviceEnv = (): Record<string, string> => ({
    DATABASE_URL: db.url,
    INGEST_TLS_CERT: pki.certFile,
    INGEST_TLS_KEY: pki.keyFile,
    INGEST_JWT_KEY_FILE: path.join(dir, 'jwt_key.pem'),
    INGEST_GRPC_PORT: '0',
    INGEST_HTTP_PORT: '0',
    INGEST_BIND_ADDRESS: '127.0.0.1',
    INGEST_SHUTDOWN_GRACE_SECONDS: '5',
    INGEST_LOG_LEVEL: 'info',
  });

  before(async () => {
    [db, pki, dir] = await Promise.all([createTestDatabase(), createTestPki(), mkdtemp(path.join(tmpdir(), 'ingest-trace-'))]);
    receiver = new OtlpReceiver();
    const endpoint = await receiver.listen();
    service = await spawnService({
      ...serviceEnv(),
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '50',
    });
    client = ingestClient(service.grpcPort, { caPem: pki.ca.certPem });
  });

  after(async () => {
    client?.close();
    if (service !== undefined) await stopService(service);
    await receiver?.close();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
    await rm(pki.dir, { recursive: true, force: true });
  });

  it('should be off without an OTLP endpoint and on with one, unless disabled', () => {
    assert.equal(tracingEnabled({}), false);
    assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), true);
    assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }), true);
    assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }), false);
    assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' }), false);
  });

  it('should export the Register span under the caller’s traceparent with its PostgreSQL queries as children', async () => {
    const created = await createEnrolmentToken(db.pool, { organisationName: `org-${randomBytes(4).toString('hex')}`, autoApprove: true });
    const key = await generateAgentKey();
    const metadata = new Metadata();
    metadata.set('traceparent', `00-${traceId}-${callerSpanId}-01`);
    const response = await client.register(await registerRequest(created.token, key), metadata);
    assert.equal(response.status, 'active');

    const register = await receiver.waitFor((s) => s.name === 'ingest.register' && s.traceId === traceId);
    assert.equal(register.resource['service.name'], 'ct-ops-ingest');
    const rpc = receiver.spans.find((s) => s.spanId === register.parentSpanId);
    assert.ok(rpc !== undefined, 'the Register span has the gRPC server span as its parent');
    assert.equal(rpc.kind, SPAN_KIND_SERVER);
    assert.equal(rpc.traceId, traceId);
    assert.equal(rpc.parentSpanId, callerSpanId, 'the gRPC server span continues the trace from the traceparent metadata');

    // The export of child spans may come in a later batch than the parent: wait for the first query.
    await receiver.waitFor((s) => s.parentSpanId === register.spanId && s.scope.includes('instrumentation-pg'));
    const queries = descendants(receiver.spans, register).filter((s) => s.scope.includes('instrumentation-pg'));
    assert.ok(queries.length >= 2, `expected several PostgreSQL spans, got ${queries.map((s) => s.name).join(', ')}`);
    for (const query of queries) assert.equal(query.traceId, traceId);
  });

  it('should export heartbeat stream open, batch write (with its queries) and stream close spans', async () => {
    const created = await createEnrolmentToken(db.pool, { organisationName: `org-${randomBytes(4).toString('hex')}`, autoApprove: true });
    const key = await generateAgentKey();
    const registered = await client.register(await registerRequest(created.token, key));
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${registered.jwt_token}`);
    const stream: ClientDuplexStream<Partial<HeartbeatRequest>, HeartbeatResponse> = client.heartbeat(metadata);
    const ack = new Promise<HeartbeatResponse>((resolve, reject) => {
      stream.once('data', resolve);
      stream.once('error', reject);
    });
    stream.write({ cpu_percent: 12.5, memory_percent: 40, disk_percent: 50, uptime_seconds: 100 });
    assert.equal((await ack).ok, true);
    const closed = new Promise<void>((resolve) => stream.on('status', () => resolve()));
    stream.end();
    await closed;

    const open = await receiver.waitFor((s) => s.name === 'ingest.heartbeat.stream.open' && s.attributes['ingest.agent_id'] === registered.agent_id);
    assert.ok(open.parentSpanId !== undefined, 'stream open runs inside the Heartbeat RPC span');
    const batch = await receiver.waitFor((s) => s.name === 'ingest.batch.write');
    assert.ok(Number(batch.attributes['ingest.batch.size']) >= 1);
    await receiver.waitFor((s) => s.parentSpanId === batch.spanId && s.scope.includes('instrumentation-pg'));
    await receiver.waitFor((s) => s.name === 'ingest.heartbeat.stream.close' && s.attributes['ingest.agent_id'] === registered.agent_id);
  });

  it('should log an unreachable collector as JSON and keep every stdout line JSON', async () => {
    const unreachable = await spawnService({
      ...serviceEnv(),
      INGEST_JWT_KEY_FILE: path.join(dir, 'jwt_key_2.pem'),
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await closedPort()}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TIMEOUT: '1000',
      OTEL_BSP_SCHEDULE_DELAY: '50',
    });
    const other = ingestClient(unreachable.grpcPort, { caPem: pki.ca.certPem });
    try {
      const created = await createEnrolmentToken(db.pool, { organisationName: `org-${randomBytes(4).toString('hex')}`, autoApprove: true });
      await other.register(await registerRequest(created.token, await generateAgentKey()));
    } finally {
      other.close();
    }
    assert.equal(await stopService(unreachable), 0, 'exits 0 although spans could not be exported');
    const lines = unreachable.logs.map((line) => JSON.parse(line) as Record<string, unknown>);
    const otel = lines.filter((l) => l['module'] === 'otel');
    assert.ok(otel.length > 0, `the export failure was logged: ${unreachable.logs.slice(-5).join('\n')}`);
    assert.ok(otel.every((l) => l['level'] === 'warn' || l['level'] === 'error'));
  });
});
