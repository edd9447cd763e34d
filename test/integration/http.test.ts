import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { calculateJwkThumbprint, createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { startTestService, type TestService } from '../helpers/service.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';

/** Resolves with what the server sent before it closed the connection; rejects if it stays open past `limitMs`. */
function closedBy(socket: import('node:net').Socket, limitMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
    });
    socket.on('error', () => undefined);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for more than ${limitMs} ms`));
    }, limitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
  });
}

describe('HTTP port', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ env: { INGEST_HTTP_REQUEST_TIMEOUT_SECONDS: '1' } });
  });
  after(async () => {
    await svc.stop();
  });

  it('should answer GET /healthz with 200 ok', async () => {
    const res = await svc.http('/healthz');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(await res.text(), 'ok\n');
  });

  it('should answer HEAD /healthz with 200 and no body', async () => {
    const res = await svc.http('/healthz', { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '');
  });

  it('should answer GET /readyz with 200 and a JSON status when database and keys are fine', async () => {
    const res = await svc.http('/readyz');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await res.json(), { status: 'ready' });
  });

  it('should serve the JWKS as cacheable JSON whose key verifies a JWT the service signed', async () => {
    const res = await svc.http('/.well-known/jwks.json');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const cacheControl = res.headers.get('cache-control') ?? '';
    assert.match(cacheControl, /max-age=(\d+)/);
    const maxAge = Number(/max-age=(\d+)/.exec(cacheControl)?.[1]);
    assert.ok(maxAge >= 60 && maxAge <= 900, `max-age ${maxAge} should be a few minutes`);
    const jwks = (await res.json()) as JSONWebKeySet;
    assert.equal(jwks.keys.length, 1);
    const [key] = jwks.keys;
    assert.ok(key !== undefined);
    assert.deepEqual(Object.keys(key).sort(), ['alg', 'e', 'kid', 'kty', 'n', 'use']);
    assert.equal(key.kty, 'RSA');
    assert.equal(key.use, 'sig');
    assert.equal(key.alg, 'RS256');
    assert.equal(key.kid, await calculateJwkThumbprint({ kty: 'RSA', n: key.n, e: key.e }, 'sha256'));

    const token = await svc.service.context.agentTokens.sign('agent-1', 'org-1');
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: 'ct-ops-ingest', algorithms: ['RS256'] });
    assert.equal(protectedHeader.kid, key.kid);
    assert.equal(payload.sub, 'agent-1');
    assert.equal(payload['org'], 'org-1');
  });

  it('should serve Prometheus metrics in the text exposition format', async () => {
    const res = await svc.http('/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    assert.match(body, /^# HELP process_cpu_user_seconds_total /m);
    assert.match(body, /^ingest_ready 1$/m);
  });

  it('should answer an unknown path with 404', async () => {
    for (const pathname of ['/', '/nope', '/healthz/extra', '/.well-known/other.json']) {
      const res = await svc.http(pathname);
      assert.equal(res.status, 404, pathname);
      assert.deepEqual(await res.json(), { error: 'not found' });
    }
  });

  it('should answer other methods with 405 and an Allow header', async () => {
    for (const pathname of ['/healthz', '/readyz', '/.well-known/jwks.json', '/metrics']) {
      for (const method of ['POST', 'PUT', 'DELETE']) {
        const res = await svc.http(pathname, { method, body: method === 'DELETE' ? null : '{}' });
        assert.equal(res.status, 405, `${method} ${pathname}`);
        assert.equal(res.headers.get('allow'), 'GET, HEAD');
        await res.body?.cancel();
      }
    }
  });

  it('should ignore a query string when routing', async () => {
    const res = await svc.http('/healthz?probe=1');
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'ok\n');
  });

  it('should answer a malformed request with 400 and close the connection', async () => {
    const socket = connect(svc.service.httpPort, '127.0.0.1');
    socket.write('THIS IS NOT HTTP\r\n\r\n');
    const received = await closedBy(socket, 5_000);
    assert.match(received, /^HTTP\/1\.1 400 /);
  });

  it('should cut off a client that sends its headers slowly, while answering others', async () => {
    const socket = connect(svc.service.httpPort, '127.0.0.1');
    socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n');
    // One header line every 200 ms: never idle long enough for an idle timeout, never finished.
    const drip = setInterval(() => {
      if (socket.writable) socket.write('X-Slow: 1\r\n');
    }, 200);
    const closed = closedBy(socket, 8_000);
    try {
      const res = await svc.http('/healthz');
      assert.equal(await res.text(), 'ok\n');
      const received = await closed;
      assert.match(received, /^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(drip);
      socket.destroy();
    }
    const res = await svc.http('/healthz');
    assert.equal(res.status, 200);
  });

  it('should close a connection that never sends a request', async () => {
    const socket = connect(svc.service.httpPort, '127.0.0.1');
    await closedBy(socket, 8_000);
  });
});

describe('HTTP readiness', () => {
  it('should answer /readyz with 503 and a reason while the database is unreachable, and 200 when it is back', async () => {
    const db = await createTestDatabase();
    const target = new URL(db.url);
    const proxy = await startTcpProxy(target.hostname, Number(target.port));
    const viaProxy = new URL(db.url);
    viaProxy.port = String(proxy.port);
    const svc = await startTestService({ db, env: { DATABASE_URL: viaProxy.toString() } });
    try {
      assert.equal((await svc.http('/readyz')).status, 200);
      proxy.cut();
      const res = await svc.http('/readyz');
      assert.equal(res.status, 503);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(await res.json(), { status: 'not ready', reasons: ['database unreachable'] });
      // Liveness does not depend on the database.
      assert.equal((await svc.http('/healthz')).status, 200);
      proxy.restore();
      assert.equal((await svc.http('/readyz')).status, 200);
    } finally {
      await svc.stop();
      await proxy.close();
      await db.drop();
    }
  });

  it('should answer /readyz with 503 "draining" once shutdown begins', async () => {
    let releaseDrain!: () => void;
    const drainHeld = new Promise<void>((resolve) => {
      releaseDrain = resolve;
    });
    let drainStarted!: () => void;
    const drainReached = new Promise<void>((resolve) => {
      drainStarted = resolve;
    });
    const svc = await startTestService({
      components: [
        () => ({
          drain: async () => {
            drainStarted();
            await drainHeld;
          },
        }),
      ],
    });
    try {
      assert.equal((await svc.http('/readyz')).status, 200);
      const shutdown = svc.service.shutdown();
      await drainReached;
      const res = await svc.http('/readyz');
      assert.equal(res.status, 503);
      assert.deepEqual(await res.json(), { status: 'not ready', reasons: ['draining'] });
      assert.equal((await svc.http('/healthz')).status, 200);
      releaseDrain();
      await shutdown;
    } finally {
      releaseDrain();
      await svc.stop();
    }
  });
});
