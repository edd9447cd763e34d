import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import tls from 'node:tls';
import {
  connectivityState,
  credentials,
  getChannelzHandlers,
  loadPackageDefinition,
  Metadata,
  status,
  type Client,
  type ClientReadableStream,
  type GrpcObject,
  type ServiceClientConstructor,
  type ServerDuplexStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { ingestServiceClient } from '../../src/grpc/proto.ts';
import { issueCertificate } from '../../src/tls/certificates.ts';
import { startTestService, type TestService } from '../helpers/service.ts';
import { clientCertificate, createTestPki, type TestPki } from '../helpers/tls.ts';
import { callRenewCertificate, renewCertificateProbe, type ProbeCalls } from '../helpers/grpc-probe.ts';

type HealthClient = Client & {
  Check(req: { service: string }, meta: Metadata, opts: object, cb: (e: ServiceError | null, res?: { status: string }) => void): void;
  Watch(req: { service: string }): ClientReadableStream<{ status: string }>;
};

function healthClient(port: number, caPem: string): HealthClient {
  const pkg = loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true })) as GrpcObject;
  const Health = ((pkg['grpc'] as GrpcObject)['health'] as GrpcObject)['v1'] as GrpcObject;
  const Ctor = Health['Health'] as ServiceClientConstructor;
  return new Ctor(`localhost:${port}`, credentials.createSsl(Buffer.from(caPem))) as unknown as HealthClient;
}

function check(client: HealthClient, service: string): Promise<{ code: number; status?: string }> {
  return new Promise((resolve) =>
    client.Check({ service }, new Metadata(), { deadline: Date.now() + 5_000 }, (error, response) =>
      resolve(error === null ? { code: status.OK, status: response?.status ?? '' } : { code: error.code }),
    ),
  );
}

/** The serial number of the certificate a fresh TLS connection (ALPN h2) is served. */
function servedSerial(port: number, caPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: caPem, ALPNProtocols: ['h2'] }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(normaliseSerial(serial));
    });
    socket.once('error', reject);
  });
}

const normaliseSerial = (serial: string): string => serial.toUpperCase().replace(/^0+/, '');

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, limitMs = 10_000): Promise<T> {
  const until = Date.now() + limitMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Keepalive pings a grpc-js client channel has sent so far, read from its channelz socket data. */
async function clientKeepalivesSent(client: Client): Promise<number> {
  const handlers = getChannelzHandlers() as unknown as Record<string, (call: { request: object }, cb: (e: unknown, r: Record<string, unknown>) => void) => void>;
  const ask = (method: string, request: object): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => handlers[method]?.({ request }, (e, r) => (e ? reject(e) : resolve(r))));
  const channelId = client.getChannel().getChannelzRef().id;
  const { channel } = (await ask('GetChannel', { channel_id: channelId })) as { channel: { subchannel_ref: Array<{ subchannel_id: number }> } };
  let sent = 0;
  for (const ref of channel.subchannel_ref) {
    const { subchannel } = (await ask('GetSubchannel', { subchannel_id: ref.subchannel_id })) as { subchannel: { socket_ref: Array<{ socket_id: number }> } };
    for (const socketRef of subchannel.socket_ref) {
      const { socket } = (await ask('GetSocket', { socket_id: socketRef.socket_id })) as { socket: { data: { keep_alives_sent: number | string } } };
      sent += Number(socket.data.keep_alives_sent);
    }
  }
  return sent;
}

