import { z } from 'zod';

/** Longest delay a Node.js timer can express; larger values fire immediately. */
export const MAX_TIMER_MS = 2_147_483_647;
const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MS / 1000);

/** An empty or blank variable counts as unset, so `FOO=` in a manifest means "use the default". */
const blankIsUnset = (value: unknown): unknown => (typeof value === 'string' && value.trim() === '' ? undefined : value);

/** A whole number written in decimal digits only ("1e3", "0x10", "1.5" and " 8" are refused). */
function integer(fallback: number, min: number, max: number, message: string) {
  return z.preprocess(
    blankIsUnset,
    z
      .string()
      .regex(/^\d+$/, message)
      .transform(Number)
      .pipe(z.number().min(min, message).max(max, message))
      .default(fallback),
  );
}

const port = (fallback: number) => integer(fallback, 0, 65_535, 'must be an integer port 0-65535');
const count = (fallback: number, max = Number.MAX_SAFE_INTEGER) => integer(fallback, 1, max, 'must be a whole number ≥ 1');
/** Seconds that end up in a timer: bounded so that `seconds * 1000` still fits one. */
const timerSeconds = (fallback: number, min = 1) =>
  integer(fallback, min, MAX_TIMER_SECONDS, `must be a whole number of seconds from ${min} to ${MAX_TIMER_SECONDS}`);

const bool = (fallback: boolean) =>
  z.preprocess(
    blankIsUnset,
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
      .transform((v) => v === 'true' || v === '1' || v === 'yes')
      .default(fallback),
  );

const required = (what: string) =>
  z.preprocess((v) => (typeof v === 'string' ? v.trim() : v), z.string({ message: `is required (${what})` }).min(1, `is required (${what})`));

const text = (fallback: string) => z.preprocess(blankIsUnset, z.string().default(fallback));

const optionalText = z.preprocess(blankIsUnset, z.string().optional());

const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.preprocess(blankIsUnset, z.enum(values, { message: `must be one of ${values.join(', ')}` }).optional());

/**
 * Every environment variable the service reads (SPEC §11), with its exact default.
 * Units are in the names. Keys are the variable names so errors name them directly.
 */
export const environmentSchema = z
  .object({
    DATABASE_URL: required('PostgreSQL connection string'),
    INGEST_TLS_CERT: required('path to the TLS certificate, PEM'),
    INGEST_TLS_KEY: required('path to the TLS private key, PEM'),
    INGEST_TLS_CLIENT_CA: optionalText,
    INGEST_TLS_CLIENT_AUTH: oneOf(['optional', 'require']),
    INGEST_TLS_RELOAD_INTERVAL_SECONDS: timerSeconds(10),
    INGEST_JWT_KEY_FILE: text('/var/lib/ct-ops/jwt_key.pem'),
    INGEST_JWT_KEY_SECRET: optionalText,
    INGEST_KUBERNETES_NAMESPACE: optionalText,
    INGEST_JWT_ISSUER: text('ct-ops-ingest'),
    INGEST_JWT_TTL_SECONDS: count(86_400),
    INGEST_GRPC_PORT: port(9443),
    INGEST_HTTP_PORT: port(8080),
    INGEST_BIND_ADDRESS: text('0.0.0.0'),
    INGEST_AGENT_DOWNLOAD_BASE_URL: z.preprocess(
      blankIsUnset,
      z.url({ protocol: /^https?$/, message: 'must be an absolute http(s) URL' }).default('http://localhost:3000'),
    ),
    INGEST_LATEST_AGENT_VERSION: optionalText,
    INGEST_MIGRATE: bool(true),
    INGEST_LOG_LEVEL: z.preprocess(
      blankIsUnset,
      z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { message: 'must be one of fatal, error, warn, info, debug, trace, silent' }).default('info'),
    ),
    INGEST_DB_POOL_MAX: count(10, 10_000),
    INGEST_DB_STATEMENT_TIMEOUT_SECONDS: timerSeconds(30),
    INGEST_MAX_MESSAGE_BYTES: count(1_048_576, MAX_TIMER_MS),
    INGEST_KEEPALIVE_TIME_SECONDS: timerSeconds(60),
    INGEST_KEEPALIVE_TIMEOUT_SECONDS: timerSeconds(20),
    INGEST_MAX_CONNECTION_AGE_SECONDS: timerSeconds(1_800),
    INGEST_MAX_CONNECTION_AGE_GRACE_SECONDS: timerSeconds(30, 0),
    INGEST_SHUTDOWN_GRACE_SECONDS: timerSeconds(25),
    INGEST_HTTP_REQUEST_TIMEOUT_SECONDS: timerSeconds(10),
    INGEST_REGISTER_FAILURES_PER_MINUTE: count(20),
    INGEST_HEARTBEAT_TIMEOUT_SECONDS: timerSeconds(90),
    INGEST_SWEEP_INTERVAL_SECONDS: timerSeconds(30),
    INGEST_REVOCATION_CHECK_SECONDS: timerSeconds(5),
    INGEST_BATCH_MAX_SIZE: count(1_000),
    INGEST_BATCH_MAX_DELAY_MS: count(25, MAX_TIMER_MS),
    INGEST_BUFFER_MAX_HEARTBEATS: count(100_000),
    INGEST_METRICS_RETENTION_DAYS: count(30),
    INGEST_RETENTION_INTERVAL_SECONDS: timerSeconds(300),
    INGEST_RETENTION_BATCH_SIZE: count(5_000),
    INGEST_QUEUE_MAX_AGE_SECONDS: count(604_800),
  })
  .superRefine(
    (env, ctx) => {
      // Runs even when other variables are invalid (`when` below), so every problem is reported at once;
      // a field that failed its own check may hold its raw input here, hence the type guards.
      if ((env.INGEST_TLS_CLIENT_AUTH === 'optional' || env.INGEST_TLS_CLIENT_AUTH === 'require') && env.INGEST_TLS_CLIENT_CA === undefined) {
        ctx.addIssue({ code: 'custom', path: ['INGEST_TLS_CLIENT_AUTH'], message: 'requires INGEST_TLS_CLIENT_CA (the CA that signs agent client certificates)' });
      }
      const time = env.INGEST_KEEPALIVE_TIME_SECONDS;
      const timeout = env.INGEST_KEEPALIVE_TIMEOUT_SECONDS;
      if (typeof time === 'number' && typeof timeout === 'number' && timeout >= time) {
        ctx.addIssue({ code: 'custom', path: ['INGEST_KEEPALIVE_TIMEOUT_SECONDS'], message: `must be less than INGEST_KEEPALIVE_TIME_SECONDS (${time})` });
      }
    },
    { when: () => true },
  );

export type Environment = z.output<typeof environmentSchema>;
