import { SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';

/** The tracer of the service's own spans (Register, heartbeat stream open/close, batch writes). */
export const tracer = trace.getTracer('ct-ops-ingest');

/**
 * Runs `fn` inside a new active span (so PostgreSQL queries inside become its children) and ends the span when `fn`
 * settles; a thrown error is recorded on the span and rethrown. Without tracing configured this costs a no-op span.
 * Attributes must be bounded, non-secret values (ids are fine on spans, tokens and keys never).
 */
export async function withSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T> | T): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      span.recordException(error instanceof Error ? { name: error.name, message: error.message } : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : 'error' });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Records a point-in-time span (e.g. a heartbeat stream closing) with the given attributes. */
export function recordSpan(name: string, attributes: Attributes): void {
  tracer.startSpan(name, { attributes }).end();
}
