import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Metadata, status, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import type { HeartbeatRequest, HeartbeatResponse } from '../../src/grpc/messages.ts';
import { startTestService, type TestService } from '../helpers/service.ts';
import { expectGrpcError } from '../helpers/client.ts';
import { enrolAgent, generateAgentKey, registerRequest, type EnrolledAgent } from '../helpers/agent-keys.ts';
import { parsePrometheusText, sampleValue, type Sample } from './prometheus-text.ts';

const HEARTBEATS = 3;

async function scrape(svc: TestService): Promise<Sample[]> {
  return parsePrometheusText(await (await svc.http('/metrics')).text());
}

/** Streams `count` heartbeats, waits for every acknowledgement, then half-closes and waits for the OK status. */
async function streamHeartbeats(svc: TestService, agent: EnrolledAgent, count: number): Promise<HeartbeatResponse[]> {
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${agent.jwt}`);
  const stream: ClientDuplexStream<Partial<HeartbeatRequest>, HeartbeatResponse> = svc.client().heartbeat(metadata);
  const acks: HeartbeatResponse[] = [];
  const done = new Promise<{ code: number }>((resolve, reject) => {
    stream.on('data', (ack: HeartbeatResponse) => {
      acks.push(ack);
      if (acks.length === count) stream.end();
    });
    stream.on('status', resolve);
    stream.on('error', reject);
  });
  for (let i = 0; i < count; i++) stream.write({ cpu_percent: 10 + i, memory_percent: 20, disk_percent: 30, uptime_seconds: 100 + i, agent_version: '1.2.3' });
  assert.equal((await done).code, status.OK);
  return acks;
}

describe('metrics and logs of a full enrol-and-stream run', () => {
  let svc: TestService;
  let agent: EnrolledAgent;
  let acks: HeartbeatResponse[];
  let refused: ServiceError;
  before(async () => {
    svc = await startTestService();
    agent = await enrolAgent(svc);
    acks = await streamHeartbeats(svc, agent, HEARTBEATS);
    refused = await expectGrpcError(svc.client().register(await registerRequest('ctet_notARealTokenButShapedLikeOne000000000000', await generateAgentKey())));
  });
  after(async () => {
    await svc.stop();
  });

  it('should expose registrations by outcome, token failures and JWTs issued', async () => {
    assert.equal(agent.status, 'active');
    assert.equal(refused.code, status.UNAUTHENTICATED);
    const samples = await scrape(svc);
    assert.equal(sampleValue(samples, 'ingest_registrations_total', { outcome: 'enrolled_active' }), 1);
    assert.equal(sampleValue(samples, 'ingest_registrations_total', { outcome: 'refused' }), 1);
    assert.equal(sampleValue(samples, 'ingest_token_failures_total', { reason: 'unknown' }), 1);
    assert.equal(sampleValue(samples, 'ingest_jwts_issued_total'), 1);
    const register = { grpc_type: 'unary', grpc_service: 'agent.v1.IngestService', grpc_method: 'Register' };
    assert.equal(sampleValue(samples, 'grpc_server_handled_total', { ...register, grpc_code: 'OK' }), 1);
    assert.equal(sampleValue(samples, 'grpc_server_handled_total', { ...register, grpc_code: 'UNAUTHENTICATED' }), 1);
    assert.equal(sampleValue(samples, 'grpc_server_started_total', register), 2);
  });

  it('should expose heartbeats received and acknowledged, ack latency, batch size and write time, queue events published, and the Heartbeat stream', async () => {
    assert.equal(acks.length, HEARTBEATS);
    assert.ok(acks.every((a) => a.ok));
    const samples = await scrape(svc);
    assert.equal(sampleValue(samples, 'ingest_heartbeats_received_total'), HEARTBEATS);
    assert.equal(sampleValue(samples, 'ingest_heartbeats_acknowledged_total'), HEARTBEATS);
    assert.equal(sampleValue(samples, 'ingest_heartbeat_ack_seconds_count'), HEARTBEATS);
    const batches = sampleValue(samples, 'ingest_batch_size_count') ?? 0;
    assert.ok(batches >= 1 && batches <= HEARTBEATS, `batches: ${batches}`);
    assert.equal(sampleValue(samples, 'ingest_batch_size_sum'), HEARTBEATS, 'every heartbeat was in exactly one batch');
    assert.equal(sampleValue(samples, 'ingest_batch_write_seconds_count'), batches);
    assert.equal(sampleValue(samples, 'ingest_queue_published_total', { topic: 'metrics.raw' }), HEARTBEATS, 'one metrics.raw event per heartbeat');
    assert.equal(sampleValue(samples, 'ingest_connected_streams'), 0, 'the stream closed');
    assert.equal(sampleValue(samples, 'ingest_buffer_depth'), 0);
    assert.equal(sampleValue(samples, 'ingest_buffer_dropped_total'), 0);
    const heartbeat = { grpc_type: 'bidi_stream', grpc_service: 'agent.v1.IngestService', grpc_method: 'Heartbeat' };
    assert.equal(sampleValue(samples, 'grpc_server_started_total', heartbeat), 1);
    assert.equal(sampleValue(samples, 'grpc_server_handled_total', { ...heartbeat, grpc_code: 'OK' }), 1);
    assert.equal(sampleValue(samples, 'grpc_server_msg_received_total', heartbeat), HEARTBEATS);
    assert.equal(sampleValue(samples, 'grpc_server_msg_sent_total', heartbeat), HEARTBEATS);
    assert.equal(sampleValue(samples, 'ingest_ready'), 1);
  });

  it('should never put an agent or host id in a label', async () => {
    const text = await (await svc.http('/metrics')).text();
    assert.ok(!text.includes(agent.agentId));
    assert.ok(!text.includes(agent.organisationId));
  });

  it('should log no token, JWT or key material', async () => {
    const logs = svc.logs();
    assert.ok(logs.includes('"rpc finished"'), 'the run was logged');
    const jwtParts = agent.jwt.split('.');
    assert.equal(jwtParts.length, 3);
    const signingKeyPem = await readFile(svc.config.jwt.keyFile, 'utf8');
    const tlsKeyPem = await readFile(svc.pki.keyFile, 'utf8');
    const keyBodyLines = [signingKeyPem, tlsKeyPem].flatMap((pem) => pem.split('\n').filter((l) => l !== '' && !l.startsWith('-----') && l.length >= 16));
    const agentKeyBody = agent.key.publicKeyPem.split('\n')[1] ?? '';
    const secrets = [agent.token, agent.token.slice(5), agent.jwt, ...jwtParts, ...keyBodyLines, agentKeyBody, 'ctet_notARealToken'];
    for (const secret of secrets) assert.ok(secret.length >= 16 && !logs.includes(secret), `log contains secret material starting ${secret.slice(0, 8)}`);
    assert.doesNotMatch(logs, /eyJ[A-Za-z0-9_-]+\.eyJ/);
    assert.doesNotMatch(logs, /-----BEGIN/);
    assert.doesNotMatch(logs, /ctet_[A-Za-z0-9_-]{8,}/);
  });
});