describe('gRPC server transport', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({
      env: { INGEST_MAX_MESSAGE_BYTES: '65536', INGEST_KEEPALIVE_TIME_SECONDS: '2', INGEST_KEEPALIVE_TIMEOUT_SECONDS: '1' },
    });
  });
  after(async () => {
    await svc.stop();
  });

  it('should refuse a plaintext client with UNAVAILABLE', async () => {
    const Ctor = ingestServiceClient();
    const plain = new Ctor(`127.0.0.1:${svc.service.grpcPort}`, credentials.createInsecure()) as unknown as {
      RenewCertificate(req: object, meta: object, opts: object, cb: (e: { code: number } | null) => void): void;
      close(): void;
    };
    const error = await new Promise<{ code: number } | null>((resolve) =>
      plain.RenewCertificate({}, new Metadata(), { deadline: Date.now() + 3_000 }, (e) => resolve(e)),
    );
    plain.close();
    assert.ok(error !== null);
    assert.ok(error.code === status.UNAVAILABLE || error.code === status.DEADLINE_EXCEEDED, `got ${error.code}`);
  });

  it('should close a connection that speaks cleartext HTTP/2 without answering it', async () => {
    const socket = netConnect(svc.service.grpcPort, '127.0.0.1');
    socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    const received = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
    // Whatever came back is a TLS alert, never an HTTP/2 SETTINGS frame (type 0x04 at byte 3).
    assert.ok(received.length === 0 || received[0] === 0x15, `unexpected cleartext answer ${received.subarray(0, 16).toString('hex')}`);
  });

  it('should answer RenewCertificate with UNIMPLEMENTED over TLS', async () => {
    const result = await callRenewCertificate(svc.client());
    assert.equal(result.code, status.UNIMPLEMENTED);
  });

  it('should answer Terminal and SubmitSoftwareInventory with UNIMPLEMENTED', async () => {
    const raw = svc.client().raw as unknown as {
      Terminal(): { on(event: string, cb: (e: ServiceError) => void): void; end(): void };
      SubmitSoftwareInventory(cb: (e: ServiceError | null) => void): { end(): void };
    };
    const terminal = raw.Terminal();
    const terminalError = new Promise<ServiceError>((resolve) => terminal.on('error', resolve));
    terminal.end();
    assert.equal((await terminalError).code, status.UNIMPLEMENTED);
    const inventoryError = await new Promise<ServiceError | null>((resolve) => raw.SubmitSoftwareInventory(resolve).end());
    assert.equal(inventoryError?.code, status.UNIMPLEMENTED);
  });

  it('should report SERVING from grpc.health.v1.Health for "" and agent.v1.IngestService', async () => {
    const health = healthClient(svc.service.grpcPort, svc.pki.ca.certPem);
    try {
      assert.deepEqual(await check(health, ''), { code: status.OK, status: 'SERVING' });
      assert.deepEqual(await check(health, 'agent.v1.IngestService'), { code: status.OK, status: 'SERVING' });
      assert.equal((await check(health, 'no.such.Service')).code, status.NOT_FOUND);
    } finally {
      health.close();
    }
  });

  it('should refuse a message larger than INGEST_MAX_MESSAGE_BYTES with RESOURCE_EXHAUSTED', async () => {
    const client = svc.client();
    const error = await client.register({ org_token: 'x', public_key: 'k'.repeat(70_000) }).then(
      () => undefined,
      (e: ServiceError) => e,
    );
    assert.equal(error?.code, status.RESOURCE_EXHAUSTED);
    // The connection stays usable and a message under the limit goes through to the handler.
    const small = await client.register({ org_token: 'x', public_key: 'k'.repeat(60_000) }).then(
      () => undefined,
      (e: ServiceError) => e,
    );
    assert.notEqual(small?.code, status.RESOURCE_EXHAUSTED);
  });

  it('should close a connection whose peer stops answering the server\'s keepalive pings', async () => {
    // A raw HTTP/2 peer over TLS that says hello and then never reads or acknowledges anything.
    const socket = tls.connect({ host: '127.0.0.1', port: svc.service.grpcPort, servername: 'localhost', ca: svc.pki.ca.certPem, ALPNProtocols: ['h2'] });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    const emptySettings = Buffer.from([0, 0, 0, 0x04, 0, 0, 0, 0, 0]);
    socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), emptySettings]));
    // Reading raw bytes acknowledges nothing: the server's PING goes unanswered.
    socket.on('data', () => undefined);
    const closed = new Promise<boolean>((resolve) => socket.once('close', () => resolve(true)));
    // Keepalive here: a ping after 2 s idle, 1 s to answer it; without keepalive the connection would stay open.
    const hungUp = await Promise.race([closed, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 8_000))]);
    assert.equal(hungUp, true, 'the server kept a connection that does not answer pings');
    socket.destroy();
  });

  it('should keep a client that pings every 10 s without calls connected, while the server pings too', async () => {
    const client = svc.client({}, { 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_permit_without_calls': 1 });
    const first = await callRenewCertificate(client);
    assert.equal(first.code, status.UNIMPLEMENTED);
    const serverPeers = (): string[] => [...svc.service.context.grpc.tls.connections].map((c) => c.peer);
    const peersBefore = serverPeers();
    assert.equal(peersBefore.length >= 1, true);
    const channel = client.raw.getChannel();
    const states: number[] = [];
    let watching = true;
    const watch = (): void => {
      const current = channel.getConnectivityState(false);
      channel.watchConnectivityState(current, Date.now() + 1_000, () => {
        const next = channel.getConnectivityState(false);
        if (next !== current) states.push(next);
        if (watching) watch();
      });
    };
    watch();
    try {
      // The client's first keepalive ping is due 10 s after it connected; the server pings every 2 s meanwhile.
      const pings = await eventually('a client keepalive ping', async () => ((await clientKeepalivesSent(client.raw)) >= 1 ? true : undefined), 14_000);
      assert.equal(pings, true);
      await new Promise((r) => setTimeout(r, 1_500));
    } finally {
      watching = false;
    }
    assert.deepEqual(states, [], 'the channel left READY');
    assert.equal(channel.getConnectivityState(false), connectivityState.READY);
    const after = await callRenewCertificate(client);
    assert.equal(after.code, status.UNIMPLEMENTED);
    // Still the very same server-side connection: nothing was closed and re-established.
    assert.deepEqual(serverPeers().sort(), peersBefore.sort());
  });
});

