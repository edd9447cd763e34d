import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { startTestService, type TestService } from '../helpers/service.ts';
import { expectGrpcError } from '../helpers/client.ts';
import { parsePrometheusText, sampleValue, type Sample } from './prometheus-text.ts';
import { check, healthClient } from './grpc-health-client.ts';
import { eventually } from '../helpers/fleet.ts';

const FAKE_JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZ2VudC0xIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ';

async function scrape(svc: TestService): Promise<Sample[]> {
  const response = await svc.http('/metrics');
  assert.equal(response.status, 200);
  return parsePrometheusText(await response.text());
}

function renewCertificate(svc: TestService, metadata: Metadata): Promise<unknown> {
  const raw = svc.client().raw as unknown as {
    RenewCertificate(req: object, meta: Metadata, cb: (e: ServiceError | null, r: unknown) => void): void;
  };
  return new Promise((resolve, reject) => raw.RenewCertificate({}, metadata, (e, r) => (e === null ? resolve(r) : reject(e))));
}

describe('gRPC server metrics and RPC logs', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService();
  });
  after(async () => {
    await svc.stop();
  });

  it('should count a unary call answered UNIMPLEMENTED under its service, method and code', async () => {
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${FAKE_JWT}`);
    const error = await expectGrpcError(renewCertificate(svc, metadata));
    assert.equal(error.code, status.UNIMPLEMENTED);
    await expectGrpcError(renewCertificate(svc, new Metadata()));

    const samples = await scrape(svc);
    const labels = { grpc_type: 'unary', grpc_service: 'agent.v1.IngestService', grpc_method: 'RenewCertificate' };
    assert.equal(sampleValue(samples, 'grpc_server_started_total', labels), 2);
    assert.equal(sampleValue(samples, 'grpc_server_handled_total', { ...labels, grpc_code: 'UNIMPLEMENTED' }), 2);
    assert.equal(sampleValue(samples, 'grpc_server_handling_seconds_count', labels), 2);
    assert.equal(sampleValue(samples, 'grpc_server_handling_seconds_bucket', { ...labels, le: '+Inf' }), 2);
    assert.equal(sampleValue(samples, 'grpc_server_msg_received_total', labels), 2);
    assert.equal(sampleValue(samples, 'grpc_server_handled_total', { ...labels, grpc_code: 'OK' }), undefined);
  });

  it('should count a Health Check answered OK and a NOT_FOUND one by code name', async () => {
    const client = healthClient(svc);
    try {
      assert.equal((await check(client, '')).status, 'SERVING');
      const error = await expectGrpcError(check(client, 'no.such.Service'));
      assert.equal(error.code, status.NOT_FOUND);
    } finally {
      client.close();
    }
    const samples = await scrape(svc);
    const labels = { grpc_type: 'unary', grpc_service: 'grpc.health.v1.Health', grpc_method: 'Check' };
    assert.equal(sampleValue(samples, 'grpc_server_handled_total', { ...labels, grpc_code: 'OK' }), 1);
    assert.equal(sampleValue(samples, 'grpc_server_handled_total', { ...labels, grpc_code: 'NOT_FOUND' }), 1);
    assert.equal(sampleValue(samples, 'grpc_server_msg_sent_total', labels), 1);
  });

  it('should count a server stream the client cancelled as CANCELLED with the messages it was sent', async () => {
    const client = healthClient(svc);
    try {
      const stream = client.Watch({ service: '' });
      const first = await new Promise<{ status: string }>((resolve, reject) => {
        stream.once('data', resolve);
        stream.once('error', reject);
      });
      assert.equal(first.status, 'SERVING');
      const ended = new Promise<ServiceError>((resolve) => stream.on('error', resolve));
      stream.cancel();
      assert.equal((await ended).code, status.CANCELLED);
    } finally {
      client.close();
    }
    const labels = { grpc_type: 'server_stream', grpc_service: 'grpc.health.v1.Health', grpc_method: 'Watch' };
    // The server learns of the cancel asynchronously; wait for the counter rather than for time.
    const handled = await eventually(async () => sampleValue(await scrape(svc), 'grpc_server_handled_total', { ...labels, grpc_code: 'CANCELLED' }), 15_000, 'the cancelled call to be counted');
    assert.equal(handled, 1);
    const samples = await scrape(svc);
    assert.equal(sampleValue(samples, 'grpc_server_started_total', labels), 1);
    assert.equal(sampleValue(samples, 'grpc_server_msg_sent_total', labels), 1);
  });

  it('should count a stream that outlived its deadline as DEADLINE_EXCEEDED, not CANCELLED', async () => {
    const client = healthClient(svc);
    try {
      // Only the server enforces this deadline (the client sets none), so the call ends by the server's own
      // deadline rather than racing a client-side cancel.
      const metadata = new Metadata();
      metadata.set('grpc-timeout', '300m');
      const stream = client.Watch({ service: 'agent.v1.IngestService' }, metadata);
      stream.on('data', () => undefined);
      const error = await new Promise<ServiceError>((resolve) => stream.on('error', resolve));
      assert.equal(error.code, status.DEADLINE_EXCEEDED);
    } finally {
      client.close();
    }
    const labels = { grpc_type: 'server_stream', grpc_service: 'grpc.health.v1.Health', grpc_method: 'Watch', grpc_code: 'DEADLINE_EXCEEDED' };
    const handled = await eventually(async () => sampleValue(await scrape(svc), 'grpc_server_handled_total', labels), 15_000, 'the expired call to be counted');
    assert.equal(handled, 1);
  });

  it('should label a bidirectional stream answered UNIMPLEMENTED as bidi_stream', async () => {
    const raw = svc.client().raw;
    const stream = raw.makeBidiStreamRequest('/agent.v1.IngestService/Terminal', (value: Buffer) => value, (value: Buffer) => value);
    const error = await new Promise<ServiceError>((resolve) => stream.on('error', resolve));
    assert.equal(error.code, status.UNIMPLEMENTED);
    const samples = await scrape(svc);
    const labels = { grpc_type: 'bidi_stream', grpc_service: 'agent.v1.IngestService', grpc_method: 'Terminal' };
    assert.equal(sampleValue(samples, 'grpc_server_started_total', labels), 1);
    assert.equal(sampleValue(samples, 'grpc_server_handled_total', { ...labels, grpc_code: 'UNIMPLEMENTED' }), 1);
  });

  it('should give a method the server does not host no label of its own', async () => {
    const raw = svc.client().raw;
    const error = await new Promise<ServiceError | null>((resolve) =>
      raw.makeUnaryRequest(
        '/agent.v1.IngestService/NoSuchMethodXyz',
        (value: Buffer) => value,
        (value: Buffer) => value,
        Buffer.alloc(0),
        (e) => resolve(e),
      ),
    );
    assert.equal(error?.code, status.UNIMPLEMENTED);
    const text = await (await svc.http('/metrics')).text();
    assert.doesNotMatch(text, /NoSuchMethodXyz/);
    for (const sample of parsePrometheusText(text).filter((s) => s.name.startsWith('grpc_server_'))) {
      assert.ok(['agent.v1.IngestService', 'grpc.health.v1.Health', 'unknown'].includes(sample.labels['grpc_service'] ?? ''), JSON.stringify(sample));
    }
  });

  it('should log one line per finished RPC with method, code, duration and peer but no metadata', async () => {
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${FAKE_JWT}`);
    metadata.set('x-enrolment-token', 'ctok_supersecretvalue');
    await expectGrpcError(renewCertificate(svc, metadata));
    const lines = svc
      .logs()
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line['msg'] === 'rpc finished' && line['method'] === '/agent.v1.IngestService/RenewCertificate');
    assert.equal(lines.length, 3, 'one line for each of the three RenewCertificate calls in this file');
    for (const line of lines) {
      assert.equal(line['code'], 'UNIMPLEMENTED');
      assert.equal(typeof line['durationMs'], 'number');
      assert.match(String(line['peer']), /^(127\.0\.0\.1|::1|::ffff:127\.0\.0\.1|\[::1\]):\d+$/);
    }
    assert.doesNotMatch(svc.logs(), /eyJhbGciOiJSUzI1NiJ9|supersecretvalue/);
  });
});
