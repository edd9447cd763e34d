/**
 * OpenTelemetry bootstrap (SPEC §10). Configured only by the standard OTEL_* variables; off when no
 * OTLP endpoint is configured. Must run before the instrumented libraries are imported.
 */
import { register } from 'node:module';
import { format } from 'node:util';
import { createLogger, type Logger } from './logger.ts';

export const SERVICE_NAME = 'ct-ops-ingest';

/** HTTP paths hit by probes and scrapes, not worth a trace each. */
const UNTRACED_HTTP_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

interface RunningSdk {
  shutdown(): Promise<void>;
}

let sdk: RunningSdk | undefined;
let otelLogger: Logger | undefined;

const set = (env: NodeJS.ProcessEnv, name: string): boolean => (env[name] ?? '').trim() !== '';

/**
 * Tracing runs when an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT)
 * or another exporter is named in OTEL_TRACES_EXPORTER, unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
 */
export function tracingEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env['OTEL_SDK_DISABLED'] ?? '').trim().toLowerCase() === 'true') return false;
  const exporters = (env['OTEL_TRACES_EXPORTER'] ?? '').split(',').map((e) => e.trim().toLowerCase()).filter((e) => e !== '');
  if (exporters.length > 0 && exporters.every((e) => e === 'none')) return false;
  if (exporters.some((e) => e !== 'otlp' && e !== 'none')) return true;
  return set(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') || set(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
}

/**
 * Starts the NodeSDK with the OTLP trace exporter the OTEL_* variables describe (protocol, endpoint, headers, sampler,
 * resource) and pg, gRPC and HTTP instrumentation. Returns whether tracing is on. Metrics stay on Prometheus and logs on
 * stdout: OTLP metrics and logs are only exported when OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER ask for them.
 * `env` decides whether tracing runs; the SDK itself always reads process.env.
 */
export async function startTracing(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  if (sdk !== undefined) return true;
  if (!tracingEnabled(env)) return false;

  // pg and @grpc/grpc-js are CommonJS packages imported from ESM: the import-in-the-middle loader hook lets the
  // instrumentations patch them. Only these packages are intercepted, and only modules imported after this point.
  register('import-in-the-middle/hook.mjs', import.meta.url, { data: { include: ['pg', 'pg-pool', '@grpc/grpc-js', 'http', 'https', 'node:http', 'node:https'] } });

  const [{ diag, DiagLogLevel }, { NodeSDK }, { PgInstrumentation }, { GrpcInstrumentation }, { HttpInstrumentation }] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/instrumentation-pg'),
    import('@opentelemetry/instrumentation-grpc'),
    import('@opentelemetry/instrumentation-http'),
  ]);
  const namedByEnv = set(env, 'OTEL_SERVICE_NAME') || /(^|,)\s*service\.name\s*=/.test(env['OTEL_RESOURCE_ATTRIBUTES'] ?? '');
  const started = new NodeSDK({
    ...(namedByEnv ? {} : { serviceName: SERVICE_NAME }),
    instrumentations: [
      // Database spans only inside a traced operation (Register, batch write), not for every background query.
      new PgInstrumentation({ requireParentSpan: true }),
      // Probes call grpc.health.v1.Health every few seconds; its methods are the only ones named Check and Watch.
      new GrpcInstrumentation({ ignoreGrpcMethods: ['Check', 'Watch'] }),
      new HttpInstrumentation({ ignoreIncomingRequestHook: (request) => UNTRACED_HTTP_PATHS.has((request.url ?? '').split('?')[0] ?? '') }),
    ],
    ...(set(env, 'OTEL_METRICS_EXPORTER') ? {} : { metricReaders: [] }),
    ...(set(env, 'OTEL_LOGS_EXPORTER') ? {} : { logRecordProcessors: [] }),
  });
  routeDiagnostics(env, diag, DiagLogLevel);
  started.start();
  sdk = started;
  return true;
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/**
 * The SDK's own diagnostics (e.g. a collector that cannot be reached) go to the JSON log like everything else,
 * at warn and above unless OTEL_LOG_LEVEL asks for more. Runs before the configuration is validated, so an
 * invalid INGEST_LOG_LEVEL falls back to info here and is reported by the configuration check.
 */
function routeDiagnostics(env: NodeJS.ProcessEnv, diag: typeof import('@opentelemetry/api').diag, levels: typeof import('@opentelemetry/api').DiagLogLevel): void {
  const level = (env['INGEST_LOG_LEVEL'] ?? '').trim();
  const logger = createLogger(LOG_LEVELS.has(level) ? level : 'info').child({ module: 'otel' });
  otelLogger = logger;
  const wanted = (env['OTEL_LOG_LEVEL'] ?? '').trim().toUpperCase();
  const named = (levels as unknown as Record<string, unknown>)[wanted];
  const logLevel = typeof named === 'number' ? named : levels.WARN;
  const line = (write: (message: string) => void) => (message: string, ...args: unknown[]) => write(format(message, ...args));
  diag.setLogger(
    {
      error: line((m) => logger.error(m)),
      warn: line((m) => logger.warn(m)),
      info: line((m) => logger.info(m)),
      debug: line((m) => logger.debug(m)),
      verbose: line((m) => logger.trace(m)),
    },
    { logLevel, suppressOverrideMessage: true },
  );
}

/**
 * Flushes buffered spans and stops the SDK (called once the service has shut down). Bounded, so that an
 * unreachable collector cannot hold the process past its termination grace period.
 */
export async function stopTracing(timeoutMs = 5_000): Promise<void> {
  const running = sdk;
  sdk = undefined;
  if (running === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
    timer.unref();
  });
  try {
    const finished = await Promise.race([running.shutdown().then(() => true), gaveUp.then(() => false)]);
    if (!finished) otelLogger?.warn({ timeoutMs }, 'gave up flushing spans at exit');
  } catch (error) {
    otelLogger?.warn({ err: error }, 'could not export the last spans at exit');
  } finally {
    clearTimeout(timer);
  }
}