describe('gRPC health during shutdown', () => {
  it('should report NOT_SERVING to a health watcher as soon as shutdown begins, and finish with clients still connected', async () => {
    let releaseDrain!: () => void;
    const drainHeld = new Promise<void>((resolve) => {
      releaseDrain = resolve;
    });
    const svc = await startTestService({ components: [() => ({ drain: () => drainHeld })] });
    const health = healthClient(svc.service.grpcPort, svc.pki.ca.certPem);
    const ingest = svc.client();
    try {
      assert.equal((await callRenewCertificate(ingest)).code, status.UNIMPLEMENTED);
      const watch = health.Watch({ service: '' });
      const seen: string[] = [];
      watch.on('error', () => undefined);
      const notServing = new Promise<void>((resolve) =>
        watch.on('data', (message: { status: string }) => {
          seen.push(message.status);
          if (message.status === 'NOT_SERVING') resolve();
        }),
      );
      await eventually('the first health update', async () => (seen.length > 0 ? true : undefined));
      assert.deepEqual(seen, ['SERVING']);
      const shutdown = svc.service.shutdown();
      await notServing;
      assert.deepEqual(seen, ['SERVING', 'NOT_SERVING']);
      releaseDrain();
      // Shutdown must not wait for the clients to hang up on their own (the drain budget here is 5 s).
      await eventually('shutdown to finish', async () => {
        const done = await Promise.race([shutdown.then(() => true), new Promise<undefined>((r) => setTimeout(() => r(undefined), 100))]);
        return done;
      }, 10_000);
      watch.cancel();
    } finally {
      releaseDrain();
      health.close();
      await svc.stop();
    }
  });
});

describe('gRPC streams ended during shutdown', () => {
  it('should deliver the UNAVAILABLE a component ends its streams with just after its drain', async () => {
    const open = new Set<ServerDuplexStream<unknown, unknown>>();
    const svc = await startTestService({
      components: [
        () => ({
          handlers: {
            // A stand-in for a streaming handler: holds the stream until the drain ends it.
            Terminal: (call: ServerDuplexStream<unknown, unknown>) => {
              open.add(call);
              call.on('data', () => undefined);
            },
          },
          drain: async () => {
            // Ends its streams a moment after its drain returned (as a component waiting on in-flight work does):
            // the final statuses must still reach the clients before the connections are destroyed.
            setTimeout(() => {
              for (const call of open) call.emit('error', { code: status.UNAVAILABLE, details: 'server shutting down; reconnect' });
            }, 100);
          },
        }),
      ],
    });
    const streams = Array.from({ length: 10 }, () => svc.client());
    try {
      const ended = streams.map((client) => {
        const raw = client.raw as unknown as { Terminal(): { on(event: string, cb: (value: ServiceError) => void): void; write(m: object): void } };
        const call = raw.Terminal();
        call.on('data', () => undefined);
        call.write({});
        return new Promise<ServiceError>((resolve) => call.on('error', resolve));
      });
      await eventually('the streams to open', async () => (open.size === streams.length ? true : undefined));
      await svc.service.shutdown();
      const errors = await Promise.all(ended);
      assert.deepEqual(
        errors.map((e) => [e.code, e.details]),
        errors.map(() => [status.UNAVAILABLE, 'server shutting down; reconnect']),
      );
    } finally {
      await svc.stop();
    }
  });
});

