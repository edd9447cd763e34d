import { status, type ServerDuplexStream } from '@grpc/grpc-js';
import type { Config } from '../config/config.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { withSpan } from '../telemetry/spans.ts';
import type { Clock } from '../clock.ts';
import type { AgentTokens, AgentClaims } from '../keys/jwt.ts';
import type { PeerIdentity } from '../grpc/tls-listener.ts';
import type { HeartbeatRequest, HeartbeatResponse } from '../grpc/messages.ts';
import { grpcStatusFor, IngestError } from '../errors.ts';
import { newId } from '../ids.ts';
import { toHeartbeatSample } from './heartbeat-sample.ts';
import type { AgentState, HeartbeatStore } from './heartbeat-store.ts';
import type { BatchWriter } from './batch-writer.ts';
import type { StreamRegistry } from './stream-registry.ts';
import type { WriteOutcome } from './write-buffer.ts';
import { updateSignal } from './update-signal.ts';

/** Un-acknowledged heartbeats per stream before the stream stops reading (backpressure). */
const MAX_IN_FLIGHT_PER_STREAM = 16;

export interface HeartbeatDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly agentTokens: AgentTokens;
  readonly store: HeartbeatStore;
  readonly writer: BatchWriter;
  readonly registry: StreamRegistry<HeartbeatSession>;
  readonly peerIdentity: (peer: string) => PeerIdentity | undefined;
}

type Call = ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>;

/** The end status for an agent that may no longer stream (SPEC §6.1, §6.4). */
export function refusalFor(state: AgentState): { code: status; details: string } | undefined {
  switch (state) {
    case 'deleted':
      return { code: status.NOT_FOUND, details: 'agent not found' };
    case 'revoked':
      return { code: status.PERMISSION_DENIED, details: 'agent has been revoked' };
    case 'pending':
      return { code: status.PERMISSION_DENIED, details: 'agent is awaiting approval' };
    default:
      return undefined;
  }
}

/**
 * One agent's heartbeat stream: authenticate (JWT from metadata or the first message) before touching the
 * database, claim the agent, then acknowledge each heartbeat in order once its batch committed.
 */
export class HeartbeatSession {
  readonly sessionId = newId();
  readonly peer: string;
  agentId = '';
  readonly #call: Call;
  readonly #deps: HeartbeatDeps;
  #claims: AgentClaims | undefined;
  #organisationId = '';
  #hostname = '';
  #hostId = '';
  #opened = false;
  #ended = false;
  #cleaned = false;
  #stopReading = false;
  #inFlight = 0;
  #paused = false;
  #work: Promise<void> = Promise.resolve();
  #acks: Promise<void> = Promise.resolve();

  constructor(call: Call, deps: HeartbeatDeps) {
    this.#call = call;
    this.#deps = deps;
    this.peer = call.getPeer();
  }

  start(): void {
    const { metrics } = this.#deps;
    metrics.connectedStreams.inc();
    this.#call.on('data', (request: HeartbeatRequest) => this.#enqueue(() => this.#onMessage(request)));
    this.#call.on('end', () => this.#enqueue(() => this.#onClientDone()));
    this.#call.on('error', () => this.#cleanup());
    this.#call.on('cancelled', () => this.#cleanup());
    this.#call.on('close', () => this.#cleanup());
    const bearer = bearerToken(this.#call.metadata.get('authorization'));
    if (bearer !== undefined) this.#enqueue(() => this.#open(bearer));
  }

  /** Ends the stream with a status once the heartbeats already answered are flushed. */
  terminate(code: status, details: string): void {
    if (this.#ended) return;
    this.#stopReading = true;
    void this.#acks.then(() => this.#end(code, details));
  }

  /** Stops reading new heartbeats; those already received are still written and answered. */
  stopReading(): void {
    this.#stopReading = true;
  }

  /** Resolves when every heartbeat received so far has been answered. */
  acksSettled(): Promise<void> {
    return this.#work.then(() => this.#acks);
  }

  #enqueue(step: () => Promise<void>): void {
    this.#work = this.#work.then(step).catch((error: unknown) => this.#fail(error));
  }

  async #open(token: string): Promise<void> {
    const { agentTokens, store, registry, peerIdentity, logger, metrics } = this.#deps;
    let claims: AgentClaims;
    try {
      claims = await agentTokens.verify(token);
    } catch (error) {
      logger.info({ peer: this.peer, reason: (error as { reason?: string }).reason ?? 'invalid' }, 'heartbeat stream rejected: invalid agent token');
      throw new IngestError('UNAUTHENTICATED', 'invalid or expired agent token; register again');
    }
    const identity = peerIdentity(this.peer);
    if (identity !== undefined && identity.agentId !== claims.agentId) {
      throw new IngestError('PERMISSION_DENIED', 'client certificate does not belong to this agent');
    }
    this.#claims = claims;
    this.agentId = claims.agentId;
    const opened = await withSpan('ingest.heartbeat.stream.open', { 'ingest.agent_id': claims.agentId }, () => store.openStream(claims.agentId, this.sessionId));
    const refusal = refusalFor(opened.state);
    if (refusal !== undefined) {
      metrics.streamsEnded.inc({ reason: opened.state });
      this.#end(refusal.code, refusal.details);
      return;
    }
    if (this.#ended) {
      // The client went away while the agent was being claimed: release the claim.
      registry.trackClosing(store.closeStream(claims.agentId, this.sessionId).catch(() => false));
      return;
    }
    this.#organisationId = opened.organisationId;
    this.#hostname = opened.hostname;
    this.#hostId = opened.hostId ?? newId();
    this.#opened = true;
    registry.add(this);
    logger.debug({ agentId: claims.agentId, peer: this.peer }, 'heartbeat stream opened');
  }

