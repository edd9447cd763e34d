import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Paths whose values are secrets wherever they appear in a log object. */
export const REDACTED_PATHS = [
  'token', '*.token', 'org_token', '*.org_token', 'orgToken', '*.orgToken',
  'jwt', '*.jwt', 'jwt_token', '*.jwt_token', 'jwtToken', '*.jwtToken',
  'authorization', '*.authorization', 'headers.authorization', 'metadata.authorization',
  'password', '*.password', 'privateKey', '*.privateKey', 'private_key', '*.private_key', 'key', '*.key',
  'databaseUrl', '*.databaseUrl', 'DATABASE_URL', '*.DATABASE_URL', 'connectionString', '*.connectionString',
];

/**
 * Secret-shaped text, masked in every string a log line carries (messages, error messages, nested fields), as a
 * second line of defence behind the field redaction: a JWT or key must not leak through an error message either.
 */
const SECRET_PATTERNS: ReadonlyArray<readonly [RegExp, string]> = [
  [/-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(?:-----END [A-Z0-9 ]+-----|$)/g, '[REDACTED PEM]'],
  [/eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, '[REDACTED JWT]'],
  [/\bctet_[A-Za-z0-9_-]{8,}/g, 'ctet_[REDACTED]'],
  [/\bBearer\s+[A-Za-z0-9._~+/=-]+/g, 'Bearer [REDACTED]'],
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+@/gi, '$1REDACTED@'],
];

/** Masks JWTs, PEM blocks, enrolment tokens, bearer credentials and URL passwords in a string. */
export function maskSecrets(text: string): string {
  let masked = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) masked = masked.replace(pattern, replacement);
  return masked;
}

const MAX_DEPTH = 8;

/** A copy of a log argument with every string masked (errors stay errors of their class). */
export function maskDeep(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return maskSecrets(value);
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value) || depth > MAX_DEPTH) return '[…]';
  seen.add(value);
  if (value instanceof Error) {
    // A masked copy of the same class, so pino's error serializer still reports its type.
    const error = value as Error & Record<string, unknown>;
    const copy = Object.create(Object.getPrototypeOf(error) as object) as Error & Record<string, unknown>;
    copy.message = maskSecrets(error.message);
    if (error.stack !== undefined) copy.stack = maskSecrets(error.stack);
    for (const [key, item] of Object.entries(error)) copy[key] = maskDeep(item, depth + 1, seen);
    if (error.cause !== undefined) copy.cause = maskDeep(error.cause, depth + 1, seen);
    return copy;
  }
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) return value.map((item) => maskDeep(item, depth + 1, seen));
  if (value instanceof Date) return value;
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) copy[key] = maskDeep(item, depth + 1, seen);
  return copy;
}

/** JSON lines on stdout (or the given destination) with secrets redacted. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = {
    level,
    base: { service: 'ct-ops-ingest' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: '[REDACTED]' },
    formatters: {
      level: (label: string) => ({ level: label }),
    },
    hooks: {
      // Every argument of every call (merging object, message, format arguments) passes through the mask.
      logMethod(this: Logger, args: Parameters<Logger['info']>, method: (...a: unknown[]) => void): void {
        const [first, ...rest] = args as unknown[];
        // `logger.error(error, 'msg')` keeps pino's shape: the error under `err`, its message as msg when none is given.
        if (first instanceof Error) {
          const err = maskDeep(first) as Error;
          method.apply(this, [{ err }, ...(rest.length > 0 ? rest.map((arg) => maskDeep(arg)) : [err.message])]);
          return;
        }
        method.apply(this, (args as unknown[]).map((arg) => maskDeep(arg)));
      },
    },
  };
  const logger = destination === undefined ? pino(options) : pino(options, destination);
  // Child loggers inherit this (pino children are prototype copies), so their bindings are masked as well.
  const child = logger.child;
  logger.child = function maskedChild(this: Logger, bindings, childOptions) {
    return child.call(this, maskDeep(bindings) as typeof bindings, childOptions);
  } as Logger['child'];
  return logger;
}

/** Removes credentials from a connection string so it can be logged. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = 'REDACTED';
    return parsed.toString();
  } catch {
    return '[unparseable url]';
  }
}
