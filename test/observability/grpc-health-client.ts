import { credentials, makeClientConstructor, Metadata, type Client, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import type { TestService } from '../helpers/service.ts';

export interface HealthResponse {
  readonly status: string;
}

type RawHealthClient = Client & {
  Check(request: { service: string }, metadata: Metadata, callback: (error: ServiceError | null, response: HealthResponse) => void): void;
  Watch(request: { service: string }, metadata?: Metadata, options?: { deadline?: number }): ClientReadableStream<HealthResponse>;
};

/** A real grpc.health.v1.Health client over the service's TLS port. */
export function healthClient(svc: TestService): RawHealthClient {
  const Ctor = makeClientConstructor(healthService as never, 'Health');
  const creds = credentials.createSsl(Buffer.from(svc.pki.ca.certPem));
  return new Ctor(`localhost:${svc.service.grpcPort}`, creds) as unknown as RawHealthClient;
}

export function check(client: RawHealthClient, service: string, metadata = new Metadata()): Promise<HealthResponse> {
  return new Promise((resolve, reject) => client.Check({ service }, metadata, (error, response) => (error === null ? resolve(response) : reject(error))));
}
