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

/** JSON lines on stdout (or the given destination) with secrets redacted. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = {
    level,
    base: { service: 'ct-ops-ingest' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: '[REDACTED]' },
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
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
