import { Metadata, type ClientDuplexStream, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import type { HeartbeatRequest, HeartbeatResponse } from '../../src/grpc/messages.ts';
import type { IngestClient } from './client.ts';

export interface HeartbeatStream {
  readonly call: ClientDuplexStream<Partial<HeartbeatRequest>, HeartbeatResponse>;
  /** Sends one heartbeat and resolves with the next response (responses arrive in order). */
  send(request: Partial<HeartbeatRequest>): Promise<HeartbeatResponse>;
  /** Resolves with the status the server ended the stream with. */
  readonly ended: Promise<StatusObject>;
  readonly responses: HeartbeatResponse[];
  close(): void;
}

/**
 * Opens a Heartbeat stream the way agents do: the JWT in the first message's agent_id (default),
 * or in `authorization: Bearer` metadata.
 */
export function openHeartbeat(client: IngestClient, options: { jwt: string; via?: 'first-message' | 'metadata' }): HeartbeatStream {
  const metadata = new Metadata();
  if (options.via === 'metadata') metadata.set('authorization', `Bearer ${options.jwt}`);
  const call = client.heartbeat(metadata);
  const responses: HeartbeatResponse[] = [];
  const waiters: Array<{ resolve: (r: HeartbeatResponse) => void; reject: (e: Error) => void }> = [];
  let sent = 0;
  let endedStatus: StatusObject | undefined;
  const ended = new Promise<StatusObject>((resolve) => {
    call.on('status', (s: StatusObject) => {
      endedStatus = s;
      resolve(s);
      for (const w of waiters.splice(0)) w.reject(Object.assign(new Error(`stream ended: ${s.code} ${s.details}`), { code: s.code, details: s.details }));
    });
  });
  call.on('error', () => undefined);
  call.on('data', (response: HeartbeatResponse) => {
    responses.push(response);
    waiters.shift()?.resolve(response);
  });
  return {
    call,
    responses,
    ended,
    send: (request) => {
      const first = sent === 0;
      sent += 1;
      const agentId = first && options.via !== 'metadata' ? options.jwt : (request.agent_id ?? '');
      return new Promise<HeartbeatResponse>((resolve, reject) => {
        if (endedStatus !== undefined) {
          reject(Object.assign(new Error('stream already ended'), { code: endedStatus.code }));
          return;
        }
        waiters.push({ resolve, reject });
        call.write({ cpu_percent: 12.5, memory_percent: 40, disk_percent: 55, uptime_seconds: 3600, agent_version: '1.2.3', ...request, agent_id: agentId });
      });
    },
    close: () => {
      call.end();
    },
  };
}

export async function expectStreamStatus(stream: HeartbeatStream): Promise<StatusObject> {
  return stream.ended;
}

export type { ServiceError };
