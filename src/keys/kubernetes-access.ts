import { existsSync } from 'node:fs';
import { KubeConfig, ApiException } from '@kubernetes/client-node';

/** The Kubernetes API endpoint, credentials and namespace the Secret key source uses. */
export interface KubernetesAccess {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  /** API server URL, for error messages. */
  readonly server: string;
}

export interface KubernetesAccessOptions {
  /** INGEST_KUBERNETES_NAMESPACE: overrides the service account's (or kubeconfig context's) namespace. */
  readonly namespace?: string | undefined;
  /**
   * Prefix of the service account mount (`<prefix>/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}`);
   * empty in a pod. Tests point it at a temporary directory.
   */
  readonly serviceAccountPathPrefix?: string;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export class KubernetesAccessError extends Error {
  readonly code = 'ERR_KUBERNETES_ACCESS';
  constructor(message: string) {
    super(message);
    this.name = 'KubernetesAccessError';
  }
}

/**
 * In a pod (KUBERNETES_SERVICE_HOST set, no KUBECONFIG): the service account token, CA and namespace.
 * Elsewhere (an operator running `ingest key rotate` from a laptop): KUBECONFIG or ~/.kube/config and its
 * current context's namespace.
 */
export function kubernetesAccess(options: KubernetesAccessOptions = {}): KubernetesAccess {
  const kubeConfig = new KubeConfig();
  const prefix = options.serviceAccountPathPrefix ?? '';
  const inCluster = (process.env['KUBECONFIG'] ?? '') === '' && (process.env['KUBERNETES_SERVICE_HOST'] ?? '') !== '';
  try {
    if (inCluster) {
      if (!existsSync(`${prefix}${SERVICE_ACCOUNT_DIR}/token`)) {
        throw new KubernetesAccessError(
          `no service account token at ${prefix}${SERVICE_ACCOUNT_DIR}/token: set automountServiceAccountToken (the chart does) or use the file key source`,
        );
      }
      kubeConfig.loadFromCluster(prefix);
    } else {
      kubeConfig.loadFromDefault();
    }
  } catch (error) {
    if (error instanceof KubernetesAccessError) throw error;
    throw new KubernetesAccessError(`cannot load the Kubernetes client configuration: ${(error as Error).message}`);
  }
  const cluster = kubeConfig.getCurrentCluster();
  // loadFromDefault falls back to an unauthenticated localhost:8080 when it finds nothing; that is never meant.
  if (cluster === null || (!inCluster && kubeConfig.currentContext === 'loaded-context' && cluster.server === 'http://localhost:8080')) {
    throw new KubernetesAccessError(
      'INGEST_JWT_KEY_SECRET is set but no Kubernetes API is configured: run in a pod with a service account, or set KUBECONFIG',
    );
  }
  const contextNamespace = kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace?.trim();
  const namespace = options.namespace ?? (contextNamespace !== undefined && contextNamespace !== '' ? contextNamespace : inCluster ? undefined : 'default');
  if (namespace === undefined) {
    throw new KubernetesAccessError(`cannot tell the namespace: ${prefix}${SERVICE_ACCOUNT_DIR}/namespace is missing; set INGEST_KUBERNETES_NAMESPACE`);
  }
  return { kubeConfig, namespace, server: cluster.server };
}

/** True for failures worth retrying: the API server unreachable, overloaded or failing (5xx, 429). */
export function isTransientApiError(error: unknown): boolean {
  if (error instanceof ApiException) return error.code >= 500 || error.code === 429;
  if (error instanceof KubernetesAccessError) return false;
  // undici reports network failures as `TypeError: fetch failed` with the socket error as `cause`.
  const name = (error as { name?: unknown } | null)?.name;
  return name === 'AbortError' || name === 'TimeoutError' || (error instanceof Error && error.cause !== undefined);
}

export function apiStatusCode(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  const statusCode = (error as { statusCode?: unknown }).statusCode;
  return typeof statusCode === 'number' ? statusCode : undefined;
}

/**
 * One line for an operator: what was attempted, what the API said, and what to check.
 * Never includes request headers (the bearer token) or Secret data.
 */
export function describeApiError(error: unknown, action: string, server: string): string {
  const code = apiStatusCode(error);
  if (code !== undefined) {
    const body = (error as { body?: unknown }).body;
    const detail = apiMessage(body);
    const hint =
      code === 401
        ? ': the API server rejected the service account token'
        : code === 403
          ? ': the service account lacks permission (the chart grants get, watch, update and patch on the key Secret and create on secrets)'
          : '';
    return `Kubernetes API answered ${code} to ${action}${detail === '' ? '' : ` (${detail})`}${hint}`;
  }
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'AbortError' || name === 'TimeoutError') return `no answer from the Kubernetes API at ${server} to ${action} in time`;
  if (cause === undefined) return `failed to ${action}: ${(error as Error).message}`;
  const reason = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : (error as Error).message;
  return `cannot reach the Kubernetes API at ${server} to ${action}: ${reason}`;
}

function apiMessage(body: unknown): string {
  let parsed = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return body.slice(0, 200);
    }
  }
  const message = (parsed as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message.slice(0, 300) : '';
}
