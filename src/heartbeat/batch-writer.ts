import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { withSpan } from '../telemetry/spans.ts';
import { METRICS_RAW_TOPIC } from '../queue/queue.ts';
import type { HeartbeatSample } from './heartbeat-sample.ts';
import type { BatchResult } from './heartbeat-store.ts';
import { WriteBuffer, type PendingWrite, type WriteOutcome } from './write-buffer.ts';

export interface BatchWriterOptions {
  readonly maxBatchSize: number;
  readonly maxDelayMs: number;
  readonly maxBufferedSamples: number;
  readonly writeBatch: (samples: readonly HeartbeatSample[]) => Promise<BatchResult>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
}

/**
 * Coalesces heartbeats from every stream into batches (SPEC §6.2): a batch is written when it is full
 * or `maxDelayMs` after its first heartbeat arrived; one batch is in flight at a time, so while it is
 * written the next one fills. A failed batch is retried with exponential backoff and nothing is
 * acknowledged until it committed (SPEC §6.3).
 */
export class BatchWriter {
  readonly #options: BatchWriterOptions;
  readonly #buffer: WriteBuffer;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #failing = false;
  #consecutiveFailures = 0;
  #stopped = false;
  #idleWaiters: Array<() => void> = [];

  constructor(options: BatchWriterOptions) {
    this.#options = options;
    this.#buffer = new WriteBuffer(options.maxBufferedSamples);
  }

  /** True while batches fail (database trouble); readiness reports it. */
  get failing(): boolean {
    return this.#failing;
  }

  get pending(): number {
    return this.#buffer.size;
  }

  /** Resolves once the heartbeat's batch committed ('written'), or why it was not written. */
  submit(sample: HeartbeatSample): Promise<WriteOutcome> {
    if (this.#stopped) return Promise.resolve('not-written');
    return new Promise<WriteOutcome>((resolve) => {
      const write: PendingWrite = { sample, settle: resolve, dropped: false };
      const dropped = this.#buffer.add(write);
      if (dropped.length > 0) this.#options.metrics.bufferDropped.inc(dropped.length);
      this.#options.metrics.bufferDepth.set(this.#buffer.size);
      this.#schedule();
    });
  }

  /** Writes everything buffered now (shutdown); resolves when the buffer is empty or `deadlineMs` passed. */
  async flush(deadlineMs: number): Promise<void> {
    while (this.#buffer.size > 0 || this.#writing !== undefined) {
      if (Date.now() >= deadlineMs) return;
      if (this.#writing === undefined) this.#startWrite();
      await Promise.race([this.#writing, new Promise((r) => setTimeout(r, Math.max(0, deadlineMs - Date.now())).unref())]);
    }
  }

  /** Stops accepting; buffered heartbeats are answered 'not-written' (never acknowledged). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    for (const write of this.#buffer.take(Number.MAX_SAFE_INTEGER)) write.settle('not-written');
    this.#options.metrics.bufferDepth.set(0);
  }

  #schedule(): void {
    if (this.#writing !== undefined) return;
    if (this.#buffer.size >= this.#options.maxBatchSize) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#startWrite();
      return;
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      if (this.#writing === undefined) this.#startWrite();
    }, this.#options.maxDelayMs);
  }

  #startWrite(): void {
    const batch = this.#buffer.take(this.#options.maxBatchSize);
    if (batch.length === 0) return;
    this.#writing = this.#write(batch).finally(() => {
      this.#writing = undefined;
      this.#options.metrics.bufferDepth.set(this.#buffer.size);
      if (this.#stopped) return;
      if (this.#buffer.size > 0) {
        if (this.#failing) this.#retryLater();
        else this.#schedule();
      }
      if (this.#buffer.size === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
    });
  }

  async #write(batch: PendingWrite[]): Promise<void> {
    const { metrics, logger } = this.#options;
    const started = performance.now();
    try {
      const result = await withSpan('ingest.batch.write', { 'ingest.batch.size': batch.length }, () => this.#options.writeBatch(batch.map((w) => w.sample)));
      metrics.batchWriteSeconds.observe((performance.now() - started) / 1000);
      metrics.batchSize.observe(batch.length);
      metrics.statementsExecuted.inc(result.statements);
      metrics.queuePublished.inc({ topic: METRICS_RAW_TOPIC }, result.eventsPublished);
      if (this.#failing) logger.info({ afterFailures: this.#consecutiveFailures }, 'database writes recovered');
      this.#failing = false;
      this.#consecutiveFailures = 0;
      for (const write of batch) write.settle(result.writtenAgentIds.has(write.sample.agentId) ? 'written' : 'not-written');
    } catch (error) {
      metrics.batchFailures.inc();
      this.#consecutiveFailures += 1;
      if (!this.#failing || this.#consecutiveFailures % 20 === 0) {
        logger.warn({ err: { message: (error as Error).message, code: (error as { code?: string }).code }, batch: batch.length, failures: this.#consecutiveFailures }, 'heartbeat batch failed; retrying');
      }
      this.#failing = true;
      const dropped = this.#buffer.restore(batch);
      if (dropped.length > 0) this.#options.metrics.bufferDropped.inc(dropped.length);
    }
  }

  #retryLater(): void {
    if (this.#timer !== undefined) return;
    const initial = this.#options.retryInitialMs ?? 100;
    const max = this.#options.retryMaxMs ?? 5_000;
    const delay = Math.min(max, initial * 2 ** Math.min(this.#consecutiveFailures - 1, 16));
    const jittered = delay / 2 + Math.random() * (delay / 2);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#writing === undefined && !this.#stopped) this.#startWrite();
    }, jittered);
  }
}
