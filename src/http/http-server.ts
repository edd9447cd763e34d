import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../telemetry/logger.ts';

export interface Readiness {
  readonly ready: boolean;
  readonly reasons: readonly string[];
}

export interface HttpEndpoints {
  readiness(): Promise<Readiness>;
  jwks(): unknown;
  metrics(): Promise<{ contentType: string; body: string }>;
}

export interface HttpServerOptions {
  readonly requestTimeoutMs: number;
  readonly logger: Logger;
}

type Route = (res: ServerResponse) => Promise<void> | void;

/** The plain HTTP port (SPEC §8.2): liveness, readiness, JWKS and metrics. Nothing else. */
export function createHttpServer(endpoints: HttpEndpoints, options: HttpServerOptions): Server {
  const routes: Record<string, Route> = {
    '/healthz': (res) => send(res, 200, 'text/plain; charset=utf-8', 'ok\n'),
    '/readyz': async (res) => {
      const readiness = await endpoints.readiness();
      send(res, readiness.ready ? 200 : 503, 'application/json', JSON.stringify(readiness.ready ? { status: 'ready' } : { status: 'not ready', reasons: readiness.reasons }));
    },
    '/.well-known/jwks.json': (res) => {
      res.setHeader('Cache-Control', 'public, max-age=300');
      send(res, 200, 'application/json', JSON.stringify(endpoints.jwks()));
    },
    '/metrics': async (res) => {
      const { contentType, body } = await endpoints.metrics();
      send(res, 200, contentType, body);
    },
  };

  const server = createServer(
    {
      requestTimeout: options.requestTimeoutMs,
      headersTimeout: Math.min(options.requestTimeoutMs, 10_000),
      keepAliveTimeout: 5_000,
      // Node enforces the two timeouts above only when it checks its connections (every 30 s by default),
      // which would let a slow client hold a socket far longer than the configured timeout.
      connectionsCheckingInterval: Math.max(Math.min(options.requestTimeoutMs / 4, 1_000), 100),
      maxHeaderSize: 16_384,
    },
    (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const route = routes[path];
      if (route === undefined) return send(res, 404, 'application/json', JSON.stringify({ error: 'not found' }));
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        return send(res, 405, 'application/json', JSON.stringify({ error: 'method not allowed' }));
      }
      // A route that throws synchronously must become a 500 too, not an uncaught exception.
      Promise.resolve()
        .then(() => route(res))
        .catch((error: unknown) => {
          options.logger.error({ err: { message: (error as Error).message }, path }, 'HTTP handler failed');
          if (!res.headersSent) send(res, 500, 'application/json', JSON.stringify({ error: 'internal error' }));
          else res.destroy();
        });
    },
  );
  // No request may hold the port: bound header, body and idle times.
  server.maxHeadersCount = 100;
  server.setTimeout(options.requestTimeoutMs, (socket) => socket.destroy());
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    const statusLine = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    // Answer once, then close: a client that never reads must not keep the socket half-open.
    if (socket.writable) socket.end(`HTTP/1.1 ${statusLine}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
    else socket.destroy();
  });
  return server;
}

function send(res: ServerResponse, statusCode: number, contentType: string, body: string): void {
  res.statusCode = statusCode;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
