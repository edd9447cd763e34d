import { credentials, Metadata, type Client, type ServiceError, type ClientDuplexStream } from '@grpc/grpc-js';
import { ingestServiceClient } from '../../src/grpc/proto.ts';
import type { HeartbeatRequest, HeartbeatResponse, RegisterRequest, RegisterResponse } from '../../src/grpc/messages.ts';

export interface ClientTls {
  readonly caPem: string;
  readonly certPem?: string;
  readonly keyPem?: string;
}

export interface IngestClient {
  readonly raw: Client;
  register(request: Partial<RegisterRequest>, metadata?: Metadata): Promise<RegisterResponse>;
  heartbeat(metadata?: Metadata): ClientDuplexStream<Partial<HeartbeatRequest>, HeartbeatResponse>;
  close(): void;
}

type RawIngestClient = Client & {
  Register(request: unknown, metadata: Metadata, options: object, callback: (error: ServiceError | null, response: RegisterResponse) => void): void;
  Heartbeat(metadata: Metadata): ClientDuplexStream<Partial<HeartbeatRequest>, HeartbeatResponse>;
};

/** A real generated agent.v1.IngestService client over TLS (optionally with a client certificate). */
export function ingestClient(port: number, tls: ClientTls, options: Record<string, unknown> = {}): IngestClient {
  const Ctor = ingestServiceClient();
  const creds = credentials.createSsl(
    Buffer.from(tls.caPem),
    tls.keyPem === undefined ? null : Buffer.from(tls.keyPem),
    tls.certPem === undefined ? null : Buffer.from(tls.certPem),
  );
  const raw = new Ctor(`localhost:${port}`, creds, options) as unknown as RawIngestClient;
  return {
    raw,
    register: (request, metadata = new Metadata()) =>
      new Promise((resolve, reject) => {
        raw.Register(request, metadata, { deadline: Date.now() + 15_000 }, (error, response) => (error === null ? resolve(response) : reject(error)));
      }),
    heartbeat: (metadata = new Metadata()) => raw.Heartbeat(metadata),
    close: () => raw.close(),
  };
}

/** Resolves with the status error a call failed with; rejects if it succeeded. */
export async function expectGrpcError(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (error) {
    return error as ServiceError;
  }
  throw new Error('expected the call to fail');
}
