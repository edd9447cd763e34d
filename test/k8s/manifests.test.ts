// k8s/ and skaffold.yaml: the rendered manifests match the chart, and the files for kind and skaffold (which
// cannot run on these machines) are checked statically against schemas and against each other.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { helmBinary, parseManifests, repoRoot, validateObject, type K8sObject } from '../chart/helm.ts';

const file = (name: string): string => path.join(repoRoot, name);

function renderK8s(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file('scripts/render-k8s.sh'), ['--stdout'], { env: { ...process.env, HELM: helmBinary() }, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) =>
      error === null ? resolve(stdout) : reject(new Error(`render-k8s.sh failed: ${stderr}`)),
    );
  });
}

async function manifests(name: string): Promise<K8sObject[]> {
  return parseManifests(await readFile(file(name), 'utf8'));
}

describe('k8s/ manifests, kind and skaffold', () => {
  it('should keep k8s/ct-ops-ingest.yaml identical to the chart rendered with k8s/values-dev.yaml', async () => {
    const committed = await readFile(file('k8s/ct-ops-ingest.yaml'), 'utf8');
    assert.ok(committed === (await renderK8s()), 'k8s/ct-ops-ingest.yaml drifted from the chart: run `make k8s-manifests` and commit the result');
  });

  it('should validate every rendered and every dev PostgreSQL object against the Kubernetes schemas', async () => {
    const objects = [...(await manifests('k8s/ct-ops-ingest.yaml')), ...(await manifests('k8s/dev-postgres.yaml'))];
    assert.ok(objects.length >= 14);
    for (const object of objects) validateObject(object);
  });

  it('should give the chart the database Secret and key that k8s/dev-postgres.yaml creates, pointing at its Service', async () => {
    const postgres = await manifests('k8s/dev-postgres.yaml');
    const ingest = await manifests('k8s/ct-ops-ingest.yaml');
    const deployment = ingest.find((o) => o.kind === 'Deployment')!;
    const ref = deployment.spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === 'DATABASE_URL').valueFrom.secretKeyRef;
    const secret = postgres.find((o) => o.kind === 'Secret' && o.metadata.name === ref.name);
    assert.ok(secret !== undefined, `k8s/dev-postgres.yaml has no Secret ${ref.name}`);
    const url = new URL(secret.stringData[ref.key]);
    const service = postgres.find((o) => o.kind === 'Service')!;
    assert.equal(url.hostname, `${service.metadata.name}.${service.metadata.namespace}.svc`);
    assert.equal(Number(url.port), service.spec.ports[0].port);
    assert.equal(decodeURIComponent(url.password), secret.stringData.POSTGRES_PASSWORD);
    assert.equal(url.pathname, `/${secret.stringData.POSTGRES_DB}`);
    for (const object of [...postgres.filter((o) => o.kind !== 'Namespace'), ...ingest]) assert.equal(object.metadata.namespace, 'ct-ops');
    const pg = postgres.find((o) => o.kind === 'Deployment')!;
    assert.deepEqual(service.spec.selector, pg.spec.selector.matchLabels);
    assert.equal(pg.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem, true);
  });

  it('should map the kind node port to the gRPC Service node port', async () => {
    const kind = parse(await readFile(file('k8s/kind-cluster.yaml'), 'utf8'));
    assert.equal(kind.kind, 'Cluster');
    assert.equal(kind.apiVersion, 'kind.x-k8s.io/v1alpha4');
    assert.ok(Array.isArray(kind.nodes));
    const roles = kind.nodes.map((n: { role: string }) => n.role);
    assert.equal(roles.filter((r: string) => r === 'control-plane').length, 1);
    assert.ok(roles.filter((r: string) => r === 'worker').length >= 2, 'two workers, so replicas spread over nodes');
    for (const node of kind.nodes) for (const key of Object.keys(node)) assert.ok(['role', 'extraPortMappings', 'labels', 'image', 'kubeadmConfigPatches', 'extraMounts'].includes(key), `unknown kind node key ${key}`);
    const mapping = kind.nodes[0].extraPortMappings[0];
    const ingest = await manifests('k8s/ct-ops-ingest.yaml');
    const grpc = ingest.find((o) => o.kind === 'Service' && o.spec.ports[0].name === 'grpc' && o.spec.type === 'NodePort')!;
    assert.equal(mapping.containerPort, grpc.spec.ports[0].nodePort);
    assert.equal(mapping.hostPort, 9443);
    const certificate = ingest.find((o) => o.kind === 'Certificate' && !o.spec.isCA)!;
    assert.ok(certificate.spec.dnsNames.includes('localhost'), 'agents on the host connect to localhost:9443');
  });

  it('should build the image skaffold deploys with the chart, from files that exist', async () => {
    const skaffold = parse(await readFile(file('skaffold.yaml'), 'utf8'));
    assert.match(skaffold.apiVersion, /^skaffold\/v4beta\d+$/);
    assert.equal(skaffold.kind, 'Config');
    const artifact = skaffold.build.artifacts[0];
    assert.ok(existsSync(path.join(repoRoot, artifact.context ?? '.', artifact.docker.dockerfile)));
    assert.equal(skaffold.build.local.push, false);
    for (const raw of skaffold.manifests.rawYaml) assert.ok(existsSync(file(raw)), `${raw} missing`);
    const release = skaffold.deploy.helm.releases[0];
    assert.ok(existsSync(file(path.join(release.chartPath, 'Chart.yaml'))));
    for (const values of release.valuesFiles) assert.ok(existsSync(file(values)), `${values} missing`);
    const key = artifact.image.replace(/[^a-zA-Z0-9]/g, '_');
    assert.equal(release.setValueTemplates['image.repository'], `{{.IMAGE_REPO_${key}}}`);
    assert.equal(release.setValueTemplates['image.tag'], `{{.IMAGE_TAG_${key}}}`);
    assert.equal(release.namespace, 'ct-ops');
    const forward = skaffold.portForward[0];
    const ingest = await manifests('k8s/ct-ops-ingest.yaml');
    assert.ok(ingest.some((o) => o.kind === 'Service' && o.metadata.name === forward.resourceName), `no Service ${forward.resourceName}`);
  });

  it('should build a non-root, production-only image without a HEALTHCHECK', async () => {
    const dockerfile = await readFile(file('Dockerfile'), 'utf8');
    const stages = dockerfile.split('\n').filter((l) => l.startsWith('FROM '));
    assert.ok(stages.length >= 2, 'multi-stage');
    for (const stage of stages) assert.match(stage, /^FROM node:24-[a-z]+-slim\b/);
    assert.match(dockerfile, /npm ci --omit=dev --omit=optional/);
    assert.match(dockerfile, /^USER \d+:\d+$/m);
    assert.match(dockerfile, /^STOPSIGNAL SIGTERM$/m);
    assert.doesNotMatch(dockerfile, /^HEALTHCHECK/m);
    const ignore = await readFile(file('.dockerignore'), 'utf8');
    const ignored = ignore.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    for (const entry of ['node_modules', '.git', 'dist']) assert.ok(ignored.includes(entry), `.dockerignore lacks ${entry}`);
    // Everything the build copies from the context exists and is not ignored.
    for (const line of dockerfile.split('\n').filter((l) => l.startsWith('COPY ') && !l.includes('--from='))) {
      for (const source of line.split(/\s+/).slice(1, -1)) {
        assert.ok(existsSync(file(source)), `Dockerfile copies missing ${source}`);
        assert.ok(!ignored.includes(source), `.dockerignore excludes ${source}, which the Dockerfile copies`);
      }
    }
    // The entry point runs the compiled src/main.ts (tsconfig.build.json: src → dist).
    const build = JSON.parse(await readFile(file('tsconfig.build.json'), 'utf8'));
    assert.equal(build.compilerOptions.outDir, 'dist');
    assert.equal(build.compilerOptions.rootDir, 'src');
    assert.ok(existsSync(file('src/main.ts')));
    assert.match(dockerfile, /exec node \/app\/dist\/main\.js/);
    assert.match(dockerfile, /COPY proto \.\/proto/, 'the gRPC server loads proto/ at run time');
  });
});