describe('gRPC max connection age', () => {
  it('should send GOAWAY to a connection past INGEST_MAX_CONNECTION_AGE_SECONDS so its client reconnects', async () => {
    const svc = await startTestService({
      env: { INGEST_MAX_CONNECTION_AGE_SECONDS: '1', INGEST_MAX_CONNECTION_AGE_GRACE_SECONDS: '0' },
      components: [renewCertificateProbe()],
    });
    try {
      const client = svc.client();
      const first = await callRenewCertificate(client);
      assert.equal(first.code, status.UNIMPLEMENTED);
      const moved = await eventually('a call on a new connection', async () => {
        const next = await callRenewCertificate(client);
        return next.code === status.UNIMPLEMENTED && next.peer !== first.peer ? next : undefined;
      }, 8_000);
      assert.equal(moved.connectionKnown, true);
    } finally {
      await svc.stop();
    }
  });
});

describe('gRPC TLS certificate reload', () => {
  let svc: TestService;
  const calls: ProbeCalls = { count: 0 };
  before(async () => {
    svc = await startTestService({ components: [renewCertificateProbe(calls)] });
  });
  after(async () => {
    await svc.stop();
  });

  it('should serve a rewritten certificate to new connections and keep existing connections open', async () => {
    const { pki } = svc;
    const port = svc.service.grpcPort;
    assert.equal(await servedSerial(port, pki.ca.certPem), normaliseSerial(pki.server.certificate.serialNumber));
    const client = svc.client();
    const before = await callRenewCertificate(client);
    assert.equal(before.code, status.UNIMPLEMENTED);
    assert.ok(before.peer !== undefined);

    const renewed = await issueCertificate({ commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], issuer: pki.ca });
    const renewedSerial = normaliseSerial(renewed.certificate.serialNumber);
    assert.notEqual(renewedSerial, normaliseSerial(pki.server.certificate.serialNumber));
    await writeFile(pki.keyFile, renewed.keyPem);
    await writeFile(pki.certFile, renewed.certPem);

    await eventually('the renewed certificate', async () => ((await servedSerial(port, pki.ca.certPem)) === renewedSerial ? true : undefined));
    const after = await callRenewCertificate(client);
    assert.equal(after.code, status.UNIMPLEMENTED);
    assert.equal(after.peer, before.peer, 'the existing connection was replaced');
  });

  it('should keep serving the current certificate when the files become invalid', async () => {
    const { pki } = svc;
    const port = svc.service.grpcPort;
    const current = await servedSerial(port, pki.ca.certPem);
    const failuresBefore = svc.logs().split('\n').filter((l) => l.includes('TLS certificate reload failed')).length;
    await writeFile(pki.certFile, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
    await eventually('a failed reload', async () =>
      svc.logs().split('\n').filter((l) => l.includes('TLS certificate reload failed')).length > failuresBefore ? true : undefined,
    );
    assert.equal(await servedSerial(port, pki.ca.certPem), current);
    assert.equal((await callRenewCertificate(svc.client())).code, status.UNIMPLEMENTED);
  });
});

