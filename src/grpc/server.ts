import http2 from 'node:http2';
import { Server, ServerCredentials, status, type ServerInterceptor, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Config } from '../config/config.ts';
import type { Logger } from '../telemetry/logger.ts';
import { ingestServiceDefinition, INGEST_SERVICE_NAME } from './proto.ts';
import { TlsListener, type Connection } from './tls-listener.ts';

export interface GrpcServerOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly interceptors?: ServerInterceptor[];
}

type AgedListener = (peer: string) => void;

/**
 * The TLS-only gRPC endpoint: agent.v1.IngestService plus grpc.health.v1.Health.
 * TLS is terminated by TlsListener; grpc-js serves the decrypted connections through a connection injector.
 * Max connection age is enforced here so that streams can be ended with UNAVAILABLE (not cancelled) after the grace.
 */
export class IngestGrpcServer {
  readonly health = new HealthImplementation({ '': 'NOT_SERVING', [INGEST_SERVICE_NAME]: 'NOT_SERVING' });
  readonly #options: GrpcServerOptions;
  readonly #grpc: Server;
  readonly #tls: TlsListener;
  readonly #sessions = new Map<string, http2.ServerHttp2Session>();
  readonly #ageTimers = new Set<NodeJS.Timeout>();
  readonly #agedListeners = new Set<AgedListener>();
  #injector: ReturnType<Server['createConnectionInjector']> | undefined;
  #injecting: Connection | undefined;
  #port = 0;

  constructor(options: GrpcServerOptions) {
    this.#options = options;
    const { config } = options;
    this.#grpc = new Server({
      'grpc.keepalive_time_ms': config.grpc.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': config.grpc.keepaliveTimeoutMs,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': config.grpc.maxMessageBytes,
      'grpc.max_send_message_length': config.grpc.maxMessageBytes,
      'grpc.max_concurrent_streams': 100,
      interceptors: options.interceptors ?? [],
    });
    this.health.addToServer(this.#grpc);
    this.#tls = new TlsListener(
      {
        certFile: config.tls.certFile,
        keyFile: config.tls.keyFile,
        clientCaFile: config.tls.clientCaFile,
        clientAuth: config.tls.clientAuth,
        reloadIntervalMs: config.tls.reloadIntervalMs,
      },
      options.logger.child({ module: 'tls' }),
    );
  }

  get port(): number {
    return this.#port;
  }

  get tls(): TlsListener {
    return this.#tls;
  }

  /** The verified connection a call arrived on (by grpc-js peer name). */
  connection(peer: string): Connection | undefined {
    return this.#tls.connection(peer);
  }

  /** Called when a connection reached its max age and its grace ran out: end its streams with UNAVAILABLE. */
  onConnectionAged(listener: AgedListener): void {
    this.#agedListeners.add(listener);
  }

  /** Registers the IngestService handlers and reads TLS material (failing clearly) without binding a port. */
  async prepare(handlers: UntypedServiceImplementation): Promise<void> {
    // Methods without a handler (Terminal, SubmitSoftwareInventory, RenewCertificate) get grpc-js's
    // default handler, which answers UNIMPLEMENTED (SPEC §3).
    this.#grpc.addService(ingestServiceDefinition(), handlers);
    this.#injector = this.#grpc.createConnectionInjector(ServerCredentials.createInsecure());
    this.#watchSessions();
    await this.#tls.prepare((connection) => this.#inject(connection));
  }

  async listen(): Promise<number> {
    const { config } = this.#options;
    this.#port = await this.#tls.listen(config.grpcPort, config.bindAddress);
    this.setServing(true);
    return this.#port;
  }

  setServing(serving: boolean): void {
    const value = serving ? 'SERVING' : 'NOT_SERVING';
    this.health.setStatus('', value);
    this.health.setStatus(INGEST_SERVICE_NAME, value);
  }

  /** Stop accepting connections and send GOAWAY on every open one; streams in flight may finish. */
  async beginDrain(graceMs: number): Promise<void> {
    this.setServing(false);
    await this.#tls.stopAccepting();
    this.#injector?.drain(graceMs);
  }

  /**
   * Ends everything that is left. Connections told to go away (drain) first get up to `flushMs` to finish on
   * their own: a stream ended just before (e.g. with UNAVAILABLE) must get its final status onto the wire, or the
   * client sees a bare reset (INTERNAL) instead.
   */
  async forceShutdown(flushMs = 1_000): Promise<void> {
    await this.#sessionsClosed(flushMs);
    for (const timer of this.#ageTimers) clearTimeout(timer);
    this.#ageTimers.clear();
    this.#injector?.destroy();
    this.#grpc.forceShutdown();
    this.#tls.destroyAll();
    void this.#tls.stopAccepting();
  }

  #sessionsClosed(limitMs: number): Promise<void> {
    const open = [...this.#sessions.values()].filter((session) => !session.destroyed);
    if (open.length === 0 || limitMs <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, limitMs);
      timer.unref();
      void Promise.all(open.map((session) => new Promise((closed) => session.once('close', closed)))).then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #inject(connection: Connection): void {
    this.#injecting = connection;
    try {
      this.#injector?.injectConnection(connection.socket);
    } finally {
      this.#injecting = undefined;
    }
    this.#scheduleMaxAge(connection);
  }

  /**
   * grpc-js does not expose the HTTP/2 sessions of an injector; its internal server is the one it just created.
   * The session is created synchronously while a connection is injected, so it can be tied to that connection.
   */
  #watchSessions(): void {
    const servers = (this.#grpc as unknown as { http2Servers: Map<http2.Http2Server, unknown> }).http2Servers;
    const internal = [...servers.keys()].at(-1);
    if (internal === undefined) throw new Error('grpc-js connection injector has no HTTP/2 server');
    internal.on('session', (session: http2.ServerHttp2Session) => {
      const connection = this.#injecting;
      if (connection === undefined) return;
      this.#sessions.set(connection.peer, session);
      session.once('close', () => this.#sessions.delete(connection.peer));
    });
  }

  #scheduleMaxAge(connection: Connection): void {
    const { maxConnectionAgeMs, maxConnectionAgeGraceMs } = this.#options.config.grpc;
    const jitter = (Math.random() * 2 - 1) * maxConnectionAgeMs * 0.1;
    const aged = setTimeout(() => {
      this.#ageTimers.delete(aged);
      const session = this.#sessions.get(connection.peer);
      if (session === undefined || session.closed || session.destroyed) return;
      session.goaway(http2.constants.NGHTTP2_NO_ERROR, 2 ** 31 - 1, Buffer.from('max_age'));
      const graceOver = setTimeout(() => {
        this.#ageTimers.delete(graceOver);
        for (const listener of this.#agedListeners) listener(connection.peer);
        // Give the UNAVAILABLE trailers a moment to flush before the connection goes.
        const close = setTimeout(() => {
          this.#ageTimers.delete(close);
          if (!session.destroyed) session.destroy();
        }, 1_000);
        close.unref();
        this.#ageTimers.add(close);
      }, maxConnectionAgeGraceMs);
      graceOver.unref();
      this.#ageTimers.add(graceOver);
    }, maxConnectionAgeMs + jitter);
    aged.unref();
    this.#ageTimers.add(aged);
    connection.socket.once('close', () => {
      clearTimeout(aged);
      this.#ageTimers.delete(aged);
    });
  }
}

export { status };
