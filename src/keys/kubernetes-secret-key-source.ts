import { CoreV1Api, Observable, Watch, type ConfigurationOptions, type RequestContext, type ResponseContext, type V1Secret } from '@kubernetes/client-node';
import { generateSigningKeyPem, parseSigningKey, InvalidKeyError } from './key-material.ts';
import type { KeySet } from './key-ring.ts';
import type { KeySource, KeySourceEvents } from './key-source.ts';
import { apiStatusCode, describeApiError, isTransientApiError, KubernetesAccessError, type KubernetesAccess } from './kubernetes-access.ts';

export const CURRENT_KEY = 'private.pem';
export const PREVIOUS_KEY = 'previous.pem';

export interface KubernetesSecretKeySourceOptions {
  readonly secretName: string;
  readonly access: KubernetesAccess;
  readonly events: KeySourceEvents;
  /** Create the Secret with a fresh key when it is absent (default true; `key jwks` reads only). */
  readonly createIfMissing?: boolean;
  /** Start-up attempts while the API is unreachable or answers 5xx/429 (default 5, under 8 s in all). */
  readonly startupAttempts?: number;
  /** First retry delay; doubles per failure up to `retryMaxMs` (defaults 500 ms and 30 s). */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /**
   * Each watch request asks the API server to end it after this long, then it is re-established from the last
   * resourceVersion (default 25 s: under the client library's 30 s inactivity timeout on a quiet watch).
   */
  readonly watchTimeoutSeconds?: number;
  /** Timeout of each non-watch API request (default 10 s). */
  readonly requestTimeoutMs?: number;
}

/** Base64 data of the Secret keys in force, kept to re-create the Secret if someone deletes it. */
interface KeyData {
  readonly current: string;
  readonly previous: string | undefined;
}

/**
 * Signing keys in a Kubernetes Secret (SPEC §8.1): `private.pem` signs, `previous.pem` still verifies.
 * An absent Secret is created with a fresh key; when replicas race, the API server's 409 Conflict picks one
 * winner and the others read its key. The Secret is watched so rotations reach every replica without restart.
 */
export class KubernetesSecretKeySource implements KeySource {
  readonly #name: string;
  readonly #access: KubernetesAccess;
  readonly #events: KeySourceEvents;
  readonly #api: CoreV1Api;
  readonly #startupAttempts: number;
  readonly #createIfMissing: boolean;
  readonly #retryBaseMs: number;
  readonly #retryMaxMs: number;
  readonly #watchTimeoutSeconds: number;
  readonly #requestOptions: ConfigurationOptions;
  #inForce: KeyData | undefined;
  #fingerprint = '';
  #resourceVersion: string | undefined;

