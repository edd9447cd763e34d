import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Metadata, status } from '@grpc/grpc-js';
import { ingestServiceClient } from '../../src/grpc/proto.ts';
import { startTestService, type TestService } from '../helpers/service.ts';
import { expectGrpcError } from '../helpers/client.ts';

describe('gRPC server transport', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService();
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

  it('should answer RenewCertificate with UNIMPLEMENTED over TLS', async () => {
    const client = svc.client();
    const raw = client.raw as unknown as { RenewCertificate(req: object, cb: (e: { code: number } | null) => void): void };
    const error = await new Promise<{ code: number } | null>((resolve) => raw.RenewCertificate({}, (e) => resolve(e)));
    assert.equal(error?.code, status.UNIMPLEMENTED);
  });
});
