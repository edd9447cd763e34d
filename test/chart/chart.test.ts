// charts/ct-ops-ingest through the real Helm binary: lint, template for several value combinations, every object
// validated against its schema, and the fields that keep the deployment correct and hardened.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument, isMap, isPair, isScalar, type YAMLMap } from 'yaml';
import { environmentSchema } from '../../src/config/schema.ts';
import { all, chartDir, find, helmTemplate, NAMESPACE, RELEASE, render, runHelm, unknownFields, validateObject, withValues, type K8sObject } from './helm.ts';

const FULLNAME = `${RELEASE}-ct-ops-ingest`;
const KNOWN_VARIABLES = new Set(Object.keys(environmentSchema.shape));

/** The combinations CI renders: each must lint, render and validate. */
const COMBINATIONS: Record<string, object> = {
  'default values': {},
  'TLS from an existing Secret, file key from a Secret, autoscaling, NetworkPolicy, ServiceMonitor, headless, mTLS': {
    tls: { source: 'existingSecret', existingSecret: 'ingest-tls', clientCA: { existingSecret: 'agent-ca', clientAuth: 'require' } },
    jwtKey: { source: 'file', file: { existingSecret: 'ingest-jwt-file' } },
    autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 12, targetMemoryUtilizationPercentage: 80 },
    networkPolicy: { enabled: true },
    serviceMonitor: { enabled: true, labels: { release: 'prometheus' } },
    service: { type: 'LoadBalancer', externalTrafficPolicy: 'Local', headless: { enabled: true } },
    otel: { endpoint: 'http://otel-collector.monitoring:4318' },
  },
  'cert-manager ClusterIssuer, Secret key, NetworkPolicy with explicit peers, autoscaling off': {
    tls: { certManager: { selfSignedCA: { enabled: false }, issuerRef: { name: 'corporate-ca', kind: 'ClusterIssuer' }, extraDnsNames: ['ingest.example.com'] } },
    networkPolicy: {
      enabled: true,
      agents: [{ ipBlock: { cidr: '10.0.0.0/8' } }],
      postgres: { to: [{ podSelector: { matchLabels: { app: 'postgres' } } }], ports: [5432] },
      kubernetesApi: { cidrs: ['10.96.0.1/32'] },
    },
    env: { INGEST_BATCH_MAX_SIZE: '2000', OTEL_TRACES_SAMPLER: 'parentbased_traceidratio' },
    config: { shutdownGraceSeconds: 40, latestAgentVersion: '1.4.0' },
    lifecycle: { preStopSleepSeconds: 10 },
  },
  'file key on a PersistentVolumeClaim, every monitoring object on': {
    jwtKey: { source: 'file', file: { existingClaim: 'ingest-keys' } },
    serviceMonitor: { enabled: true },
    prometheusRule: { enabled: true },
    grafanaDashboard: { enabled: true },
    podDisruptionBudget: { enabled: true, maxUnavailable: '50%' },
  },
};

function deployment(objects: K8sObject[]): K8sObject {
  return find(objects, 'Deployment', FULLNAME);
}
function container(objects: K8sObject[]) {
  return deployment(objects).spec.template.spec.containers[0];
}
function envOf(objects: K8sObject[]): Map<string, { value?: string; valueFrom?: any }> {
  return new Map(container(objects).env.map((e: { name: string }) => [e.name, e]));
}

