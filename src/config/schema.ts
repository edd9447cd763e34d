import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().nonnegative();
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

/**
 * Every environment variable the service reads (SPEC §11), with its exact default.
 * Units are in the names. Keys are the variable names so errors name them directly.
 */
export const environmentSchema = z
  .object({
    DATABASE_URL: z.string({ message: 'is required (PostgreSQL connection string)' }).min(1, 'is required (PostgreSQL connection string)'),
    INGEST_TLS_CERT: z.string({ message: 'is required (path to the TLS certificate, PEM)' }).min(1, 'is required (path to the TLS certificate, PEM)'),
    INGEST_TLS_KEY: z.string({ message: 'is required (path to the TLS private key, PEM)' }).min(1, 'is required (path to the TLS private key, PEM)'),
    INGEST_TLS_CLIENT_CA: optionalText,
    INGEST_TLS_CLIENT_AUTH: z.enum(['optional', 'require']).optional(),
    INGEST_TLS_RELOAD_INTERVAL_SECONDS: positiveInt.default(10),
    INGEST_JWT_KEY_FILE: z.string().min(1).default('/var/lib/ct-ops/jwt_key.pem'),
    INGEST_JWT_KEY_SECRET: optionalText,
    INGEST_JWT_ISSUER: z.string().min(1).default('ct-ops-ingest'),
    INGEST_JWT_TTL_SECONDS: positiveInt.default(86_400),
    INGEST_GRPC_PORT: port.default(9443),
    INGEST_HTTP_PORT: port.default(8080),
    INGEST_BIND_ADDRESS: z.string().min(1).default('0.0.0.0'),
    INGEST_AGENT_DOWNLOAD_BASE_URL: z.url({ message: 'must be an absolute URL' }).default('http://localhost:3000'),
    INGEST_LATEST_AGENT_VERSION: optionalText,
    INGEST_MIGRATE: bool.default(true),
    INGEST_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    INGEST_DB_POOL_MAX: positiveInt.default(10),
    INGEST_DB_STATEMENT_TIMEOUT_SECONDS: positiveInt.default(30),
    INGEST_MAX_MESSAGE_BYTES: positiveInt.default(1_048_576),
    INGEST_KEEPALIVE_TIME_SECONDS: positiveInt.default(60),
    INGEST_KEEPALIVE_TIMEOUT_SECONDS: positiveInt.default(20),
    INGEST_KEEPALIVE_MIN_CLIENT_PING_SECONDS: positiveInt.default(10),
    INGEST_MAX_CONNECTION_AGE_SECONDS: positiveInt.default(1_800),
    INGEST_MAX_CONNECTION_AGE_GRACE_SECONDS: nonNegativeInt.default(30),
    INGEST_SHUTDOWN_GRACE_SECONDS: positiveInt.default(25),
    INGEST_HTTP_REQUEST_TIMEOUT_SECONDS: positiveInt.default(10),
    INGEST_REGISTER_FAILURES_PER_MINUTE: positiveInt.default(20),
    INGEST_HEARTBEAT_TIMEOUT_SECONDS: positiveInt.default(90),
    INGEST_SWEEP_INTERVAL_SECONDS: positiveInt.default(30),
    INGEST_REVOCATION_CHECK_SECONDS: positiveInt.default(5),
    INGEST_BATCH_MAX_SIZE: positiveInt.default(1_000),
    INGEST_BATCH_MAX_DELAY_MS: positiveInt.default(25),
    INGEST_BUFFER_MAX_HEARTBEATS: positiveInt.default(100_000),
    INGEST_METRICS_RETENTION_DAYS: positiveInt.default(30),
    INGEST_RETENTION_INTERVAL_SECONDS: positiveInt.default(300),
    INGEST_RETENTION_BATCH_SIZE: positiveInt.default(5_000),
    INGEST_QUEUE_MAX_AGE_SECONDS: positiveInt.default(604_800),
  })
  .superRefine((env, ctx) => {
    if (env.INGEST_TLS_CLIENT_AUTH !== undefined && env.INGEST_TLS_CLIENT_CA === undefined) {
      ctx.addIssue({ code: 'custom', path: ['INGEST_TLS_CLIENT_AUTH'], message: 'requires INGEST_TLS_CLIENT_CA' });
    }
    if (env.INGEST_KEEPALIVE_TIMEOUT_SECONDS >= env.INGEST_KEEPALIVE_TIME_SECONDS) {
      ctx.addIssue({ code: 'custom', path: ['INGEST_KEEPALIVE_TIMEOUT_SECONDS'], message: 'must be less than INGEST_KEEPALIVE_TIME_SECONDS' });
    }
  });

export type Environment = z.output<typeof environmentSchema>;
