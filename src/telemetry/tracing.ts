/**
 * OpenTelemetry bootstrap (SPEC §10). Configured only by the standard OTEL_* variables; off when no
 * OTLP endpoint is configured. Must run before the instrumented libraries are imported.
 */
export async function startTracing(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const endpoint = env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] ?? env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  if (endpoint === undefined || endpoint === '' || env['OTEL_SDK_DISABLED'] === 'true') return;
  // Filled in by the observability work: NodeSDK with OTLP exporter and pg/grpc/http instrumentation.
}
