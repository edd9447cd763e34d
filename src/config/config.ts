import { environmentSchema } from './schema.ts';

export type ClientAuthMode = 'none' | 'optional' | 'require';

/** The validated, typed and frozen configuration of one process. */
export interface Config {
  readonly databaseUrl: string;
  readonly tls: {
    readonly certFile: string;
    readonly keyFile: string;
    readonly clientCaFile: string | undefined;
    readonly clientAuth: ClientAuthMode;
    readonly reloadIntervalMs: number;
  };
  readonly jwt: {
    readonly keyFile: string;
    readonly keySecret: string | undefined;
    /** Namespace of the key Secret; undefined = the service account's (or kubeconfig context's). */
    readonly keySecretNamespace: string | undefined;
    readonly issuer: string;
    readonly ttlSeconds: number;
  };
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly bindAddress: string;
  readonly agentDownloadBaseUrl: string;
  readonly latestAgentVersion: string | undefined;
  readonly migrate: boolean;
  readonly logLevel: string;
  readonly db: { readonly poolMax: number; readonly statementTimeoutMs: number };
  readonly grpc: {
    readonly maxMessageBytes: number;
    readonly keepaliveTimeMs: number;
    readonly keepaliveTimeoutMs: number;
    readonly maxConnectionAgeMs: number;
    readonly maxConnectionAgeGraceMs: number;
  };
  readonly shutdownGraceMs: number;
  readonly httpRequestTimeoutMs: number;
  readonly registerFailuresPerMinute: number;
  readonly heartbeat: {
    readonly timeoutSeconds: number;
    readonly sweepIntervalMs: number;
    readonly revocationCheckMs: number;
    readonly batchMaxSize: number;
    readonly batchMaxDelayMs: number;
    readonly bufferMaxHeartbeats: number;
  };
  readonly retention: {
    readonly metricsRetentionDays: number;
    readonly intervalMs: number;
    readonly batchSize: number;
    readonly queueMaxAgeSeconds: number;
  };
}

export class ConfigError extends Error {
  readonly code = 'ERR_INVALID_CONFIG';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Reads and validates the whole environment once; throws ConfigError listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = issue.path.length > 0 ? String(issue.path[0]) : 'environment';
      return `${name} ${issue.message}${receivedValue(name, env[name])}`;
    });
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  const clientAuth: ClientAuthMode = e.INGEST_TLS_CLIENT_CA === undefined ? 'none' : (e.INGEST_TLS_CLIENT_AUTH ?? 'optional');
  const config: Config = {
    databaseUrl: e.DATABASE_URL,
    tls: {
      certFile: e.INGEST_TLS_CERT,
      keyFile: e.INGEST_TLS_KEY,
      clientCaFile: e.INGEST_TLS_CLIENT_CA,
      clientAuth,
      reloadIntervalMs: e.INGEST_TLS_RELOAD_INTERVAL_SECONDS * 1000,
    },
    jwt: {
      keyFile: e.INGEST_JWT_KEY_FILE,
      keySecret: e.INGEST_JWT_KEY_SECRET,
      keySecretNamespace: e.INGEST_KUBERNETES_NAMESPACE,
      issuer: e.INGEST_JWT_ISSUER,
      ttlSeconds: e.INGEST_JWT_TTL_SECONDS,
    },
    grpcPort: e.INGEST_GRPC_PORT,
    httpPort: e.INGEST_HTTP_PORT,
    bindAddress: e.INGEST_BIND_ADDRESS,
    agentDownloadBaseUrl: e.INGEST_AGENT_DOWNLOAD_BASE_URL.replace(/\/+$/, ''),
    latestAgentVersion: e.INGEST_LATEST_AGENT_VERSION,
    migrate: e.INGEST_MIGRATE,
    logLevel: e.INGEST_LOG_LEVEL,
    db: { poolMax: e.INGEST_DB_POOL_MAX, statementTimeoutMs: e.INGEST_DB_STATEMENT_TIMEOUT_SECONDS * 1000 },
    grpc: {
      maxMessageBytes: e.INGEST_MAX_MESSAGE_BYTES,
      keepaliveTimeMs: e.INGEST_KEEPALIVE_TIME_SECONDS * 1000,
      keepaliveTimeoutMs: e.INGEST_KEEPALIVE_TIMEOUT_SECONDS * 1000,
      maxConnectionAgeMs: e.INGEST_MAX_CONNECTION_AGE_SECONDS * 1000,
      maxConnectionAgeGraceMs: e.INGEST_MAX_CONNECTION_AGE_GRACE_SECONDS * 1000,
    },
    shutdownGraceMs: e.INGEST_SHUTDOWN_GRACE_SECONDS * 1000,
    httpRequestTimeoutMs: e.INGEST_HTTP_REQUEST_TIMEOUT_SECONDS * 1000,
    registerFailuresPerMinute: e.INGEST_REGISTER_FAILURES_PER_MINUTE,
    heartbeat: {
      timeoutSeconds: e.INGEST_HEARTBEAT_TIMEOUT_SECONDS,
      sweepIntervalMs: e.INGEST_SWEEP_INTERVAL_SECONDS * 1000,
      revocationCheckMs: e.INGEST_REVOCATION_CHECK_SECONDS * 1000,
      batchMaxSize: e.INGEST_BATCH_MAX_SIZE,
      batchMaxDelayMs: e.INGEST_BATCH_MAX_DELAY_MS,
      bufferMaxHeartbeats: e.INGEST_BUFFER_MAX_HEARTBEATS,
    },
    retention: {
      metricsRetentionDays: e.INGEST_METRICS_RETENTION_DAYS,
      intervalMs: e.INGEST_RETENTION_INTERVAL_SECONDS * 1000,
      batchSize: e.INGEST_RETENTION_BATCH_SIZE,
      queueMaxAgeSeconds: e.INGEST_QUEUE_MAX_AGE_SECONDS,
    },
  };
  return deepFreeze(config);
}

/** `INGEST_*` variables read outside the service configuration (commands of their own). */
const OTHER_INGEST_VARIABLES = new Set(['INGEST_DEV_DATA_DIR']);

/**
 * `INGEST_*` variables that nothing reads: most likely typos (`INGEST_GRCP_PORT`) whose intended setting is
 * silently at its default. Reported as a warning at start, not an error, so that an older replica tolerates
 * a variable a newer release introduced.
 */
export function unknownIngestVariables(env: NodeJS.ProcessEnv = process.env): string[] {
  const known = new Set(Object.keys(environmentSchema.shape));
  return Object.keys(env)
    .filter((name) => name.startsWith('INGEST_') && !known.has(name) && !OTHER_INGEST_VARIABLES.has(name))
    .sort();
}

/** Variables whose values may carry credentials: never echoed in an error. */
const SECRET_VARIABLES = new Set(['DATABASE_URL']);

function receivedValue(name: string, value: string | undefined): string {
  if (value === undefined || value.trim() === '' || SECRET_VARIABLES.has(name)) return '';
  const shown = value.length > 60 ? `${value.slice(0, 60)}…` : value;
  return ` (got ${JSON.stringify(shown)})`;
}

function deepFreeze<T extends object>(value: T): T {
  for (const inner of Object.values(value)) {
    if (inner !== null && typeof inner === 'object') deepFreeze(inner as object);
  }
  return Object.freeze(value);
}
