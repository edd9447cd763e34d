// Runs the real Helm binary against charts/ct-ops-ingest and validates what it renders against the Kubernetes,
// cert-manager and Prometheus Operator schemas (kubernetes-models packages).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import * as kubernetesClient from '@kubernetes/client-node';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { Certificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate';
import { Issuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Issuer';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const chartDir = path.join(repoRoot, 'charts/ct-ops-ingest');

/** HELM, else the copy `make helm` builds, else `helm` on PATH. */
export function helmBinary(): string {
  const candidates = [process.env['HELM'], path.join(homedir(), '.cache/ct-ops-tools/bin/helm')];
  for (const candidate of candidates) if (candidate !== undefined && candidate !== '' && existsSync(candidate)) return candidate;
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir !== '' && existsSync(path.join(dir, 'helm'))) return path.join(dir, 'helm');
  }
  throw new Error('helm not found: run `make helm` (builds it into ~/.cache/ct-ops-tools/bin) or set HELM=/path/to/helm');
}

export interface HelmResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function runHelm(args: string[]): Promise<HelmResult> {
  return new Promise((resolve) => {
    execFile(helmBinary(), args, { cwd: repoRoot, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

/** Writes values to a temporary file and runs `helm <command> ... -f file`. */
export async function withValues<T>(values: object, work: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'chart-values-'));
  const file = path.join(dir, 'values.json');
  await writeFile(file, JSON.stringify(values));
  try {
    return await work(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [key: string]: any };

export const RELEASE = 'ingest';
export const NAMESPACE = 'ct-ops';

export async function helmTemplate(values: object, options: { release?: string; namespace?: string } = {}): Promise<HelmResult> {
  return withValues(values, (file) => runHelm(['template', options.release ?? RELEASE, chartDir, '--namespace', options.namespace ?? NAMESPACE, '-f', file]));
}

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]?.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

export async function render(values: object = {}, options: { release?: string; namespace?: string } = {}): Promise<K8sObject[]> {
  const result = await helmTemplate(values, options);
  if (result.code !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return parseManifests(result.stdout);
}

type Model = new (data: never) => { validate(): void };
const models: Record<string, Model> = {
  'v1/ConfigMap': ConfigMap as unknown as Model,
  'v1/Secret': Secret as unknown as Model,
  'v1/Service': Service as unknown as Model,
  'v1/ServiceAccount': ServiceAccount as unknown as Model,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim as unknown as Model,
  'v1/Namespace': Namespace as unknown as Model,
  'apps/v1/Deployment': Deployment as unknown as Model,
  'rbac.authorization.k8s.io/v1/Role': Role as unknown as Model,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding as unknown as Model,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget as unknown as Model,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler as unknown as Model,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy as unknown as Model,
  'cert-manager.io/v1/Certificate': Certificate as unknown as Model,
  'cert-manager.io/v1/Issuer': Issuer as unknown as Model,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor as unknown as Model,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule as unknown as Model,
};

type AttributeMap = ReadonlyArray<{ baseName: string; type: string }>;

/**
 * Fields the Kubernetes API does not know (a misspelt field in a template is otherwise silently dropped by the
 * API server). Uses the field tables of @kubernetes/client-node's generated models for built-in kinds.
 */
export function unknownFields(object: K8sObject): string[] {
  const version = /(v\d+(?:(?:alpha|beta)\d+)?)$/.exec(object.apiVersion)?.[1];
  if (version === undefined) return [];
  const rootType = `${version.charAt(0).toUpperCase()}${version.slice(1)}${object.kind}`;
  const classes = kubernetesClient as unknown as Record<string, { attributeTypeMap?: AttributeMap } | undefined>;
  if (classes[rootType]?.attributeTypeMap === undefined) return [];
  const problems: string[] = [];
  const walk = (value: unknown, type: string, at: string): void => {
    if (value === null || value === undefined) return;
    const array = /^Array<(.+)>$/.exec(type);
    if (array !== null) {
      if (Array.isArray(value)) value.forEach((item, i) => walk(item, array[1]!, `${at}[${i}]`));
      return;
    }
    const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
    if (map !== null) {
      for (const [key, item] of Object.entries(value as object)) walk(item, map[1]!, `${at}.${key}`);
      return;
    }
    const fields = classes[type]?.attributeTypeMap;
    if (fields === undefined || typeof value !== 'object') return;
    const known = new Map(fields.map((f) => [f.baseName, f.type]));
    for (const [key, item] of Object.entries(value as object)) {
      const fieldType = known.get(key);
      if (fieldType === undefined) problems.push(`${at}.${key}`);
      else walk(item, fieldType, `${at}.${key}`);
    }
  };
  walk(object, rootType, object.kind);
  return problems;
}

/** Validates one object against the schema of its apiVersion/kind; throws naming the object and the problem. */
export function validateObject(object: K8sObject): void {
  const model = models[`${object.apiVersion}/${object.kind}`];
  if (model === undefined) throw new Error(`no schema known for ${object.apiVersion} ${object.kind} ${object.metadata?.name}`);
  try {
    new model(object as never).validate();
  } catch (error) {
    throw new Error(`${object.kind} ${object.metadata?.name} is invalid: ${(error as Error).message}`);
  }
  const unknown = unknownFields(object);
  if (unknown.length > 0) throw new Error(`${object.kind} ${object.metadata?.name} has fields Kubernetes does not know: ${unknown.join(', ')}`);
}

export function find(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name === undefined ? '' : ` ${name}`}, found ${found.length}`);
  return found[0]!;
}

export function all(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}