describe('Helm chart ct-ops-ingest', () => {
  for (const [name, values] of Object.entries(COMBINATIONS)) {
    it(`should pass helm lint with ${name}`, async () => {
      const result = await withValues(values, (file) => runHelm(['lint', chartDir, '--strict', '-f', file]));
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    });

    it(`should render only objects that validate against their schemas with ${name}`, async () => {
      const objects = await render(values);
      assert.ok(objects.length >= 6);
      for (const object of objects) {
        validateObject(object);
        assert.equal(object.metadata.namespace, NAMESPACE, `${object.kind} ${object.metadata.name} has no namespace`);
      }
      const names = objects.map((o) => `${o.kind}/${o.metadata.name}`);
      assert.equal(new Set(names).size, names.length, 'duplicate objects');
    });

    it(`should pass the container only variables the service knows with ${name}`, async () => {
      const env = envOf(await render(values));
      for (const variable of env.keys()) {
        assert.ok(KNOWN_VARIABLES.has(variable) || variable.startsWith('OTEL_'), `${variable} is not read by the service (src/config/schema.ts)`);
      }
      assert.deepEqual(env.get('DATABASE_URL')?.valueFrom?.secretKeyRef, { name: `${FULLNAME}-database`, key: 'DATABASE_URL' });
    });
  }

  it('should notice a misspelt or mistyped field in a rendered object (the validation itself can fail)', async () => {
    const objects = await render();
    const broken = structuredClone(deployment(objects));
    broken.spec.template.spec.containers[0].readinessProbe.httpGet.paht = '/readyz';
    assert.throws(() => validateObject(broken), /has fields Kubernetes does not know: Deployment\.spec\.template\.spec\.containers\[0\]\.readinessProbe\.httpGet\.paht/);
    const mistyped = structuredClone(find(objects, 'Certificate', FULLNAME));
    mistyped.spec.dnsNames = 'ingest';
    assert.throws(() => validateObject(mistyped), /Certificate ingest-ct-ops-ingest is invalid/);
    assert.deepEqual(unknownFields(find(objects, 'Service', FULLNAME)), []);
  });

  it('should reject unknown keys, misspelt keys and wrong types through values.schema.json', async () => {
    const cases: Array<[object, RegExp]> = [
      [{ replicaCunt: 3 }, /additional properties 'replicaCunt' not allowed/],
      [{ config: { logLevle: 'debug' } }, /additional properties 'logLevle' not allowed/],
      [{ replicaCount: 'two' }, /replicaCount.*want integer/],
      [{ replicaCount: 1 }, /replicaCount.*minimum/],
      [{ tls: { source: 'letsencrypt' } }, /\/tls\/source/],
      [{ env: { INGEST_BATCH_SIZE: '10' } }, /invalid propertyName 'INGEST_BATCH_SIZE'/],
      [{ env: { DATABASE_URL: 'postgres://x' } }, /invalid propertyName 'DATABASE_URL'/],
      [{ networkPolicy: { postgres: { port: 5432 } } }, /additional properties 'port' not allowed/],
      [{ securityContext: { readOnlyRootFileSystem: true } }, /additional properties 'readOnlyRootFileSystem' not allowed/],
      [{ networkPolicy: { agents: [{ ipBlok: { cidr: '10.0.0.0/8' } }] } }, /additional properties 'ipBlok' not allowed/],
      [{ tolerations: [{ key: 'a', operator: 'Equals' }] }, /\/tolerations\/0\/operator/],
    ];
    for (const [values, message] of cases) {
      const result = await helmTemplate(values);
      assert.notEqual(result.code, 0, `helm template accepted ${JSON.stringify(values)}`);
      assert.match(result.stderr, message);
    }
  });

  it('should refuse values that would break the deployment with a message naming the value', async () => {
    const cases: Array<[object, RegExp]> = [
      [{ jwtKey: { source: 'file' } }, /jwtKey.source=file needs jwtKey.file.existingSecret or jwtKey.file.existingClaim/],
      [{ lifecycle: { terminationGracePeriodSeconds: 30 } }, /lifecycle.terminationGracePeriodSeconds \(30\) must exceed lifecycle.preStopSleepSeconds \+ config.shutdownGraceSeconds \(30\)/],
      [{ tls: { certManager: { selfSignedCA: { enabled: false } } } }, /tls.certManager.issuerRef.name is required/],
      [{ tls: { source: 'existingSecret' } }, /tls.existingSecret is required when tls.source is existingSecret/],
      [{ autoscaling: { enabled: true, minReplicas: 5, maxReplicas: 3 } }, /autoscaling.minReplicas must not exceed autoscaling.maxReplicas/],
    ];
    for (const [values, message] of cases) {
      const result = await helmTemplate(values);
      assert.notEqual(result.code, 0, `helm template accepted ${JSON.stringify(values)}`);
      assert.match(result.stderr, message);
    }
  });

  it('should run at least two replicas with a rolling update that never lowers capacity, spread over zones and nodes', async () => {
    const objects = await render();
    const spec = deployment(objects).spec;
    assert.ok(spec.replicas >= 2);
    assert.equal(spec.strategy.type, 'RollingUpdate');
    assert.equal(spec.strategy.rollingUpdate.maxUnavailable, 0);
    const keys = spec.template.spec.topologySpreadConstraints.map((c: { topologyKey: string }) => c.topologyKey);
    assert.deepEqual(keys, ['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
    for (const constraint of spec.template.spec.topologySpreadConstraints) assert.deepEqual(constraint.labelSelector.matchLabels, spec.selector.matchLabels);
    const pdb = find(objects, 'PodDisruptionBudget');
    assert.deepEqual(pdb.spec.selector.matchLabels, spec.selector.matchLabels);
    assert.equal(pdb.spec.maxUnavailable, 1);
    assert.equal(all(objects, 'HorizontalPodAutoscaler').length, 0);
  });

  it('should leave the replica count to the HorizontalPodAutoscaler when autoscaling is on', async () => {
    const objects = await render({ autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 9 } });
    assert.equal(deployment(objects).spec.replicas, undefined);
    const hpa = find(objects, 'HorizontalPodAutoscaler');
    assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: FULLNAME });
    assert.equal(hpa.spec.minReplicas, 3);
    assert.equal(hpa.spec.maxReplicas, 9);
    assert.equal(hpa.spec.metrics[0].resource.name, 'cpu');
  });

  it('should probe /healthz (startup, liveness) and /readyz (readiness) on the HTTP port the service listens on', async () => {
    const objects = await render({ config: { httpPort: 8181, grpcPort: 9555 } });
    const c = container(objects);
    const ports = new Map(c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]));
    assert.equal(ports.get('http'), 8181);
    assert.equal(ports.get('grpc'), 9555);
    const env = envOf(objects);
    assert.equal(env.get('INGEST_HTTP_PORT')?.value, '8181');
    assert.equal(env.get('INGEST_GRPC_PORT')?.value, '9555');
    assert.deepEqual(c.startupProbe.httpGet, { path: '/healthz', port: 'http' });
    assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'http' });
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'http' });
    assert.ok(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold >= 60, 'start-up (migrations) gets at least a minute');
  });

  it('should give the pod more termination grace than the preStop sleep plus the service drain budget', async () => {
    for (const values of [{}, { config: { shutdownGraceSeconds: 60 }, lifecycle: { preStopSleepSeconds: 15 } }, { lifecycle: { terminationGracePeriodSeconds: 120 } }]) {
      const objects = await render(values);
      const pod = deployment(objects).spec.template.spec;
      const c = container(objects);
      const grace = Number(envOf(objects).get('INGEST_SHUTDOWN_GRACE_SECONDS')?.value);
      const sleep = Number(c.lifecycle.preStop.exec.command[1]);
      assert.equal(c.lifecycle.preStop.exec.command[0], 'sleep');
      assert.ok(sleep > 0);
      // The service's own hard stop fires 5 s after its grace; the kubelet must not kill it first.
      assert.ok(pod.terminationGracePeriodSeconds > sleep + grace + 5, `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} ≤ ${sleep} + ${grace} + 5`);
    }
  });

  it('should harden the pod and container security contexts and keep the root filesystem read-only', async () => {
    const objects = await render();
    const pod = deployment(objects).spec.template.spec;
    const c = container(objects);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
    assert.ok(pod.securityContext.runAsUser > 0);
    assert.equal(c.securityContext.runAsNonRoot, true);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.equal(c.securityContext.privileged, false);
    assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
    assert.equal(c.securityContext.capabilities.add, undefined);
    assert.ok(c.resources.requests.cpu !== undefined && c.resources.limits.memory !== undefined);
    // Writable paths are volumes: /tmp, and the TLS files are a read-only Secret volume.
    const mounts = new Map(c.volumeMounts.map((m: { name: string; mountPath: string }) => [m.mountPath, m]));
    assert.ok(mounts.has('/tmp'));
    assert.equal((mounts.get('/etc/ct-ops/tls') as { readOnly: boolean }).readOnly, true);
  });

  it('should let the service account get, watch, update and patch only the key Secret, plus create Secrets', async () => {
    const objects = await render();
    const env = envOf(objects);
    const secretName = env.get('INGEST_JWT_KEY_SECRET')?.value;
    assert.equal(secretName, `${FULLNAME}-jwt-key`);
    assert.deepEqual(env.get('INGEST_KUBERNETES_NAMESPACE')?.valueFrom, { fieldRef: { fieldPath: 'metadata.namespace' } });
    const role = find(objects, 'Role');
    const rules = role.rules as Array<{ apiGroups: string[]; resources: string[]; resourceNames?: string[]; verbs: string[] }>;
    assert.equal(rules.length, 2);
    const named = rules.find((r) => r.resourceNames !== undefined)!;
    assert.deepEqual(named.resourceNames, [secretName]);
    assert.deepEqual([...named.verbs].sort(), ['get', 'patch', 'update', 'watch']);
    const create = rules.find((r) => r.resourceNames === undefined)!;
    assert.deepEqual(create.verbs, ['create']);
    for (const rule of rules) {
      assert.deepEqual(rule.apiGroups, ['']);
      assert.deepEqual(rule.resources, ['secrets']);
      for (const verb of ['list', 'delete', 'deletecollection', '*']) assert.ok(!rule.verbs.includes(verb), `${verb} granted`);
    }
    const binding = find(objects, 'RoleBinding');
    const pod = deployment(objects).spec.template.spec;
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name });
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: pod.serviceAccountName, namespace: NAMESPACE }]);
    assert.equal(pod.automountServiceAccountToken, true);
    assert.ok(all(objects, 'ClusterRole').length === 0 && all(objects, 'ClusterRoleBinding').length === 0);
  });

  it('should grant no Kubernetes API access when the key comes from a file', async () => {
    const objects = await render({ jwtKey: { source: 'file', file: { existingSecret: 'ingest-jwt-file' } } });
    assert.equal(all(objects, 'Role').length, 0);
    assert.equal(all(objects, 'RoleBinding').length, 0);
    const pod = deployment(objects).spec.template.spec;
    assert.equal(pod.automountServiceAccountToken, false);
    const env = envOf(objects);
    assert.equal(env.get('INGEST_JWT_KEY_SECRET'), undefined);
    assert.equal(env.get('INGEST_JWT_KEY_FILE')?.value, '/var/lib/ct-ops/jwt_key.pem');
    const volume = pod.volumes.find((v: { name: string }) => v.name === 'jwt-key');
    assert.equal(volume.secret.secretName, 'ingest-jwt-file');
  });

  it('should issue a certificate whose dnsNames cover every Service name and mount it as the TLS files', async () => {
    const objects = await render({ service: { headless: { enabled: true } }, tls: { certManager: { extraDnsNames: ['ingest.example.com'] } } });
    const certificate = find(objects, 'Certificate', FULLNAME);
    const dnsNames = new Set(certificate.spec.dnsNames as string[]);
    const services = all(objects, 'Service');
    assert.equal(services.length, 3);
    for (const service of services) {
      const name = service.metadata.name;
      for (const dns of [name, `${name}.${NAMESPACE}`, `${name}.${NAMESPACE}.svc`, `${name}.${NAMESPACE}.svc.cluster.local`]) {
        assert.ok(dnsNames.has(dns), `Certificate lacks ${dns}`);
      }
    }
    assert.ok(dnsNames.has('ingest.example.com'));
    assert.ok(certificate.spec.usages.includes('server auth'));
    const pod = deployment(objects).spec.template.spec;
    const tlsVolume = pod.volumes.find((v: { name: string }) => v.name === 'tls');
    assert.equal(tlsVolume.secret.secretName, certificate.spec.secretName);
    const mount = container(objects).volumeMounts.find((m: { name: string }) => m.name === 'tls');
    assert.equal(mount.subPath, undefined, 'a subPath mount would hide renewals');
    const env = envOf(objects);
    assert.equal(env.get('INGEST_TLS_CERT')?.value, `${mount.mountPath}/tls.crt`);
    assert.equal(env.get('INGEST_TLS_KEY')?.value, `${mount.mountPath}/tls.key`);
    // Development chain: self-signed Issuer → CA Certificate → CA Issuer → serving certificate.
    const caIssuer = find(objects, 'Issuer', certificate.spec.issuerRef.name);
    const caCertificate = find(objects, 'Certificate', `${FULLNAME}-ca`);
    assert.equal(caIssuer.spec.ca.secretName, caCertificate.spec.secretName);
    assert.equal(caCertificate.spec.isCA, true);
    assert.deepEqual(find(objects, 'Issuer', caCertificate.spec.issuerRef.name).spec.selfSigned, {});
  });

  it('should use the configured issuer and create no CA chain when the self-signed CA is off', async () => {
    const objects = await render({ tls: { certManager: { selfSignedCA: { enabled: false }, issuerRef: { name: 'corporate-ca', kind: 'ClusterIssuer' } } } });
    assert.equal(all(objects, 'Issuer').length, 0);
    assert.deepEqual(find(objects, 'Certificate').spec.issuerRef, { name: 'corporate-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
  });

  it('should mount TLS from an existing Secret without any cert-manager object', async () => {
    const objects = await render({ tls: { source: 'existingSecret', existingSecret: 'my-tls' } });
    assert.equal(objects.filter((o) => o.apiVersion.startsWith('cert-manager.io/')).length, 0);
    const pod = deployment(objects).spec.template.spec;
    assert.equal(pod.volumes.find((v: { name: string }) => v.name === 'tls').secret.secretName, 'my-tls');
  });

  it('should expose gRPC with appProtocol grpc, HTTP separately, and an optional headless Service', async () => {
    const objects = await render({ service: { headless: { enabled: true } } });
    const grpc = find(objects, 'Service', FULLNAME);
    assert.deepEqual(grpc.spec.ports, [{ name: 'grpc', port: 9443, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'grpc' }]);
    const http = find(objects, 'Service', `${FULLNAME}-http`);
    assert.equal(http.spec.ports[0].targetPort, 'http');
    const headless = find(objects, 'Service', `${FULLNAME}-headless`);
    assert.equal(headless.spec.clusterIP, 'None');
    const podLabels = deployment(objects).spec.template.metadata.labels;
    for (const service of [grpc, http, headless]) {
      for (const [k, v] of Object.entries(service.spec.selector as Record<string, string>)) assert.equal(podLabels[k], v);
    }
    assert.equal(all(await render(), 'Service').length, 2);
  });

  it('should scrape /metrics through the HTTP Service with the ServiceMonitor', async () => {
    const objects = await render({ serviceMonitor: { enabled: true, labels: { release: 'prometheus' } } });
    const monitor = find(objects, 'ServiceMonitor');
    assert.equal(monitor.metadata.labels?.['release'], 'prometheus');
    assert.deepEqual(monitor.spec.endpoints.map((e: { port: string; path: string }) => [e.port, e.path]), [['http', '/metrics']]);
    const http = find(objects, 'Service', `${FULLNAME}-http`);
    for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels as Record<string, string>)) assert.equal(http.metadata.labels?.[k], v);
    assert.equal(all(await render(), 'ServiceMonitor').length, 0);
  });

  it('should allow agents to gRPC, monitoring to HTTP, and egress only to DNS, PostgreSQL and the Kubernetes API', async () => {
    const objects = await render({ networkPolicy: { enabled: true, kubernetesApi: { cidrs: ['10.96.0.1/32'] } } });
    const policy = find(objects, 'NetworkPolicy');
    assert.deepEqual(policy.spec.policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(policy.spec.podSelector.matchLabels, deployment(objects).spec.selector.matchLabels);
    const ingressPorts = policy.spec.ingress.map((r: { ports: Array<{ port: string }> }) => r.ports.map((p) => p.port));
    assert.deepEqual(ingressPorts, [['grpc'], ['http']]);
    assert.equal(policy.spec.ingress[0].from, undefined, 'agents come from anywhere by default');
    assert.deepEqual(policy.spec.ingress[1].from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
    const egress = policy.spec.egress.map((r: { ports: Array<{ port: number; protocol: string }> }) => r.ports.map((p) => `${p.port}/${p.protocol}`));
    assert.deepEqual(egress, [['53/UDP', '53/TCP'], ['5432/TCP'], ['443/TCP', '6443/TCP']]);
    assert.deepEqual(policy.spec.egress[2].to, [{ ipBlock: { cidr: '10.96.0.1/32' } }]);
    const fileKey = find(await render({ networkPolicy: { enabled: true }, jwtKey: { source: 'file', file: { existingClaim: 'keys' } } }), 'NetworkPolicy');
    assert.equal(fileKey.spec.egress.length, 2, 'no Kubernetes API egress without the Secret key source');
    assert.equal(all(await render(), 'NetworkPolicy').length, 0);
  });

  it('should list in values.schema.json exactly the service variables the chart does not set itself', async () => {
    const schema = JSON.parse(await readFile(path.join(chartDir, 'values.schema.json'), 'utf8'));
    const envSchema = schema.properties.env;
    const allowed: string[] = envSchema.propertyNames.allOf[0].anyOf[0].enum;
    const managed: string[] = envSchema['x-chart-managed'];
    const covered = new Set([...allowed, ...managed.filter((n) => !n.startsWith('OTEL_'))]);
    assert.deepEqual([...KNOWN_VARIABLES].filter((v) => !covered.has(v)), [], 'variables missing from values.schema.json env (add to the enum)');
    assert.deepEqual([...covered].filter((v) => !KNOWN_VARIABLES.has(v)), [], 'values.schema.json names variables the service does not read');
  });

  it('should document every value in values.yaml and declare each one in values.schema.json', async () => {
    const document = parseDocument(await readFile(path.join(chartDir, 'values.yaml'), 'utf8'));
    const schema = JSON.parse(await readFile(path.join(chartDir, 'values.schema.json'), 'utf8'));
    const undocumented: string[] = [];
    const undeclared: string[] = [];
    const walk = (map: YAMLMap, schemaNode: any, prefix: string): void => {
      for (const [index, pair] of map.items.entries()) {
        if (!isPair(pair) || !isScalar(pair.key)) continue;
        const key = String(pair.key.value);
        const name = prefix === '' ? key : `${prefix}.${key}`;
        const child = schemaNode?.properties?.[key];
        if (schemaNode?.additionalProperties === false && child === undefined) undeclared.push(name);
        // The yaml parser attaches the comment above a map's first key to the map itself.
        const comment = pair.key.commentBefore ?? (index === 0 ? map.commentBefore : undefined) ?? '';
        const commented = comment.trim() !== '';
        if (commented) continue; // a commented key documents its whole default value
        if (isMap(pair.value) && pair.value.items.length > 0) walk(pair.value, child, name);
        else undocumented.push(name);
      }
    };
    assert.ok(isMap(document.contents));
    walk(document.contents as YAMLMap, schema, '');
    assert.deepEqual(undocumented, []);
    assert.deepEqual(undeclared, []);
    // And the other way round: every declared value has a default in values.yaml.
    const values = document.toJS() as Record<string, unknown>;
    const missing: string[] = [];
    const check = (schemaNode: any, value: any, prefix: string): void => {
      // x-optional-fields: Kubernetes structures (securityContext, affinity) whose optional fields need no default.
      if (schemaNode?.additionalProperties !== false || schemaNode['x-optional-fields'] === true) return;
      for (const [key, child] of Object.entries(schemaNode.properties ?? {})) {
        if (prefix === '' && key === 'global') continue;
        const name = prefix === '' ? key : `${prefix}.${key}`;
        if (value === undefined || value === null || !(key in value)) missing.push(name);
        else check(child, value[key], name);
      }
    };
    check(schema, values, '');
    assert.deepEqual(missing, []);
  });

  it('should print how to reach the service and create a first enrolment token in NOTES.txt', async () => {
    const result = await withValues({}, (file) => runHelm(['install', RELEASE, chartDir, '--dry-run=client', '--namespace', NAMESPACE, '-f', file]));
    assert.equal(result.code, 0, result.stderr);
    const notes = result.stdout.slice(result.stdout.indexOf('NOTES:'));
    assert.match(notes, new RegExp(`kubectl -n ${NAMESPACE} exec deployment/${FULLNAME} -- ingest token create --org NAME --auto-approve`));
    assert.match(notes, new RegExp(`${FULLNAME}\\.${NAMESPACE}\\.svc\\.cluster\\.local:9443`));
    assert.match(notes, /port-forward service\/ingest-ct-ops-ingest-http 8080:8080/);
    assert.match(notes, /ingest key rotate/);
  });
});
