import { Metadata, status, type sendUnaryData, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import type { ComponentFactory } from '../../src/service.ts';
import type { IngestClient } from './client.ts';

export interface ProbeCalls {
  count: number;
}

/**
 * A test component whose RenewCertificate reports what the handler saw: the grpc-js peer, whether the
 * server's connection registry knows that peer, and the verified client identity (in trailing metadata).
 * It answers UNIMPLEMENTED like the real handler, so reaching it is visible on the wire.
 */
export function renewCertificateProbe(calls: ProbeCalls = { count: 0 }): ComponentFactory {
  return (context) => ({
    handlers: {
      RenewCertificate: (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        calls.count += 1;
        const connection = context.grpc.connection(call.getPeer());
        const trailer = new Metadata();
        trailer.set('x-probe-peer', call.getPeer());
        trailer.set('x-probe-connection', connection === undefined ? 'unknown' : 'known');
        trailer.set('x-probe-identity', JSON.stringify(connection?.identity ?? null));
        callback({ code: status.UNIMPLEMENTED, details: 'probe', metadata: trailer });
      },
    },
  });
}

export interface ProbeResult {
  readonly code: number;
  readonly details: string;
  readonly peer: string | undefined;
  readonly connectionKnown: boolean;
  readonly identity: unknown;
}

/** Calls RenewCertificate and returns the status plus what a probe handler reported (if it was reached). */
export function callRenewCertificate(client: IngestClient, deadlineMs = 5_000): Promise<ProbeResult> {
  const raw = client.raw as unknown as {
    RenewCertificate(req: object, meta: Metadata, opts: object, cb: (e: ServiceError | null) => void): void;
  };
  return new Promise((resolve) => {
    raw.RenewCertificate({}, new Metadata(), { deadline: Date.now() + deadlineMs }, (error) => {
      const metadata = error?.metadata;
      const text = (key: string): string | undefined => {
        const value = metadata?.get(key)[0];
        return value === undefined ? undefined : String(value);
      };
      const identity = text('x-probe-identity');
      resolve({
        code: error?.code ?? status.OK,
        details: error?.details ?? '',
        peer: text('x-probe-peer'),
        connectionKnown: text('x-probe-connection') === 'known',
        identity: identity === undefined ? undefined : JSON.parse(identity),
      });
    });
  });
}
