// The Kubernetes Secret key source inside the real service (SPEC §8.1), against the fake API server over HTTPS
// with a bearer token, reached through the real @kubernetes/client-node via KUBECONFIG.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { generateSigningKeyPem } from '../../src/keys/key-material.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { startTestService, type TestService } from '../helpers/service.ts';
import { startFakeKubernetesApi, type FakeKubernetesApi } from './fake-kubernetes-api.ts';
import { eventually, jwksKids, kidOf, runIngest } from './helpers.ts';

const NAMESPACE = 'ct-ops';
const SECRET = 'ingest-jwt';

describe('signing keys from a Kubernetes Secret', () => {
  let api: FakeKubernetesApi;
  let db: TestDatabase;
  let replicas: TestService[] = [];

  before(async () => {
    api = await startFakeKubernetesApi({ namespace: NAMESPACE });
    process.env['KUBECONFIG'] = api.kubeconfigFile;
    delete process.env['KUBERNETES_SERVICE_HOST'];
    db = await createTestDatabase();
  });

  after(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await db.drop();
    await api.close();
  });

  const allJwks = (): Promise<string[][]> => Promise.all(replicas.map((r) => jwksKids(r.http)));

  it('should end with one Secret and identical JWKS when five replicas start at once against an empty namespace', async () => {
    // Every replica reads "not found" before any creates: all five race to create, the API server picks one.
    api.holdGetsUntil(5);
    replicas = await Promise.all(Array.from({ length: 5 }, () => startTestService({ db, env: { INGEST_JWT_KEY_SECRET: SECRET } })));

    assert.equal(api.secrets(NAMESPACE).length, 1);
    const posts = api.requests.filter((r) => r.method === 'POST');
    assert.deepEqual(posts.map((r) => r.status).sort(), [201, 409, 409, 409, 409]);
    const secret = api.secret(NAMESPACE, SECRET);
    assert.ok(secret !== undefined);
    assert.equal(secret.metadata.labels?.['app.kubernetes.io/component'], 'jwt-signing-key');
    const kid = await kidOf(secret, 'private.pem');
    assert.deepEqual(await allJwks(), Array.from({ length: 5 }, () => [kid]));
  });

  it('should reach every running replica without restart when `ingest key rotate` rotates the Secret', async () => {
    const before = api.secret(NAMESPACE, SECRET);
    assert.ok(before !== undefined);
    const oldKid = await kidOf(before, 'private.pem');
    const oldToken = await replicas[0]!.service.context.agentTokens.sign('agent-1', 'org-1');

    const result = await runIngest(['key', 'rotate'], { KUBECONFIG: api.kubeconfigFile, INGEST_JWT_KEY_SECRET: SECRET });
    assert.equal(result.code, 0, result.stderr);
    const rotated = api.secret(NAMESPACE, SECRET);
    assert.ok(rotated !== undefined);
    const newKid = await kidOf(rotated, 'private.pem');
    assert.equal(await kidOf(rotated, 'previous.pem'), oldKid);
    assert.match(result.stdout, new RegExp(`rotated Kubernetes Secret ${NAMESPACE}/${SECRET}: current kid ${newKid}, previous kid ${oldKid}`));
    assert.doesNotMatch(result.stdout + result.stderr, /BEGIN|PRIVATE KEY/);

    await eventually('every replica to publish the rotated keys', async () => {
      const kids = await allJwks();
      return kids.every((k) => k.join() === [newKid, oldKid].join()) ? kids : undefined;
    });
    // A token signed before the rotation still verifies on another replica; new tokens use the new key.
    const claims = await replicas[4]!.service.context.agentTokens.verify(oldToken);
    assert.equal(claims.agentId, 'agent-1');
    const newToken = await replicas[2]!.service.context.agentTokens.sign('agent-2', 'org-1');
    assert.equal(JSON.parse(Buffer.from(newToken.split('.')[0]!, 'base64url').toString('utf8')).kid, newKid);
    assert.ok(replicas.every((r) => r.logs().includes('signing keys reloaded')));
  });

  it('should pick up a rotation written with a kubectl-style merge PATCH', async () => {
    const current = api.secret(NAMESPACE, SECRET);
    assert.ok(current !== undefined);
    const pem = await generateSigningKeyPem();
    const response = await api.request('PATCH', `/api/v1/namespaces/${NAMESPACE}/secrets/${SECRET}`, {
      data: { 'private.pem': Buffer.from(pem).toString('base64'), 'previous.pem': current.data['private.pem'] },
    });
    assert.equal(response.status, 200);
    const patched = api.secret(NAMESPACE, SECRET)!;
    const expected = [await kidOf(patched, 'private.pem'), await kidOf(current, 'private.pem')];
    await eventually('the patched keys on every replica', async () => ((await allJwks()).every((k) => k.join() === expected.join()) ? true : undefined));
  });

  it('should read the Secret again when a resumed watch is refused as too old (410 Gone)', async () => {
    api.holdWatches();
    api.endWatches();
    await eventually('every replica to resume its watch', () => (api.heldWatches() >= replicas.length ? true : undefined));
    // While the replicas wait, the Secret changes and the API server compacts the history they would resume from.
    const current = api.secret(NAMESPACE, SECRET)!;
    const pem = await generateSigningKeyPem();
    const response = await api.request('PUT', `/api/v1/namespaces/${NAMESPACE}/secrets/${SECRET}`, {
      ...current,
      data: { 'private.pem': Buffer.from(pem).toString('base64'), 'previous.pem': current.data['private.pem'] },
    });
    assert.equal(response.status, 200);
    api.compact();
    api.releaseWatches();
    const updated = api.secret(NAMESPACE, SECRET)!;
    const expected = [await kidOf(updated, 'private.pem'), await kidOf(current, 'private.pem')];
    await eventually('the new keys after the re-read', async () => ((await allJwks()).every((k) => k.join() === expected.join()) ? true : undefined));
    assert.ok(api.requests.filter((r) => r.status === 410).length >= replicas.length);
  });

  it('should re-establish the watch after the connection to the API server breaks', async () => {
    api.dropWatches();
    const current = api.secret(NAMESPACE, SECRET)!;
    const pem = await generateSigningKeyPem();
    const response = await api.request('PUT', `/api/v1/namespaces/${NAMESPACE}/secrets/${SECRET}`, {
      ...current,
      data: { 'private.pem': Buffer.from(pem).toString('base64'), 'previous.pem': current.data['private.pem'] },
    });
    assert.equal(response.status, 200);
    const updated = api.secret(NAMESPACE, SECRET)!;
    const expected = [await kidOf(updated, 'private.pem'), await kidOf(current, 'private.pem')];
    await eventually('the new keys after the watch was re-established', async () => ((await allJwks()).every((k) => k.join() === expected.join()) ? true : undefined));
  });

  it('should keep serving its keys while the API server fails, then catch up when it recovers', async () => {
    const before = await allJwks();
    const failuresLogged = replicas.map((r) => r.logs().split('signing key reload failed').length);
    api.setFault(() => 500);
    try {
      api.dropWatches();
      await eventually('each replica to log the failing API', () =>
        replicas.every((r, i) => r.logs().split('signing key reload failed').length > failuresLogged[i]! && r.logs().includes('Kubernetes API answered 500'))
          ? true
          : undefined,
      );
      assert.deepEqual(await allJwks(), before);
      for (const replica of replicas) assert.equal((await replica.http('/readyz')).status, 200);
      assert.ok(replicas.every((r) => !r.logs().includes(api.token)));
      const metrics = await (await replicas[0]!.http('/metrics')).text();
      assert.match(metrics, /ingest_key_reloads_total\{result="failure"\} [1-9]/);
    } finally {
      api.setFault(undefined);
    }
    const current = api.secret(NAMESPACE, SECRET)!;
    const pem = await generateSigningKeyPem();
    await api.request('PATCH', `/api/v1/namespaces/${NAMESPACE}/secrets/${SECRET}`, {
      data: { 'private.pem': Buffer.from(pem).toString('base64'), 'previous.pem': current.data['private.pem'] },
    });
    const updated = api.secret(NAMESPACE, SECRET)!;
    const expected = [await kidOf(updated, 'private.pem'), await kidOf(current, 'private.pem')];
    await eventually('the keys written after recovery', async () => ((await allJwks()).every((k) => k.join() === expected.join()) ? true : undefined), 60_000);
  });

  it('should re-create a deleted Secret from the keys in force', async () => {
    const before = api.secret(NAMESPACE, SECRET)!;
    const response = await api.request('DELETE', `/api/v1/namespaces/${NAMESPACE}/secrets/${SECRET}`);
    assert.equal(response.status, 200);
    const recreated = await eventually('the Secret to be re-created', () => api.secret(NAMESPACE, SECRET));
    assert.equal(recreated.data['private.pem'], before.data['private.pem']);
    assert.equal(recreated.data['previous.pem'], before.data['previous.pem']);
  });

  it('should refuse to start with a clear error when the API server forbids access to the Secret', async () => {
    api.setFault(() => 403);
    try {
      await assert.rejects(startTestService({ db, env: { INGEST_JWT_KEY_SECRET: 'forbidden-key' } }), (error: Error) => {
        assert.match(error.message, /^Kubernetes API answered 403 to read or create the signing key Secret ct-ops\/forbidden-key \(secrets is forbidden.*\): the service account lacks permission/);
        return true;
      });
    } finally {
      api.setFault(undefined);
    }
  });

  it('should retry server errors at start-up and then start', async () => {
    let failures = 2;
    api.setFault((method, url) => (method === 'GET' && url.pathname.endsWith('/flaky-start') && failures-- > 0 ? 500 : undefined));
    const replica = await startTestService({ db, env: { INGEST_JWT_KEY_SECRET: 'flaky-start' } });
    try {
      assert.equal(failures, -1);
      const secret = api.secret(NAMESPACE, 'flaky-start')!;
      assert.deepEqual(await jwksKids(replica.http), [await kidOf(secret, 'private.pem')]);
    } finally {
      api.setFault(undefined);
      await replica.stop();
    }
  });

  it('should exit with a one-line error and no stack trace when `serve` cannot reach the Kubernetes API', async () => {
    const unreachable = path.join(path.dirname(api.kubeconfigFile), 'unreachable-kubeconfig');
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    await writeFile(unreachable, (await readFile(api.kubeconfigFile, 'utf8')).replace(/https:\/\/127\.0\.0\.1:\d+/, `https://127.0.0.1:${closedPort}`));
    const result = await runIngest(['serve'], {
      KUBECONFIG: unreachable,
      INGEST_JWT_KEY_SECRET: SECRET,
      DATABASE_URL: db.url,
      INGEST_TLS_CERT: api.pki.certFile,
      INGEST_TLS_KEY: api.pki.keyFile,
      INGEST_GRPC_PORT: '0',
      INGEST_HTTP_PORT: '0',
      INGEST_BIND_ADDRESS: '127.0.0.1',
      INGEST_LOG_LEVEL: 'warn',
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`^ingest: cannot reach the Kubernetes API at https://127\\.0\\.0\\.1:${closedPort} to read or create the signing key Secret ct-ops/ingest-jwt: ECONNREFUSED\n$`));
    assert.doesNotMatch(result.stdout + result.stderr, /\n\s+at /);
  });
});
