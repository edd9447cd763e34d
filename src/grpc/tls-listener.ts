import { createServer, type Server as TlsServer, type TLSSocket, type SecureContextOptions } from 'node:tls';
import { watchFile, unwatchFile } from 'node:fs';
import type { Socket } from 'node:net';
import type { ClientAuthMode } from '../config/config.ts';
import type { Logger } from '../telemetry/logger.ts';
import { readTlsContextOptions, type TlsFiles } from './tls-context.ts';
import { listenOn } from '../listen.ts';

/** The agent named by a verified client certificate's `spiffe://ct-ops/org/<org>/agent/<agent>` URI SAN. */
export interface PeerIdentity {
  readonly organisationId: string;
  readonly agentId: string;
}

export interface Connection {
  readonly peer: string;
  readonly socket: TLSSocket;
  readonly identity: PeerIdentity | undefined;
  readonly openedAtMs: number;
}

const SPIFFE_AGENT = /^spiffe:\/\/ct-ops\/org\/([^/]+)\/agent\/([^/]+)$/;

export function identityFromSubjectAltName(subjectAltName: string | undefined): PeerIdentity | undefined {
  for (const entry of (subjectAltName ?? '').split(/,\s*/)) {
    if (!entry.startsWith('URI:')) continue;
    const match = SPIFFE_AGENT.exec(entry.slice(4));
    if (match === null) continue;
    const organisationId = decodeSegment(match[1] ?? '');
    const agentId = decodeSegment(match[2] ?? '');
    // A malformed name is no identity (and must not throw inside the TLS server's connection handler).
    if (organisationId === undefined || agentId === undefined) return undefined;
    return { organisationId, agentId };
  }
  return undefined;
}

function decodeSegment(segment: string): string | undefined {
  try {
    const decoded = decodeURIComponent(segment);
    return decoded === '' || decoded.includes('/') ? undefined : decoded;
  } catch {
    return undefined;
  }
}

