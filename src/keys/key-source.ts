import type { KeySet } from './key-ring.ts';

/** Where the signing keys live (SPEC §8.1): a file or a Kubernetes Secret. */
export interface KeySource {
  readonly description: string;
  load(): Promise<KeySet>;
  rotate(): Promise<KeySet>;
  watch(intervalMs: number, onChange: (keys: KeySet) => void): () => void;
}

/** What a key source reports to the operator (logged by the caller; never key material). */
export interface KeySourceEvents {
  keyGenerated(location: string): void;
  reloadFailed(error: unknown): void;
}
