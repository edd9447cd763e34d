import {
  ResponderBuilder,
  ServerInterceptingCall,
  ServerListenerBuilder,
  status,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type ServerMethodDefinition,
} from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { ingestServiceDefinition } from '../grpc/proto.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

export type GrpcType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

interface CallLabels {
  readonly grpc_type: GrpcType;
  readonly grpc_service: string;
  readonly grpc_method: string;
}

export interface GrpcTelemetryOptions {
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** The services the server hosts; any other method path is labelled 'unknown' so labels stay bounded. */
  readonly services: ReadonlyArray<Readonly<Record<string, { readonly path: string }>>>;
  /** Services whose finished calls are logged at debug rather than info (probes, e.g. grpc.health.v1.Health). */
  readonly quietServices?: readonly string[];
}

/** Server errors worth a warning; client-caused codes (INVALID_ARGUMENT, UNAUTHENTICATED, ...) are routine. */
const SERVER_FAULT_CODES = new Set<number>([status.UNKNOWN, status.INTERNAL, status.DATA_LOSS]);

/** The canonical upper-snake name of a status code (`OK`, `UNAUTHENTICATED`); out-of-range codes are `UNKNOWN`. */
export function statusCodeName(code: number): string {
  const name = (status as unknown as Record<number, string | undefined>)[code];
  return typeof name === 'string' ? name : 'UNKNOWN';
}

export function grpcType(definition: { requestStream: boolean; responseStream: boolean }): GrpcType {
  if (definition.requestStream) return definition.responseStream ? 'bidi_stream' : 'client_stream';
  return definition.responseStream ? 'server_stream' : 'unary';
}

/**
 * A grpc-js server interceptor that records the conventional grpc_server_* metrics (go-grpc-prometheus names)
 * and writes one log line per finished call: method, status code name, duration and peer — never metadata.
 */
export function createGrpcTelemetryInterceptor(options: GrpcTelemetryOptions): ServerInterceptor {
  const { metrics, logger } = options;
  const known = new Set<string>();
  for (const service of options.services) for (const definition of Object.values(service)) known.add(definition.path);
  const quiet = new Set(options.quietServices ?? []);

  return (methodDescriptor: ServerMethodDefinition<unknown, unknown>, call: ServerInterceptingCallInterface): ServerInterceptingCall => {
    const labels = callLabels(methodDescriptor, known);
    const startedAt = process.hrtime.bigint();
    let finished = false;
    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
      const codeName = statusCodeName(code);
      metrics.grpcHandled.inc({ ...labels, grpc_code: codeName });
      metrics.grpcHandlingSeconds.observe(labels, seconds);
      const line = { method: methodDescriptor.path, code: codeName, durationMs: Math.round(seconds * 1e6) / 1e3, peer: call.getPeer() };
      if (SERVER_FAULT_CODES.has(code)) logger.warn(line, 'rpc finished');
      else if (quiet.has(labels.grpc_service)) logger.debug(line, 'rpc finished');
      else logger.info(line, 'rpc finished');
    };

    const responder = new ResponderBuilder()
      .withStart((next) => {
        metrics.grpcStarted.inc(labels);
        const listener = new ServerListenerBuilder()
          .withOnReceiveMessage((message, nextMessage) => {
            metrics.grpcMsgReceived.inc(labels);
            nextMessage(message);
          })
          .withOnCancel(() => {
            // grpc-js also reports a cancel after every status it sent; only a call without a status counts here.
            // A status grpc-js sent itself (deadline) bypasses interceptors, so an expired deadline is named as such.
            const deadline = call.getDeadline();
            const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
            finish(Number.isFinite(deadlineMs) && deadlineMs <= Date.now() ? status.DEADLINE_EXCEEDED : status.CANCELLED);
          })
          .build();
        next(listener);
      })
      .withSendMessage((message, next) => {
        metrics.grpcMsgSent.inc(labels);
        next(message);
      })
      .withSendStatus((callStatus, next) => {
        finish(callStatus.code);
        next(callStatus);
      })
      .build();
    return new ServerInterceptingCall(call, responder);
  };
}

/** The interceptor for this server: agent.v1.IngestService and grpc.health.v1.Health (logged at debug: probes). */
export function grpcServerTelemetry(metrics: Metrics, logger: Logger): ServerInterceptor {
  return createGrpcTelemetryInterceptor({
    metrics,
    logger: logger.child({ module: 'rpc' }),
    services: [ingestServiceDefinition(), healthService],
    quietServices: ['grpc.health.v1.Health'],
  });
}

function callLabels(definition: ServerMethodDefinition<unknown, unknown>, known: ReadonlySet<string>): CallLabels {
  const type = grpcType(definition);
  if (!known.has(definition.path)) return { grpc_type: type, grpc_service: 'unknown', grpc_method: 'unknown' };
  const [, service = 'unknown', method = 'unknown'] = definition.path.split('/');
  return { grpc_type: type, grpc_service: service, grpc_method: method };
}