  async #onMessage(request: HeartbeatRequest): Promise<void> {
    if (this.#ended || this.#stopReading) return;
    this.#deps.metrics.heartbeatsReceived.inc();
    if (this.#claims === undefined) {
      await this.#open(request.agent_id ?? '');
      if (this.#ended) return;
    }
    const receivedAtMs = this.#deps.clock.nowMs();
    const sample = toHeartbeatSample(request, {
      agentId: this.agentId,
      organisationId: this.#organisationId,
      hostname: this.#hostname,
      hostId: this.#hostId,
      metricId: newId(),
      receivedAtMs,
    });
    const outcome = this.#deps.writer.submit(sample);
    this.#inFlight += 1;
    if (this.#inFlight >= MAX_IN_FLIGHT_PER_STREAM && !this.#paused) {
      this.#paused = true;
      this.#call.pause();
    }
    const started = performance.now();
    this.#acks = this.#acks.then(() => outcome).then((result) => this.#answer(result, sample.agentVersion, started));
  }

  async #answer(outcome: WriteOutcome, agentVersion: string, startedMs: number): Promise<void> {
    const { metrics, config } = this.#deps;
    this.#inFlight -= 1;
    if (this.#paused && this.#inFlight < MAX_IN_FLIGHT_PER_STREAM / 2) {
      this.#paused = false;
      this.#call.resume();
    }
    if (this.#ended) return;
    if (outcome === 'written') {
      this.#call.write({ ok: true, ...updateSignal(agentVersion, config.latestAgentVersion, config.agentDownloadBaseUrl) });
      metrics.heartbeatsAcknowledged.inc();
      metrics.heartbeatAckSeconds.observe((performance.now() - startedMs) / 1000);
      return;
    }
    if (outcome === 'dropped') {
      this.#call.write({ ok: false });
      return;
    }
    // Not written: the agent was revoked, deleted or un-approved meanwhile, or the writer stopped.
    const state = (await this.#deps.store.agentStates([this.agentId]).catch(() => undefined))?.get(this.agentId);
    const refusal = state === undefined ? undefined : refusalFor(state);
    if (refusal !== undefined) this.#end(refusal.code, refusal.details);
    else this.#end(status.UNAVAILABLE, 'heartbeat not stored; reconnect');
  }

  async #onClientDone(): Promise<void> {
    await this.#acks;
    if (this.#ended) return;
    this.#ended = true;
    this.#call.end();
    this.#cleanup();
  }

  #fail(error: unknown): void {
    const mapped = grpcStatusFor(error);
    if (!(error instanceof IngestError)) {
      this.#deps.logger.error({ err: { message: (error as Error).message, code: (error as { code?: string }).code }, peer: this.peer }, 'heartbeat stream failed');
    }
    this.#end(mapped.code, mapped.details);
  }

  #end(code: status, details: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#call.emit('error', { code, details, metadata: undefined });
    this.#cleanup();
  }

  #cleanup(): void {
    this.#ended = true;
    if (this.#cleaned) return;
    this.#cleaned = true;
    const { metrics, registry, store, logger } = this.#deps;
    metrics.connectedStreams.dec();
    if (!this.#opened) return;
    registry.remove(this);
    const closing = withSpan('ingest.heartbeat.stream.close', { 'ingest.agent_id': this.agentId }, () => store.closeStream(this.agentId, this.sessionId)).then(
      (markedOffline) => {
        if (markedOffline) metrics.agentsMarkedOffline.inc({ cause: 'stream_closed' });
      },
      (error: unknown) => logger.warn({ err: { message: (error as Error).message }, agentId: this.agentId }, 'could not mark agent offline; the sweeper will'),
    );
    registry.trackClosing(closing);
  }
}

function bearerToken(values: Array<string | Buffer>): string | undefined {
  for (const value of values) {
    const match = /^Bearer\s+(\S+)$/i.exec(String(value).trim());
    if (match !== null) return match[1];
  }
  return undefined;
}