  constructor(options: KubernetesSecretKeySourceOptions) {
    if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(options.secretName)) {
      throw new KubernetesAccessError(`INGEST_JWT_KEY_SECRET "${options.secretName}" is not a valid Secret name (lowercase DNS subdomain)`);
    }
    this.#name = options.secretName;
    this.#access = options.access;
    this.#events = options.events;
    this.#api = options.access.kubeConfig.makeApiClient(CoreV1Api);
    this.#startupAttempts = Math.max(1, options.startupAttempts ?? 5);
    this.#createIfMissing = options.createIfMissing ?? true;
    this.#retryBaseMs = options.retryBaseMs ?? 500;
    this.#retryMaxMs = options.retryMaxMs ?? 30_000;
    this.#watchTimeoutSeconds = options.watchTimeoutSeconds ?? 25;
    const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    // A hung API server must not hang start-up or a rotation: every request gets its own deadline.
    const deadline = {
      pre: (context: RequestContext) => {
        context.setSignal(AbortSignal.timeout(requestTimeoutMs));
        return new Observable(Promise.resolve(context));
      },
      post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
    };
    this.#requestOptions = { middleware: [deadline], middlewareMergeStrategy: 'append' };
  }

  get description(): string {
    return `Kubernetes Secret ${this.#location}`;
  }

  get #location(): string {
    return `${this.#access.namespace}/${this.#name}`;
  }

  /** Reads the Secret, creating it when absent. Transient API failures are retried, then reported clearly. */
  async load(): Promise<KeySet> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.#readOrCreate();
      } catch (error) {
        if (!isTransientApiError(error) || attempt >= this.#startupAttempts) throw this.#clear(error, 'read or create the signing key Secret');
        await delay(this.#backoffMs(attempt));
      }
    }
  }

  /** Moves `private.pem` to `previous.pem` and writes a new `private.pem`, retrying on concurrent updates (409). */
  async rotate(): Promise<KeySet> {
    const pem = await generateSigningKeyPem();
    for (let attempt = 1; attempt <= 10; attempt += 1) {
      let secret: V1Secret | undefined;
      try {
        secret = await this.#read();
        if (secret === undefined) return await this.load();
        const current = secret.data?.[CURRENT_KEY];
        if (current === undefined) return await this.load();
        // Never demote a key that does not parse: it would break verification of the previous key.
        await parseSigningKey(Buffer.from(current, 'base64'), `${CURRENT_KEY} of Secret ${this.#location}`);
        const updated = await this.#api.replaceNamespacedSecret(
          {
            name: this.#name,
            namespace: this.#access.namespace,
            body: { ...secret, data: { ...secret.data, [CURRENT_KEY]: toBase64(pem), [PREVIOUS_KEY]: current } },
          },
          this.#requestOptions,
        );
        return await this.#apply(updated);
      } catch (error) {
        if (apiStatusCode(error) === 409) continue;
        if (error instanceof InvalidKeyError) throw error;
        if (isTransientApiError(error) && attempt < 10) {
          await delay(this.#backoffMs(attempt));
          continue;
        }
        throw this.#clear(error, 'rotate the signing key Secret');
      }
    }
    throw new KubernetesAccessError(`gave up rotating Secret ${this.#location}: it kept changing under concurrent updates`);
  }

  /**
   * Watches the Secret and calls `onChange` with each new key set. The watch is re-established after it ends;
   * after errors with backoff, while the keys in force stay in force. A deleted Secret is re-created from them.
   */
  watch(_intervalMs: number, onChange: (keys: KeySet) => void): () => void {
    let stopped = false;
    let controller: AbortController | undefined;
    let timer: NodeJS.Timeout | undefined;
    let failures = 0;
    let fingerprint = this.#fingerprint;
    let applying: Promise<void> = Promise.resolve();

    const report = (keys: KeySet): void => {
      const next = fingerprintOf(keys);
      if (stopped || next === fingerprint) return;
      fingerprint = next;
      onChange(keys);
    };
    const schedule = (ms: number): void => {
      if (stopped) return;
      timer = setTimeout(() => void cycle(), ms);
      timer.unref();
    };
    const fail = (error: unknown, action: string): void => {
      if (stopped) return;
      failures += 1;
      this.#resourceVersion = undefined;
      const waitMs = this.#backoffMs(failures);
      this.#events.reloadFailed(new Error(`${describeApiError(error, action, this.#access.server)}; retrying in ${waitMs} ms`));
      schedule(waitMs);
    };
    const cycle = async (): Promise<void> => {
      if (stopped) return;
      if (this.#resourceVersion === undefined) {
        try {
          report(await this.#resync());
        } catch (error) {
          if (error instanceof InvalidKeyError) {
            this.#events.reloadFailed(error);
            this.#resourceVersion = undefined;
            failures += 1;
            schedule(this.#backoffMs(failures));
            return;
          }
          fail(error, `read Secret ${this.#location}`);
          return;
        }
      }
      const startedAt = Date.now();
      let sawEvent = false;
      const onEvent = (type: string, object: V1Secret & { code?: number }): void => {
        sawEvent = true;
        if (type === 'ERROR') {
          // Typically 410 Gone: the resourceVersion is too old; start again from a fresh read.
          this.#resourceVersion = undefined;
          controller?.abort();
          return;
        }
        const resourceVersion = object.metadata?.resourceVersion;
        if (type === 'DELETED') {
          this.#resourceVersion = undefined;
          controller?.abort();
          return;
        }
        if (resourceVersion !== undefined) this.#resourceVersion = resourceVersion;
        if (type === 'ADDED' || type === 'MODIFIED') {
          applying = applying.then(() =>
            this.#apply(object).then(report, (error: unknown) => {
              if (!stopped) this.#events.reloadFailed(error);
            }),
          );
        }
      };
      const onDone = (error: unknown): void => {
        controller = undefined;
        if (stopped) return;
        if (error !== null && error !== undefined && !isAbort(error)) {
          fail(error, `watch Secret ${this.#location}`);
          return;
        }
        const healthy = sawEvent || Date.now() - startedAt >= 1_000;
        if (healthy) failures = 0;
        else failures += 1;
        schedule(healthy ? 0 : this.#backoffMs(failures));
      };
      try {
        const watch = new Watch(this.#access.kubeConfig);
        const started = await watch.watch(
          `/api/v1/namespaces/${encodeURIComponent(this.#access.namespace)}/secrets`,
          {
            fieldSelector: `metadata.name=${this.#name}`,
            resourceVersion: this.#resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: this.#watchTimeoutSeconds,
          },
          onEvent,
          onDone,
        );
        if (stopped) started.abort();
        else controller = started;
      } catch (error) {
        fail(error, `watch Secret ${this.#location}`);
      }
    };

    schedule(0);
    return () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      controller?.abort();
    };
  }

  async #readOrCreate(): Promise<KeySet> {
    const existing = await this.#read();
    if (existing !== undefined) return this.#completeAndApply(existing);
    if (!this.#createIfMissing) throw new KubernetesAccessError(`Secret ${this.#location} does not exist`);
    const created = await this.#create({ [CURRENT_KEY]: toBase64(await generateSigningKeyPem()) });
    return this.#apply(created);
  }

  /** Reads the Secret again (after a watch failure or deletion); a deleted Secret is re-created from the keys in force. */
  async #resync(): Promise<KeySet> {
    const existing = await this.#read();
    if (existing !== undefined) return this.#completeAndApply(existing);
    if (this.#inForce === undefined) return this.#readOrCreate();
    const data: Record<string, string> = { [CURRENT_KEY]: this.#inForce.current };
    if (this.#inForce.previous !== undefined) data[PREVIOUS_KEY] = this.#inForce.previous;
    this.#events.reloadFailed(new Error(`Secret ${this.#location} was deleted; re-creating it from the keys in force`));
    return this.#apply(await this.#create(data));
  }

  /** A Secret that exists without `private.pem` (pre-created by an operator) gets one, with optimistic concurrency. */
  async #completeAndApply(secret: V1Secret): Promise<KeySet> {
    if (secret.data?.[CURRENT_KEY] !== undefined || !this.#createIfMissing) return this.#apply(secret);
    const pem = await generateSigningKeyPem();
    try {
      const updated = await this.#api.replaceNamespacedSecret(
        { name: this.#name, namespace: this.#access.namespace, body: { ...secret, data: { ...secret.data, [CURRENT_KEY]: toBase64(pem) } } },
        this.#requestOptions,
      );
      this.#events.keyGenerated(`Secret ${this.#location}`);
      return await this.#apply(updated);
    } catch (error) {
      if (apiStatusCode(error) !== 409) throw error;
      const winner = await this.#read();
      if (winner?.data?.[CURRENT_KEY] === undefined) throw error;
      return this.#apply(winner);
    }
  }

  async #read(): Promise<V1Secret | undefined> {
    try {
      return await this.#api.readNamespacedSecret({ name: this.#name, namespace: this.#access.namespace }, this.#requestOptions);
    } catch (error) {
      if (apiStatusCode(error) === 404) return undefined;
      throw error;
    }
  }

  /** Creates the Secret; when another replica won the race (409 Conflict), returns the winner's Secret. */
  async #create(data: Record<string, string>): Promise<V1Secret> {
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {
        name: this.#name,
        namespace: this.#access.namespace,
        labels: { 'app.kubernetes.io/name': 'ct-ops-ingest', 'app.kubernetes.io/component': 'jwt-signing-key', 'app.kubernetes.io/managed-by': 'ct-ops-ingest' },
        annotations: { 'ct-ops.io/note': 'RS256 signing key of ct-ops ingest; back it up. Rotate with `ingest key rotate`.' },
      },
      data,
    };
    try {
      const created = await this.#api.createNamespacedSecret({ namespace: this.#access.namespace, body }, this.#requestOptions);
      this.#events.keyGenerated(`Secret ${this.#location}`);
      return created;
    } catch (error) {
      if (apiStatusCode(error) !== 409) throw error;
      const winner = await this.#read();
      if (winner === undefined) throw error; // created and deleted in between: the caller retries
      return winner;
    }
  }

  async #apply(secret: V1Secret): Promise<KeySet> {
    const data = secret.data ?? {};
    const current = data[CURRENT_KEY];
    if (current === undefined) throw new InvalidKeyError(`Secret ${this.#location} has no ${CURRENT_KEY}`);
    const previous = data[PREVIOUS_KEY];
    const keys: KeySet = {
      current: await parseSigningKey(Buffer.from(current, 'base64'), `${CURRENT_KEY} of Secret ${this.#location}`),
      previous: previous === undefined || previous === '' ? undefined : await parseSigningKey(Buffer.from(previous, 'base64'), `${PREVIOUS_KEY} of Secret ${this.#location}`),
    };
    this.#inForce = { current, previous: keys.previous === undefined ? undefined : previous };
    this.#fingerprint = fingerprintOf(keys);
    this.#resourceVersion = secret.metadata?.resourceVersion;
    return keys;
  }

  #clear(error: unknown, action: string): Error {
    if (error instanceof InvalidKeyError || error instanceof KubernetesAccessError) return error;
    return new KubernetesAccessError(describeApiError(error, `${action} ${this.#location}`, this.#access.server));
  }

  #backoffMs(failures: number): number {
    const ceiling = Math.min(this.#retryMaxMs, this.#retryBaseMs * 2 ** Math.max(0, failures - 1));
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }
}

function fingerprintOf(keys: KeySet): string {
  return `${keys.current.kid}/${keys.previous?.kid ?? ''}`;
}

function toBase64(pem: string): string {
  return Buffer.from(pem, 'utf8').toString('base64');
}

/** Our own abort, or the client's inactivity timeout on a quiet watch: both just mean "watch again". */
function isAbort(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  return name === 'AbortError' || name === 'TimeoutError';
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

