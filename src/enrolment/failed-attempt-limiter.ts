import type { Clock } from '../clock.ts';

export interface FailedAttemptLimiterOptions {
  readonly failuresPerMinute: number;
  readonly clock: Clock;
  /** Addresses remembered at most; the least recently failing ones are forgotten first. */
  readonly maxAddresses?: number;
}

const WINDOW_MS = 60_000;

/**
 * Counts failed enrolment-token attempts per client address over a sliding minute (SPEC §5.5). Only failures
 * are counted and only the failing address is limited, so other clients' correct tokens are never slowed.
 * Memory is bounded: at most `failuresPerMinute` timestamps per address and `maxAddresses` addresses.
 */
export class FailedAttemptLimiter {
  readonly #failures = new Map<string, number[]>();
  readonly #limit: number;
  readonly #clock: Clock;
  readonly #maxAddresses: number;

  constructor(options: FailedAttemptLimiterOptions) {
    if (!Number.isInteger(options.failuresPerMinute) || options.failuresPerMinute < 1) throw new Error('failuresPerMinute must be a positive integer');
    this.#limit = options.failuresPerMinute;
    this.#clock = options.clock;
    this.#maxAddresses = options.maxAddresses ?? 10_000;
  }

  /** True when the address used up its failures for the current minute. */
  isLimited(address: string): boolean {
    return this.#recent(address).length >= this.#limit;
  }

  recordFailure(address: string): void {
    const recent = this.#recent(address);
    recent.push(this.#clock.nowMs());
    if (recent.length > this.#limit) recent.splice(0, recent.length - this.#limit);
    // Re-insert so Map order is least recently failing first, which is what eviction drops.
    this.#failures.delete(address);
    this.#failures.set(address, recent);
    while (this.#failures.size > this.#maxAddresses) {
      const oldest = this.#failures.keys().next().value;
      if (oldest === undefined) break;
      this.#failures.delete(oldest);
    }
  }

  get trackedAddresses(): number {
    return this.#failures.size;
  }

  #recent(address: string): number[] {
    const entries = this.#failures.get(address);
    if (entries === undefined) return [];
    const cutoff = this.#clock.nowMs() - WINDOW_MS;
    const recent = entries.filter((at) => at > cutoff);
    if (recent.length === 0) this.#failures.delete(address);
    else if (recent.length !== entries.length) this.#failures.set(address, recent);
    return recent;
  }
}
