import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { grpcStatusFor, IngestError } from '../errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import { withSpan } from '../telemetry/spans.ts';
import type { RegisterInput } from '../enrolment/register-input.ts';
import { Registrar } from '../enrolment/register.ts';
import type { ComponentFactory } from '../service.ts';
import type { RegisterRequest, RegisterResponse } from './messages.ts';

/** The client's address without the port: `1.2.3.4:5678` → `1.2.3.4`, `[::1]:5678` → `::1`. */
export function clientAddressOf(peer: string): string {
  const withoutScheme = peer.replace(/^ipv[46]:/, '');
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(withoutScheme);
  if (bracketed?.[1] !== undefined) return bracketed[1];
  const lastColon = withoutScheme.lastIndexOf(':');
  const address = lastColon === -1 ? withoutScheme : withoutScheme.slice(0, lastColon);
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function toRegisterInput(request: RegisterRequest): RegisterInput {
  return {
    orgToken: request.org_token ?? '',
    publicKey: request.public_key ?? '',
    hostname: request.agent_info?.hostname ?? '',
    version: request.agent_info?.version ?? '',
    os: request.platform_info?.os ?? '',
    arch: request.platform_info?.arch ?? '',
    osVersion: request.platform_info?.os_version ?? '',
    ipAddresses: request.platform_info?.ip_addresses ?? [],
    tags: (request.tags ?? []).map((tag) => ({ key: tag.key ?? '', value: tag.value ?? '' })),
    csrDer: request.csr_der ?? Buffer.alloc(0),
  };
}

/** Register over gRPC: decode → Registrar → encode; every failure is mapped once and logged with its real reason. */
export function registerHandler(registrar: Registrar, logger: Logger) {
  return (call: ServerUnaryCall<RegisterRequest, RegisterResponse>, callback: sendUnaryData<RegisterResponse>): void => {
    const clientAddress = clientAddressOf(call.getPeer());
    withSpan('ingest.register', {}, () => registrar.register(toRegisterInput(call.request), clientAddress)).then(
      (result) => callback(null, { agent_id: result.agentId, status: result.status, message: result.message, jwt_token: result.jwt }),
      (error: unknown) => {
        const mapped = grpcStatusFor(error);
        const reason = error instanceof Error ? error.message : String(error);
        if (error instanceof IngestError) logger.warn({ code: error.code, reason, clientAddress }, 'register refused');
        else logger.error({ err: { message: reason, code: (error as { code?: unknown }).code }, clientAddress }, 'register failed');
        callback({ code: mapped.code, details: mapped.details });
      },
    );
  };
}

/** Serves Register (SPEC §5). */
export const registrationComponent: ComponentFactory = (context) => {
  const registrar = new Registrar({
    pool: context.pool,
    clock: context.clock,
    logger: context.logger.child({ module: 'register' }),
    metrics: context.metrics,
    agentTokens: context.agentTokens,
    failuresPerMinute: context.config.registerFailuresPerMinute,
  });
  return { handlers: { Register: registerHandler(registrar, context.logger.child({ module: 'register' })) } };
};
