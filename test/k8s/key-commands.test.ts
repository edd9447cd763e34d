// `ingest key generate|rotate|jwks` as an operator runs them (a child process, no DATABASE_URL or TLS files),
// and the in-cluster configuration (service account token, CA and namespace) against the fake API server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseSigningKey } from '../../src/keys/key-material.ts';
import { kubernetesAccess, KubernetesAccessError } from '../../src/keys/kubernetes-access.ts';
import { KubernetesSecretKeySource } from '../../src/keys/kubernetes-secret-key-source.ts';
import type { KeySourceEvents } from '../../src/keys/key-source.ts';
import { startFakeKubernetesApi, type FakeKubernetesApi } from './fake-kubernetes-api.ts';
import { kidOf, runIngest } from './helpers.ts';

const NAMESPACE = 'ops';
const quietEvents: KeySourceEvents = { keyGenerated: () => undefined, reloadFailed: () => undefined };

describe('ingest key commands with the file key source', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ingest-key-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should print a new PKCS#8 RSA key with `key generate`', async () => {
    const result = await runIngest(['key', 'generate'], {});
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^-----BEGIN PRIVATE KEY-----\n/);
    const key = await parseSigningKey(result.stdout, 'stdout');
    assert.equal(key.privateKey.asymmetricKeyDetails?.modulusLength, 2048);
  });

  it('should write `key generate --out` with mode 0600 and never overwrite an existing file', async () => {
    const file = path.join(dir, 'generated', 'jwt_key.pem');
    const first = await runIngest(['key', 'generate', '--out', file], {});
    assert.equal(first.code, 0, first.stderr);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const original = await readFile(file, 'utf8');
    const second = await runIngest(['key', 'generate', '--out', file], {});
    assert.equal(second.code, 1);
    assert.match(second.stderr, /already exists; refusing to overwrite a signing key/);
    assert.equal(await readFile(file, 'utf8'), original);
  });

  it('should rotate the file key, keep the old one as <file>.previous and publish both with `key jwks`', async () => {
    const file = path.join(dir, 'rotate', 'jwt_key.pem');
    const generated = await runIngest(['key', 'generate', '--out', file], {});
    assert.equal(generated.code, 0, generated.stderr);
    const oldKid = (await parseSigningKey(await readFile(file), 'old')).kid;

    const rotated = await runIngest(['key', 'rotate'], { INGEST_JWT_KEY_FILE: file });
    assert.equal(rotated.code, 0, rotated.stderr);
    const newKid = (await parseSigningKey(await readFile(file), 'new')).kid;
    assert.notEqual(newKid, oldKid);
    assert.equal((await parseSigningKey(await readFile(`${file}.previous`), 'previous')).kid, oldKid);
    assert.equal(rotated.stdout, `rotated file ${file}: current kid ${newKid}, previous kid ${oldKid}\n`);

    const jwks = await runIngest(['key', 'jwks'], { INGEST_JWT_KEY_FILE: file });
    assert.equal(jwks.code, 0, jwks.stderr);
    const body = JSON.parse(jwks.stdout) as { keys: Array<Record<string, string>> };
    assert.deepEqual(body.keys.map((k) => k['kid']), [newKid, oldKid]);
    assert.ok(body.keys.every((k) => k['kty'] === 'RSA' && k['alg'] === 'RS256' && k['use'] === 'sig' && k['d'] === undefined));
  });

  it('should refuse `key jwks` for a missing key file instead of creating one', async () => {
    const file = path.join(dir, 'missing', 'jwt_key.pem');
    const result = await runIngest(['key', 'jwks'], { INGEST_JWT_KEY_FILE: file });
    assert.equal(result.code, 1);
    assert.equal(result.stderr, `ingest: no signing key at ${file} (INGEST_JWT_KEY_FILE)\n`);
    await assert.rejects(stat(file), { code: 'ENOENT' });
  });
});

