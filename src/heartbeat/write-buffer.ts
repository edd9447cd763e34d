import type { HeartbeatSample } from './heartbeat-sample.ts';

export type WriteOutcome = 'written' | 'not-written' | 'dropped';

export interface PendingWrite {
  readonly sample: HeartbeatSample;
  settle(outcome: WriteOutcome): void;
  dropped: boolean;
}

/**
 * Heartbeats waiting to be written, in arrival order, bounded (SPEC §6.3). When the bound is reached the
 * newest vitals of every agent are kept: an agent's older pending sample is dropped first, then older
 * samples of agents that have several pending; an agent's only (newest) sample is never dropped, so the
 * buffer can exceed the bound by at most one sample per connected agent. Dropped samples are answered
 * 'dropped' (never acknowledged as written) and counted by the caller.
 */
export class WriteBuffer {
  readonly #maxSamples: number;
  readonly #queue: PendingWrite[] = [];
  #head = 0;
  readonly #byAgent = new Map<string, PendingWrite[]>();
  #size = 0;

  constructor(maxSamples: number) {
    this.#maxSamples = maxSamples;
  }

  get size(): number {
    return this.#size;
  }

  /** Adds a write; returns the writes dropped to make room (already settled as 'dropped'). */
  add(write: PendingWrite): PendingWrite[] {
    const dropped: PendingWrite[] = [];
    if (this.#size >= this.#maxSamples) {
      const victim = this.#oldestOf(write.sample.agentId) ?? this.#oldestOfAgentWithSeveral();
      if (victim !== undefined) {
        this.#drop(victim);
        dropped.push(victim);
      }
    }
    this.#queue.push(write);
    const list = this.#byAgent.get(write.sample.agentId);
    if (list === undefined) this.#byAgent.set(write.sample.agentId, [write]);
    else list.push(write);
    this.#size += 1;
    return dropped;
  }

  /** Removes and returns up to `max` writes in arrival order. */
  take(max: number): PendingWrite[] {
    const batch: PendingWrite[] = [];
    while (batch.length < max && this.#head < this.#queue.length) {
      const write = this.#queue[this.#head] as PendingWrite;
      this.#head += 1;
      if (write.dropped) continue;
      batch.push(write);
      this.#forget(write);
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
    return batch;
  }

  /**
   * Puts writes back at the front (a failed batch is retried first, keeping order) and trims to the bound;
   * returns the writes dropped by trimming (already settled as 'dropped').
   */
  restore(writes: PendingWrite[]): PendingWrite[] {
    const live = writes.filter((w) => !w.dropped);
    this.#queue.splice(this.#head, 0, ...live);
    for (const write of live.slice().reverse()) {
      const list = this.#byAgent.get(write.sample.agentId);
      if (list === undefined) this.#byAgent.set(write.sample.agentId, [write]);
      else list.unshift(write);
      this.#size += 1;
    }
    // Restoring may exceed the bound; trim the same way as add().
    const dropped: PendingWrite[] = [];
    while (this.#size > this.#maxSamples) {
      const victim = this.#oldestOfAgentWithSeveral();
      if (victim === undefined) break;
      this.#drop(victim);
      dropped.push(victim);
    }
    return dropped;
  }

  #oldestOf(agentId: string): PendingWrite | undefined {
    return this.#byAgent.get(agentId)?.[0];
  }

  #oldestOfAgentWithSeveral(): PendingWrite | undefined {
    for (const list of this.#byAgent.values()) if (list.length > 1) return list[0];
    return undefined;
  }

  #drop(write: PendingWrite): void {
    write.dropped = true;
    this.#forget(write);
    write.settle('dropped');
  }

  #forget(write: PendingWrite): void {
    const list = this.#byAgent.get(write.sample.agentId);
    if (list !== undefined) {
      const index = list.indexOf(write);
      if (index >= 0) list.splice(index, 1);
      if (list.length === 0) this.#byAgent.delete(write.sample.agentId);
    }
    this.#size -= 1;
  }
}
