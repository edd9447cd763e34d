import { createServer, type Server } from 'node:http';

/** One span as the OTLP/HTTP JSON exporter sends it (ids are hex strings). */
export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind: number;
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly scope: string;
  readonly resource: Readonly<Record<string, unknown>>;
}

interface AnyValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}
interface KeyValue {
  key: string;
  value: AnyValue;
}
interface ExportRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: Array<{ scope?: { name?: string }; spans?: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: KeyValue[] }> }>;
  }>;
}

const plain = (attributes: KeyValue[] = []): Record<string, unknown> =>
  Object.fromEntries(attributes.map((a) => [a.key, a.value.stringValue ?? a.value.intValue ?? a.value.boolValue ?? a.value.doubleValue]));

/** A real OTLP/HTTP receiver (JSON encoding, POST /v1/traces) on a loopback port. */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly #server: Server;
  #waiters: Array<() => void> = [];

  constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/v1/traces') this.#accept(JSON.parse(Buffer.concat(chunks).toString('utf8')) as ExportRequest);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const address = this.#server.address();
    if (typeof address !== 'object' || address === null) throw new Error('no address');
    return `http://127.0.0.1:${address.port}`;
  }

  /** Resolves once a span matching `predicate` has arrived; rejects if none did within `giveUpMs` (a hang guard, not a timing check). */
  async waitFor(predicate: (span: ReceivedSpan) => boolean, giveUpMs = 30_000): Promise<ReceivedSpan> {
    const giveUpAt = Date.now() + giveUpMs;
    for (;;) {
      const found = this.spans.find(predicate);
      if (found !== undefined) return found;
      const remaining = giveUpAt - Date.now();
      if (remaining <= 0) throw new Error(`no matching span arrived; received: ${this.spans.map((s) => s.name).join(', ') || 'none'}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #accept(request: ExportRequest): void {
    for (const resourceSpans of request.resourceSpans ?? []) {
      const resource = plain(resourceSpans.resource?.attributes);
      for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
        for (const span of scopeSpans.spans ?? []) {
          this.spans.push({
            traceId: span.traceId,
            spanId: span.spanId,
            ...(span.parentSpanId === undefined || span.parentSpanId === '' ? {} : { parentSpanId: span.parentSpanId }),
            name: span.name,
            kind: span.kind,
            attributes: plain(span.attributes),
            scope: scopeSpans.scope?.name ?? '',
            resource,
          });
        }
      }
    }
    for (const wake of this.#waiters.splice(0)) wake();
  }
}