describe('gRPC mTLS optional', () => {
  let svc: TestService;
  let pki: TestPki;
  let otherPki: TestPki;
  const calls: ProbeCalls = { count: 0 };
  before(async () => {
    pki = await createTestPki();
    otherPki = await createTestPki();
    svc = await startTestService({ pki, env: { INGEST_TLS_CLIENT_CA: pki.caFile }, components: [renewCertificateProbe(calls)] });
  });
  after(async () => {
    await svc.stop();
    for (const p of [pki, otherPki]) await rm(p.dir, { recursive: true, force: true });
  });

  it('should let a client without a certificate reach the handler, with no identity', async () => {
    const result = await callRenewCertificate(svc.client());
    assert.equal(result.code, status.UNIMPLEMENTED);
    assert.equal(result.details, 'probe');
    assert.equal(result.connectionKnown, true);
    assert.equal(result.identity, null);
  });

  it('should let a client with a valid certificate through and record its SPIFFE identity', async () => {
    const cert = await clientCertificate(pki.ca, 'org_1', 'agent_1');
    const result = await callRenewCertificate(svc.client({ certPem: cert.certPem, keyPem: cert.keyPem }));
    assert.equal(result.code, status.UNIMPLEMENTED);
    assert.equal(result.connectionKnown, true);
    assert.deepEqual(result.identity, { organisationId: 'org_1', agentId: 'agent_1' });
  });

  it('should record no identity for a valid certificate without a ct-ops SPIFFE URI', async () => {
    const cert = await issueCertificate({ commonName: 'someone', uris: ['spiffe://elsewhere/workload/x'], usage: 'client', issuer: pki.ca });
    const result = await callRenewCertificate(svc.client({ certPem: cert.certPem, keyPem: cert.keyPem }));
    assert.equal(result.code, status.UNIMPLEMENTED);
    assert.equal(result.identity, null);
  });

  it('should refuse a client certificate from another CA before any handler runs', async () => {
    const cert = await clientCertificate(otherPki.ca, 'org_1', 'agent_1');
    const callsBefore = calls.count;
    const result = await callRenewCertificate(svc.client({ certPem: cert.certPem, keyPem: cert.keyPem }));
    assert.equal(result.code, status.UNAVAILABLE);
    assert.equal(calls.count, callsBefore);
  });

  it('should close a raw TLS connection that presents a certificate from another CA', async () => {
    const cert = await clientCertificate(otherPki.ca, 'org_1', 'agent_x');
    const socket = tls.connect({
      host: '127.0.0.1',
      port: svc.service.grpcPort,
      servername: 'localhost',
      ca: pki.ca.certPem,
      cert: cert.certPem,
      key: cert.keyPem,
      ALPNProtocols: ['h2'],
    });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    assert.ok([...svc.service.context.grpc.tls.connections].every((c) => c.identity?.agentId !== 'agent_x'));
  });
});

describe('gRPC mTLS client CA reload', () => {
  it('should verify client certificates against a rewritten INGEST_TLS_CLIENT_CA without a restart', async () => {
    const pki = await createTestPki();
    const nextCa = await createTestPki();
    const calls: ProbeCalls = { count: 0 };
    const svc = await startTestService({ pki, env: { INGEST_TLS_CLIENT_CA: pki.caFile, INGEST_TLS_CLIENT_AUTH: 'require' }, components: [renewCertificateProbe(calls)] });
    try {
      const oldCert = await clientCertificate(pki.ca, 'org_r', 'agent_old');
      const newCert = await clientCertificate(nextCa.ca, 'org_r', 'agent_new');
      assert.equal((await callRenewCertificate(svc.client({ certPem: oldCert.certPem, keyPem: oldCert.keyPem }))).code, status.UNIMPLEMENTED);
      assert.equal((await callRenewCertificate(svc.client({ certPem: newCert.certPem, keyPem: newCert.keyPem }))).code, status.UNAVAILABLE);
      await writeFile(pki.caFile, nextCa.ca.certPem);
      const accepted = await eventually('the new client CA', async () => {
        const result = await callRenewCertificate(svc.client({ certPem: newCert.certPem, keyPem: newCert.keyPem }));
        return result.code === status.UNIMPLEMENTED ? result : undefined;
      });
      assert.deepEqual(accepted.identity, { organisationId: 'org_r', agentId: 'agent_new' });
      assert.equal((await callRenewCertificate(svc.client({ certPem: oldCert.certPem, keyPem: oldCert.keyPem }))).code, status.UNAVAILABLE);
    } finally {
      await svc.stop();
      await rm(pki.dir, { recursive: true, force: true });
      await rm(nextCa.dir, { recursive: true, force: true });
    }
  });
});

describe('gRPC mTLS require', () => {
  let svc: TestService;
  const calls: ProbeCalls = { count: 0 };
  before(async () => {
    const pki = await createTestPki();
    svc = await startTestService({ env: { INGEST_TLS_CLIENT_CA: pki.caFile, INGEST_TLS_CLIENT_AUTH: 'require' }, pki, components: [renewCertificateProbe(calls)] });
  });
  after(async () => {
    await svc.stop();
    await rm(svc.pki.dir, { recursive: true, force: true });
  });

  it('should refuse a client without a certificate', async () => {
    const result = await callRenewCertificate(svc.client());
    assert.equal(result.code, status.UNAVAILABLE);
    assert.equal(calls.count, 0);
  });

  it('should let a client with a valid certificate through with its identity', async () => {
    const cert = await clientCertificate(svc.pki.ca, 'org_2', 'agent_2');
    const result = await callRenewCertificate(svc.client({ certPem: cert.certPem, keyPem: cert.keyPem }));
    assert.equal(result.code, status.UNIMPLEMENTED);
    assert.deepEqual(result.identity, { organisationId: 'org_2', agentId: 'agent_2' });
  });
});
