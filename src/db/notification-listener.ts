import pg from 'pg';
import type { Logger } from '../telemetry/logger.ts';

export type NotificationHandler = (payload: string) => void;

/**
 * A dedicated connection that LISTENs on channels and reconnects with backoff when it drops.
 * `onReconnect` lets callers catch up on anything missed while disconnected.
 */
export class NotificationListener {
  readonly #url: string;
  readonly #logger: Logger;
  readonly #handlers = new Map<string, Set<NotificationHandler>>();
  readonly #onReconnect: () => void;
  #client: pg.Client | undefined;
  #closed = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #backoffMs = 250;

  constructor(url: string, logger: Logger, onReconnect: () => void = () => undefined) {
    this.#url = url;
    this.#logger = logger;
    this.#onReconnect = onReconnect;
  }

  on(channel: string, handler: NotificationHandler): void {
    let set = this.#handlers.get(channel);
    if (set === undefined) {
      set = new Set();
      this.#handlers.set(channel, set);
    }
    set.add(handler);
  }

  get connected(): boolean {
    return this.#client !== undefined;
  }

  /** Connects; failures are retried in the background, so this never throws. */
  async start(): Promise<void> {
    await this.#connect(false);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  async #connect(isReconnect: boolean): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client({ connectionString: this.#url, keepAlive: true, application_name: 'ct-ops-ingest-listen' });
    client.on('error', (err) => this.#lost(client, err));
    client.on('end', () => this.#lost(client, new Error('connection ended')));
    client.on('notification', (message) => {
      for (const handler of this.#handlers.get(message.channel) ?? []) handler(message.payload ?? '');
    });
    try {
      await client.connect();
      for (const channel of this.#handlers.keys()) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      if (this.#closed) {
        await client.end();
        return;
      }
      this.#client = client;
      this.#backoffMs = 250;
      if (isReconnect) this.#onReconnect();
    } catch (error) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      this.#logger.warn({ err: { message: (error as Error).message } }, 'LISTEN connection failed; retrying');
      this.#scheduleRetry();
    }
  }

  #lost(client: pg.Client, error: Error): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    if (this.#closed) return;
    this.#logger.warn({ err: { message: error.message } }, 'LISTEN connection lost; reconnecting');
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#closed) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => void this.#connect(true), this.#backoffMs);
    this.#retryTimer.unref();
    this.#backoffMs = Math.min(this.#backoffMs * 2, 10_000);
  }
}
