// An in-test Kubernetes API server for Secrets: the real REST paths, status objects, resourceVersion conflict
// semantics and streaming watch, over HTTPS with a bearer token — so the real @kubernetes/client-node talks to it
// exactly as it would to a cluster. Only what the Secret key source and an operator's kubectl use is implemented.
import { createServer, request as httpsRequest, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { createTestPki, type TestPki } from '../helpers/tls.ts';

export interface StoredSecret {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: { name: string; namespace: string; resourceVersion: string; uid: string; creationTimestamp: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  type: string;
  data: Record<string, string>;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

/** Answers a request instead of the normal handler (fault injection): return a status code, or 'hang', or undefined to pass. */
export type Fault = (method: string, url: URL) => number | 'hang' | undefined;

type WatchEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: StoredSecret; rv: number };

export interface FakeKubernetesApi {
  readonly url: string;
  readonly token: string;
  readonly pki: TestPki;
  /** A kubeconfig file (server, CA, token, namespace) for KUBECONFIG. */
  readonly kubeconfigFile: string;
  /** A service account mount: `${serviceAccountPrefix}/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}`. */
  readonly serviceAccountPrefix: string;
  readonly requests: RecordedRequest[];
  secret(namespace: string, name: string): StoredSecret | undefined;
  secrets(namespace: string): StoredSecret[];
  /** Holds every GET of a single Secret until `count` of them arrived (makes a start-up race deterministic). */
  holdGetsUntil(count: number): void;
  setFault(fault: Fault | undefined): void;
  /** Breaks every open watch connection (as an API server crash would). */
  dropWatches(): void;
  /** Ends every open watch stream cleanly (as the API server does at `timeoutSeconds`). */
  endWatches(): void;
  /** Holds new watch requests until `releaseWatches()`; resolves the count held so far via `heldWatches()`. */
  holdWatches(): void;
  heldWatches(): number;
  releaseWatches(): void;
  /** Forgets watch history: a watch from a resourceVersion older than the current one gets 410 Gone (etcd compaction). */
  compact(): void;
  openWatches(): number;
  /** A kubectl-like authenticated request (JSON body; PATCH uses merge-patch). */
  request(method: string, pathname: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  close(): Promise<void>;
}

export async function startFakeKubernetesApi(options: { namespace: string }): Promise<FakeKubernetesApi> {
  const pki = await createTestPki();
  const token = `test-token-${randomUUID()}`;
  const store = new Map<string, StoredSecret>();
  let events: WatchEvent[] = [];
  let compactedBefore = 0;
  let resourceVersion = 1000;
  const requests: RecordedRequest[] = [];
  const watchers = new Set<{ res: ServerResponse; namespace: string; name: string | undefined }>();
  const sockets = new Set<Socket>();
  let fault: Fault | undefined;
  let heldGets: Array<() => void> = [];
  let holdUntil = 0;
  let watchGate: { promise: Promise<void>; release: () => void; held: number } | undefined;

  const key = (namespace: string, name: string): string => `${namespace}/${name}`;

  const send = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const statusBody = (code: number, reason: string, message: string, details?: object) => ({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details === undefined ? {} : { details }),
    code,
  });
  const notFound = (name: string) => statusBody(404, 'NotFound', `secrets "${name}" not found`, { name, kind: 'secrets' });

  const publish = (event: WatchEvent): void => {
    events.push(event);
    for (const watcher of watchers) {
      if (watcher.namespace !== event.object.metadata.namespace) continue;
      if (watcher.name !== undefined && watcher.name !== event.object.metadata.name) continue;
      watcher.res.write(`${JSON.stringify({ type: event.type, object: event.object })}\n`);
    }
  };

  const store_ = (secret: StoredSecret, type: 'ADDED' | 'MODIFIED'): StoredSecret => {
    resourceVersion += 1;
    secret.metadata.resourceVersion = String(resourceVersion);
    store.set(key(secret.metadata.namespace, secret.metadata.name), secret);
    publish({ type, object: structuredClone(secret), rv: resourceVersion });
    return secret;
  };

  const normalise = (body: Record<string, unknown>, namespace: string, name: string, existing: StoredSecret | undefined): StoredSecret | string => {
    const metadata = (body['metadata'] ?? {}) as Record<string, unknown>;
    const data: Record<string, string> = { ...((body['data'] as Record<string, string> | undefined) ?? {}) };
    for (const [k, v] of Object.entries((body['stringData'] as Record<string, string> | undefined) ?? {})) data[k] = Buffer.from(v).toString('base64');
    for (const [k, v] of Object.entries(data)) {
      if (typeof v !== 'string' || Buffer.from(v, 'base64').toString('base64') !== v) return `data[${k}]: illegal base64 data`;
    }
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name,
        namespace,
        resourceVersion: '',
        uid: existing?.metadata.uid ?? randomUUID(),
        creationTimestamp: existing?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        ...(metadata['labels'] === undefined ? {} : { labels: metadata['labels'] as Record<string, string> }),
        ...(metadata['annotations'] === undefined ? {} : { annotations: metadata['annotations'] as Record<string, string> }),
      },
      type: typeof body['type'] === 'string' ? (body['type'] as string) : (existing?.type ?? 'Opaque'),
      data,
    };
  };

  const readBody = async (req: IncomingMessage): Promise<Record<string, unknown> | undefined> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };

  const mergePatch = (target: unknown, patch: unknown): unknown => {
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
    const result: Record<string, unknown> = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
    for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
      if (v === null) delete result[k];
      else result[k] = mergePatch(result[k], v);
    }
    return result;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://fake');
    const method = req.method ?? 'GET';
    const record = (status: number): void => void requests.push({ method, path: url.pathname + url.search, status });
    if (req.headers.authorization !== `Bearer ${token}`) {
      record(401);
      send(res, 401, statusBody(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    const injected = fault?.(method, url);
    if (injected === 'hang') {
      record(0);
      return;
    }
    if (injected !== undefined) {
      record(injected);
      send(res, injected, statusBody(injected, injected === 403 ? 'Forbidden' : 'InternalError', injected === 403 ? `secrets is forbidden: User "system:serviceaccount:test:ingest" cannot access resource "secrets"` : 'etcdserver: request timed out'));
      return;
    }
    const match = /^\/api\/v1\/namespaces\/([^/]+)\/secrets(?:\/([^/]+))?$/.exec(url.pathname);
    if (match === null) {
      record(404);
      send(res, 404, statusBody(404, 'NotFound', 'the server could not find the requested resource'));
      return;
    }
    const namespace = decodeURIComponent(match[1] ?? '');
    const name = match[2] === undefined ? undefined : decodeURIComponent(match[2]);

    if (method === 'GET' && name === undefined && url.searchParams.get('watch') === 'true') {
      const selector = url.searchParams.get('fieldSelector');
      const selected = selector?.startsWith('metadata.name=') === true ? selector.slice('metadata.name='.length) : undefined;
      const from = Number(url.searchParams.get('resourceVersion') ?? '0');
      if (watchGate !== undefined) {
        watchGate.held += 1;
        await watchGate.promise;
      }
      if (from !== 0 && from < compactedBefore) {
        record(410);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`${JSON.stringify({ type: 'ERROR', object: statusBody(410, 'Expired', `too old resource version: ${from} (${compactedBefore})`) })}\n`);
        return;
      }
      record(200);
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      const watcher = { res, namespace, name: selected };
      if (from === 0) {
        for (const secret of store.values()) {
          if (secret.metadata.namespace === namespace && (selected === undefined || secret.metadata.name === selected)) res.write(`${JSON.stringify({ type: 'ADDED', object: secret })}\n`);
        }
      } else {
        for (const event of events) {
          if (event.rv > from && event.object.metadata.namespace === namespace && (selected === undefined || event.object.metadata.name === selected)) {
            res.write(`${JSON.stringify({ type: event.type, object: event.object })}\n`);
          }
        }
      }
      watchers.add(watcher);
      const timeoutSeconds = Number(url.searchParams.get('timeoutSeconds') ?? '0');
      const timer = timeoutSeconds > 0 ? setTimeout(() => res.end(), timeoutSeconds * 1000) : undefined;
      res.on('close', () => {
        if (timer !== undefined) clearTimeout(timer);
        watchers.delete(watcher);
      });
      return;
    }
    if (method === 'GET' && name === undefined) {
      record(200);
      send(res, 200, { kind: 'SecretList', apiVersion: 'v1', metadata: { resourceVersion: String(resourceVersion) }, items: [...store.values()].filter((s) => s.metadata.namespace === namespace) });
      return;
    }
    if (method === 'GET' && name !== undefined) {
      if (holdUntil > 0) {
        await new Promise<void>((resolve) => {
          heldGets.push(resolve);
          if (heldGets.length >= holdUntil) {
            holdUntil = 0;
            const release = heldGets;
            heldGets = [];
            for (const r of release) r();
          }
        });
      }
      const secret = store.get(key(namespace, name));
      record(secret === undefined ? 404 : 200);
      send(res, secret === undefined ? 404 : 200, secret ?? notFound(name));
      return;
    }
    if (method === 'POST' && name === undefined) {
      const body = await readBody(req);
      const wanted = ((body?.['metadata'] ?? {}) as { name?: unknown }).name;
      if (body === undefined || typeof wanted !== 'string') {
        record(400);
        send(res, 400, statusBody(400, 'BadRequest', 'invalid Secret: metadata.name is required'));
        return;
      }
      if (store.has(key(namespace, wanted))) {
        record(409);
        send(res, 409, statusBody(409, 'AlreadyExists', `secrets "${wanted}" already exists`, { name: wanted, kind: 'secrets' }));
        return;
      }
      const secret = normalise(body, namespace, wanted, undefined);
      if (typeof secret === 'string') {
        record(422);
        send(res, 422, statusBody(422, 'Invalid', secret));
        return;
      }
      record(201);
      send(res, 201, store_(secret, 'ADDED'));
      return;
    }
    if ((method === 'PUT' || method === 'PATCH') && name !== undefined) {
      const existing = store.get(key(namespace, name));
      const body = await readBody(req);
      if (existing === undefined) {
        record(404);
        send(res, 404, notFound(name));
        return;
      }
      if (body === undefined) {
        record(400);
        send(res, 400, statusBody(400, 'BadRequest', 'the request body is not JSON'));
        return;
      }
      const merged = method === 'PATCH' ? (mergePatch(structuredClone(existing), body) as Record<string, unknown>) : body;
      const requested = ((body['metadata'] ?? {}) as { resourceVersion?: unknown }).resourceVersion;
      // PUT without a resourceVersion is an unconditional update, as in Kubernetes; with one it must match.
      if (requested !== undefined && requested !== existing.metadata.resourceVersion) {
        record(409);
        send(res, 409, statusBody(409, 'Conflict', `Operation cannot be fulfilled on secrets "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, kind: 'secrets' }));
        return;
      }
      const secret = normalise(merged, namespace, name, existing);
      if (typeof secret === 'string') {
        record(422);
        send(res, 422, statusBody(422, 'Invalid', secret));
        return;
      }
      record(200);
      send(res, 200, store_(secret, 'MODIFIED'));
      return;
    }
    if (method === 'DELETE' && name !== undefined) {
      const existing = store.get(key(namespace, name));
      if (existing === undefined) {
        record(404);
        send(res, 404, notFound(name));
        return;
      }
      store.delete(key(namespace, name));
      resourceVersion += 1;
      const gone = { ...structuredClone(existing), metadata: { ...existing.metadata, resourceVersion: String(resourceVersion) } };
      publish({ type: 'DELETED', object: gone, rv: resourceVersion });
      record(200);
      send(res, 200, gone);
      return;
    }
    record(405);
    send(res, 405, statusBody(405, 'MethodNotAllowed', `${method} is not supported`));
  };

  const server: Server = createServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, statusBody(500, 'InternalError', (error as Error).message));
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `https://127.0.0.1:${port}`;

  const dir = await mkdtemp(path.join(tmpdir(), 'fake-kube-'));
  const kubeconfigFile = path.join(dir, 'kubeconfig');
  await writeFile(
    kubeconfigFile,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: url, 'certificate-authority-data': Buffer.from(pki.ca.certPem).toString('base64') } }],
      users: [{ name: 'fake', user: { token } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake', namespace: options.namespace } }],
      'current-context': 'fake',
    }),
    { mode: 0o600 },
  );
  const serviceAccountPrefix = path.join(dir, 'pod');
  const saDir = path.join(serviceAccountPrefix, 'var/run/secrets/kubernetes.io/serviceaccount');
  await mkdir(saDir, { recursive: true });
  await Promise.all([writeFile(path.join(saDir, 'token'), token), writeFile(path.join(saDir, 'ca.crt'), pki.ca.certPem), writeFile(path.join(saDir, 'namespace'), options.namespace)]);

  return {
    url,
    token,
    pki,
    kubeconfigFile,
    serviceAccountPrefix,
    requests,
    secret: (namespace, name) => {
      const s = store.get(key(namespace, name));
      return s === undefined ? undefined : structuredClone(s);
    },
    secrets: (namespace) => [...store.values()].filter((s) => s.metadata.namespace === namespace).map((s) => structuredClone(s)),
    holdGetsUntil: (count) => {
      holdUntil = count;
    },
    setFault: (next) => {
      fault = next;
    },
    dropWatches: () => {
      for (const watcher of watchers) watcher.res.destroy();
    },
    endWatches: () => {
      for (const watcher of watchers) watcher.res.end();
    },
    holdWatches: () => {
      let release = (): void => undefined;
      const promise = new Promise<void>((resolve) => (release = resolve));
      watchGate = { promise, release, held: 0 };
    },
    heldWatches: () => watchGate?.held ?? 0,
    releaseWatches: () => {
      const gate = watchGate;
      watchGate = undefined;
      gate?.release();
    },
    compact: () => {
      compactedBefore = resourceVersion;
      events = [];
    },
    openWatches: () => watchers.size,
    request: (method, pathname, body) =>
      new Promise((resolve, reject) => {
        const payload = body === undefined ? undefined : JSON.stringify(body);
        const req = httpsRequest(
          `${url}${pathname}`,
          {
            method,
            ca: pki.ca.certPem,
            headers: {
              authorization: `Bearer ${token}`,
              ...(payload === undefined ? {} : { 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json' }),
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') as unknown }));
          },
        );
        req.on('error', reject);
        req.end(payload);
      }),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
      await rm(pki.dir, { recursive: true, force: true });
    },
  };
}
