import type { JSONWebKeySet } from 'jose';
import type { SigningKey } from './key-material.ts';

/** The keys in force: `current` signs, `current` and `previous` verify. */
export interface KeySet {
  readonly current: SigningKey;
  readonly previous: SigningKey | undefined;
}

type Listener = (keys: KeySet) => void;

/**
 * Holds the loaded key set and swaps it atomically when a source reloads.
 * Readers always see a complete set; listeners hear about each swap.
 */
export class KeyRing {
  #keys: KeySet | undefined;
  readonly #listeners = new Set<Listener>();

  constructor(keys?: KeySet) {
    this.#keys = keys;
  }

  get loaded(): boolean {
    return this.#keys !== undefined;
  }

  get keys(): KeySet {
    if (this.#keys === undefined) throw new Error('signing keys are not loaded');
    return this.#keys;
  }

  replace(keys: KeySet): void {
    this.#keys = keys;
    for (const listener of this.#listeners) listener(keys);
  }

  onReplace(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Keys that may verify a token: current first, then the previous one. */
  verificationKeys(): SigningKey[] {
    const { current, previous } = this.keys;
    return previous !== undefined && previous.kid !== current.kid ? [current, previous] : [current];
  }

  jwks(): JSONWebKeySet {
    return { keys: this.verificationKeys().map((k) => ({ ...k.publicJwk })) };
  }
}