/** grpc-js names a peer `address:port`; the registry uses the same key so handlers can find their connection. */
export const peerKey = (socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string =>
  `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? 0}`;

export interface TlsListenerOptions extends TlsFiles {
  readonly clientAuth: ClientAuthMode;
  readonly reloadIntervalMs: number;
  readonly handshakeTimeoutMs?: number;
}

/**
 * Terminates TLS for the gRPC port. It owns the handshake so that it can
 *  - verify a client certificate only when one is presented (mTLS "optional"),
 *  - reload the certificate when its files change without touching open connections,
 *  - remember each connection's verified identity for the handlers.
 * Decrypted connections are handed to grpc-js through `onConnection`.
 */
export class TlsListener {
  readonly #options: TlsListenerOptions;
  readonly #logger: Logger;
  readonly #connections = new Map<string, Connection>();
  #server: TlsServer | undefined;
  #unwatch: (() => void) | undefined;
  #contextFingerprint = '';
  #reloading: Promise<void> = Promise.resolve();
  readonly #rawSockets = new Set<Socket>();

  constructor(options: TlsListenerOptions, logger: Logger) {
    this.#options = options;
    this.#logger = logger;
  }

  /** Reads the TLS files (failing clearly when they are unusable) and prepares the server; does not bind. */
  async prepare(onConnection: (connection: Connection) => void): Promise<void> {
    const context = await readTlsContextOptions(this.#options);
    this.#contextFingerprint = fingerprint(context);
    const server = createServer({
      ...context,
      ALPNProtocols: ['h2'],
      minVersion: 'TLSv1.2',
      requestCert: this.#options.clientAuth !== 'none',
      rejectUnauthorized: this.#options.clientAuth === 'require',
      handshakeTimeout: this.#options.handshakeTimeoutMs ?? 10_000,
    });
    server.on('connection', (socket: Socket) => {
      this.#rawSockets.add(socket);
      socket.once('close', () => this.#rawSockets.delete(socket));
    });
    server.on('secureConnection', (socket: TLSSocket) => this.#accept(socket, onConnection));
    server.on('tlsClientError', (error: Error, socket: TLSSocket) => {
      this.#logger.debug({ peer: peerKey(socket), reason: error.message }, 'TLS handshake failed');
    });
    this.#server = server;
  }

  async listen(port: number, host: string): Promise<number> {
    const server = this.#server;
    if (server === undefined) throw new Error('TlsListener.prepare() must run first');
    const bound = await listenOn(server, port, host);
    this.#unwatch = this.#watchFiles();
    return bound;
  }

  connection(peer: string): Connection | undefined {
    return this.#connections.get(peer);
  }

  get connections(): IterableIterator<Connection> {
    return this.#connections.values();
  }

  /**
   * Stops accepting at once; open connections are left to the caller's drain.
   * (Not waiting for `close`: its callback only fires once every open connection has ended,
   * and agents keep theirs open until they are told to go away.)
   */
  stopAccepting(): Promise<void> {
    this.#unwatch?.();
    this.#unwatch = undefined;
    const server = this.#server;
    if (server !== undefined && server.listening) server.close();
    return Promise.resolve();
  }

  /** Ends every connection, including those still in their handshake. */
  destroyAll(): void {
    for (const { socket } of this.#connections.values()) socket.destroy();
    for (const socket of this.#rawSockets) socket.destroy();
  }

  /** Re-reads the files; a broken pair is logged and the previous context stays in force. */
  reload(): Promise<boolean> {
    // One reload at a time: a slow read of the old files must not land after a newer one.
    const next = this.#reloading.then(() => this.#reloadOnce());
    this.#reloading = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  async #reloadOnce(): Promise<boolean> {
    try {
      const context = await readTlsContextOptions(this.#options);
      const next = fingerprint(context);
      if (next === this.#contextFingerprint) return false;
      this.#server?.setSecureContext(context);
      this.#contextFingerprint = next;
      this.#logger.info('TLS certificate reloaded');
      return true;
    } catch (error) {
      this.#logger.error({ err: { message: (error as Error).message } }, 'TLS certificate reload failed; keeping the previous certificate');
      return false;
    }
  }

  #accept(socket: TLSSocket, onConnection: (connection: Connection) => void): void {
    socket.on('error', (error) => this.#logger.debug({ peer: peerKey(socket), reason: error.message }, 'TLS connection error'));
    let identity: PeerIdentity | undefined;
    if (this.#options.clientAuth !== 'none') {
      const certificate = socket.getPeerCertificate();
      const presented = certificate !== null && Object.keys(certificate).length > 0;
      if (presented && !socket.authorized) {
        // verify-if-presented: an untrusted certificate is refused even when certificates are optional.
        this.#logger.info({ peer: peerKey(socket), reason: String(socket.authorizationError) }, 'client certificate rejected');
        socket.destroy();
        return;
      }
      if (presented) identity = identityFromSubjectAltName(certificate.subjectaltname);
    }
    const connection: Connection = { peer: peerKey(socket), socket, identity, openedAtMs: Date.now() };
    this.#connections.set(connection.peer, connection);
    socket.once('close', () => this.#connections.delete(connection.peer));
    onConnection(connection);
  }

  #watchFiles(): () => void {
    const files = [this.#options.certFile, this.#options.keyFile, this.#options.clientCaFile].filter((f): f is string => f !== undefined);
    const onChange = (): void => void this.reload();
    for (const file of files) watchFile(file, { interval: this.#options.reloadIntervalMs, persistent: false }, onChange);
    return () => {
      for (const file of files) unwatchFile(file, onChange);
    };
  }
}

function fingerprint(context: SecureContextOptions): string {
  return [context.cert, context.key, context.ca].map((part) => (part === undefined ? '' : String(part))).join('\u0000');
}