describe('ingest key commands and in-cluster access with the Secret key source', () => {
  let api: FakeKubernetesApi;
  const savedEnv = { ...process.env };
  before(async () => {
    api = await startFakeKubernetesApi({ namespace: NAMESPACE });
  });
  after(async () => {
    process.env = savedEnv;
    await api.close();
  });

  const inPod = (): void => {
    delete process.env['KUBECONFIG'];
    process.env['KUBERNETES_SERVICE_HOST'] = '127.0.0.1';
    process.env['KUBERNETES_SERVICE_PORT'] = new URL(api.url).port;
  };

  it('should use the service account token, CA and namespace inside a pod and create the Secret', async () => {
    inPod();
    const access = kubernetesAccess({ serviceAccountPathPrefix: api.serviceAccountPrefix });
    assert.equal(access.namespace, NAMESPACE);
    assert.equal(access.server, api.url);
    const generated: string[] = [];
    const source = new KubernetesSecretKeySource({ secretName: 'pod-key', access, events: { ...quietEvents, keyGenerated: (l) => generated.push(l) } });
    const keys = await source.load();
    const secret = api.secret(NAMESPACE, 'pod-key');
    assert.ok(secret !== undefined);
    assert.equal(keys.current.kid, await kidOf(secret, 'private.pem'));
    assert.deepEqual(generated, ['Secret ops/pod-key']);
    assert.equal(source.description, 'Kubernetes Secret ops/pod-key');
  });

  it('should let INGEST_KUBERNETES_NAMESPACE override the service account namespace', async () => {
    inPod();
    const access = kubernetesAccess({ namespace: 'elsewhere', serviceAccountPathPrefix: api.serviceAccountPrefix });
    await new KubernetesSecretKeySource({ secretName: 'moved-key', access, events: quietEvents }).load();
    assert.ok(api.secret('elsewhere', 'moved-key') !== undefined);
    assert.equal(api.secret(NAMESPACE, 'moved-key'), undefined);
  });

  it('should explain a missing service account token instead of failing later', async () => {
    inPod();
    assert.throws(() => kubernetesAccess({ serviceAccountPathPrefix: path.join(tmpdir(), 'no-such-pod') }), (error: Error) => {
      assert.ok(error instanceof KubernetesAccessError);
      assert.match(error.message, /^no service account token at .*\/var\/run\/secrets\/kubernetes\.io\/serviceaccount\/token/);
      return true;
    });
  });

  it('should report a rejected token as a clear 401 error without retrying', async () => {
    inPod();
    const prefix = await mkdtemp(path.join(tmpdir(), 'bad-token-'));
    const saDir = path.join(prefix, 'var/run/secrets/kubernetes.io/serviceaccount');
    await (await import('node:fs/promises')).mkdir(saDir, { recursive: true });
    await Promise.all([writeFile(path.join(saDir, 'token'), 'not-the-token'), writeFile(path.join(saDir, 'ca.crt'), api.pki.ca.certPem), writeFile(path.join(saDir, 'namespace'), NAMESPACE)]);
    try {
      const before = api.requests.length;
      const source = new KubernetesSecretKeySource({ secretName: 'any', access: kubernetesAccess({ serviceAccountPathPrefix: prefix }), events: quietEvents });
      await assert.rejects(source.load(), /^KubernetesAccessError: Kubernetes API answered 401 to read or create the signing key Secret ops\/any.*rejected the service account token$/);
      assert.equal(api.requests.length - before, 1);
    } finally {
      await rm(prefix, { recursive: true, force: true });
    }
  });

  it('should apply every one of five concurrent rotations exactly once (409 Conflict retried)', async () => {
    inPod();
    const access = kubernetesAccess({ serviceAccountPathPrefix: api.serviceAccountPrefix });
    const sources = Array.from({ length: 5 }, () => new KubernetesSecretKeySource({ secretName: 'busy-key', access, events: quietEvents }));
    const initial = await sources[0]!.load();
    const putsBefore = api.requests.filter((r) => r.method === 'PUT').length;
    api.holdGetsUntil(5);
    const results = await Promise.all(sources.map((s) => s.rotate()));
    const puts = api.requests.filter((r) => r.method === 'PUT').slice(putsBefore);
    assert.equal(puts.filter((r) => r.status === 200).length, 5);
    assert.ok(puts.filter((r) => r.status === 409).length >= 4);
    const currents = new Set(results.map((k) => k.current.kid));
    assert.equal(currents.size, 5);
    // The rotations form one chain: each one's previous key is the current key of the one before it.
    const previousKids = new Set(results.map((k) => k.previous?.kid));
    assert.ok(previousKids.has(initial.current.kid));
    const secret = api.secret(NAMESPACE, 'busy-key')!;
    assert.ok(currents.has(await kidOf(secret, 'private.pem')));
    assert.equal([...currents].filter((kid) => !previousKids.has(kid)).length, 1);
  });

  it('should rotate the Secret with `key rotate` and print its JWKS with `key jwks` from outside the cluster (KUBECONFIG)', async () => {
    const env = { KUBECONFIG: api.kubeconfigFile, INGEST_JWT_KEY_SECRET: 'cli-key' };
    const missing = await runIngest(['key', 'jwks'], env);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'ingest: Secret ops/cli-key does not exist\n');
    assert.equal(api.secret(NAMESPACE, 'cli-key'), undefined);

    const first = await runIngest(['key', 'rotate'], env);
    assert.equal(first.code, 0, first.stderr);
    const created = api.secret(NAMESPACE, 'cli-key')!;
    const firstKid = await kidOf(created, 'private.pem');
    const second = await runIngest(['key', 'rotate'], env);
    assert.equal(second.code, 0, second.stderr);
    const rotated = api.secret(NAMESPACE, 'cli-key')!;
    assert.equal(await kidOf(rotated, 'previous.pem'), firstKid);

    const jwks = await runIngest(['key', 'jwks'], env);
    assert.equal(jwks.code, 0, jwks.stderr);
    const body = JSON.parse(jwks.stdout) as { keys: Array<{ kid: string }> };
    assert.deepEqual(body.keys.map((k) => k.kid), [await kidOf(rotated, 'private.pem'), firstKid]);
  });

  it('should refuse to rotate when the current key in the Secret does not parse, leaving the Secret unchanged', async () => {
    const weak = Buffer.from('-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n').toString('base64');
    const created = await api.request('POST', `/api/v1/namespaces/${NAMESPACE}/secrets`, { metadata: { name: 'broken-key' }, data: { 'private.pem': weak } });
    assert.equal(created.status, 201);
    const result = await runIngest(['key', 'rotate'], { KUBECONFIG: api.kubeconfigFile, INGEST_JWT_KEY_SECRET: 'broken-key' });
    assert.equal(result.code, 1);
    assert.equal(result.stderr, 'ingest: private.pem of Secret ops/broken-key does not hold a PEM private key (PKCS#1 or PKCS#8 RSA expected)\n');
    assert.equal(api.secret(NAMESPACE, 'broken-key')!.data['private.pem'], weak);
  });

  it('should fill in private.pem of a Secret an operator created empty', async () => {
    const created = await api.request('POST', `/api/v1/namespaces/${NAMESPACE}/secrets`, { metadata: { name: 'empty-key', labels: { team: 'platform' } } });
    assert.equal(created.status, 201);
    inPod();
    const source = new KubernetesSecretKeySource({ secretName: 'empty-key', access: kubernetesAccess({ serviceAccountPathPrefix: api.serviceAccountPrefix }), events: quietEvents });
    const keys = await source.load();
    const secret = api.secret(NAMESPACE, 'empty-key')!;
    assert.equal(keys.current.kid, await kidOf(secret, 'private.pem'));
    assert.equal(secret.metadata.labels?.['team'], 'platform');
  });
});
