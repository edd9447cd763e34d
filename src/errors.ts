import { status } from '@grpc/grpc-js';

/**
 * Stable error codes of the service. Domain code throws IngestError with one of these;
 * the gRPC boundary maps them through `grpcStatusFor` and nothing else reaches clients.
 */
export const errorCodes = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  UNAVAILABLE: status.UNAVAILABLE,
  UNIMPLEMENTED: status.UNIMPLEMENTED,
  INTERNAL: status.INTERNAL,
} as const;

export type ErrorCode = keyof typeof errorCodes;

export class IngestError extends Error {
  readonly code: ErrorCode;
  /** Shown to the client; must never carry internal detail. */
  readonly publicMessage: string;
  constructor(code: ErrorCode, publicMessage: string, options?: { cause?: unknown; detail?: string }) {
    super(options?.detail ?? publicMessage, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IngestError';
    this.code = code;
    this.publicMessage = publicMessage;
  }
}

export const invalidArgument = (field: string, problem: string): IngestError =>
  new IngestError('INVALID_ARGUMENT', `${field}: ${problem}`);

/** PostgreSQL / network error codes that mean "try again later" rather than a bug. */
const TRANSIENT_PG_CODES = new Set(['57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006', '40001', '40P01', '55P03', '57014']);
const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

export function isTransientError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (TRANSIENT_PG_CODES.has(code) || TRANSIENT_NODE_CODES.has(code))) return true;
  const message = (error as { message?: unknown }).message;
  return typeof message === 'string' && /Connection terminated|timeout exceeded when trying to connect|connection timeout|Client has encountered a connection error/i.test(message);
}

export interface MappedStatus {
  readonly code: status;
  readonly details: string;
}

/**
 * The one table from errors to gRPC statuses: domain errors keep their code and public message,
 * transient infrastructure faults become UNAVAILABLE, everything else INTERNAL with a generic text.
 */
export function grpcStatusFor(error: unknown): MappedStatus {
  if (error instanceof IngestError) return { code: errorCodes[error.code], details: error.publicMessage };
  if (isTransientError(error)) return { code: status.UNAVAILABLE, details: 'service temporarily unavailable, retry with backoff' };
  return { code: status.INTERNAL, details: 'internal error' };
}
