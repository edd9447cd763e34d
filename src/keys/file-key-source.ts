import { constants, promises as fs, watchFile, unwatchFile } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { generateSigningKeyPem, parseSigningKey, InvalidKeyError, type SigningKey } from './key-material.ts';
import type { KeySet } from './key-ring.ts';
import type { KeySource, KeySourceEvents } from './key-source.ts';

/**
 * Signing key in a PEM file (SPEC §8.1 file source), with an optional `<file>.previous`.
 * A missing key is generated and written atomically (mode 0600); an existing file is never overwritten
 * except by an explicit rotation.
 */
export class FileKeySource implements KeySource {
  readonly #file: string;
  readonly #events: KeySourceEvents;

  constructor(file: string, events: KeySourceEvents) {
    this.#file = file;
    this.#events = events;
  }

  get description(): string {
    return `file ${this.#file}`;
  }

  get previousFile(): string {
    return `${this.#file}.previous`;
  }

  async load(): Promise<KeySet> {
    const current = await this.#readKey(this.#file);
    if (current === undefined) {
      await this.#createKey();
      return this.load();
    }
    const previous = await this.#readKey(this.previousFile);
    return { current, previous };
  }

  /** Moves the current key to `<file>.previous` and writes a fresh current key. */
  async rotate(): Promise<KeySet> {
    const existing = await this.#readKey(this.#file);
    if (existing === undefined) return this.load();
    const pem = await generateSigningKeyPem();
    await writeFileAtomically(this.previousFile, await fs.readFile(this.#file), { replace: true });
    await writeFileAtomically(this.#file, pem, { replace: true });
    return this.load();
  }

  /**
   * Polls the key files and reports a changed key set; invalid files are reported, never applied.
   * A key file that disappears while running is reported too: generating a replacement here would
   * silently invalidate every JWT in circulation.
   */
  watch(intervalMs: number, onChange: (keys: KeySet) => void): () => void {
    let last = '';
    const check = (): void => {
      this.#readKeySet().then(
        (keys) => {
          const fingerprint = `${keys.current.kid}/${keys.previous?.kid ?? ''}`;
          if (last !== '' && fingerprint !== last) onChange(keys);
          last = fingerprint;
        },
        (error: unknown) => this.#events.reloadFailed(error),
      );
    };
    check();
    const files = [this.#file, this.previousFile];
    for (const file of files) watchFile(file, { interval: intervalMs, persistent: false }, check);
    return () => {
      for (const file of files) unwatchFile(file, check);
    };
  }

  async #readKeySet(): Promise<KeySet> {
    const current = await this.#readKey(this.#file);
    if (current === undefined) throw new InvalidKeyError(`signing key ${this.#file} is missing`);
    return { current, previous: await this.#readKey(this.previousFile) };
  }

  async #readKey(file: string): Promise<SigningKey | undefined> {
    let pem: Buffer;
    try {
      pem = await fs.readFile(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new InvalidKeyError(`cannot read signing key ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    return parseSigningKey(pem, `signing key ${file}`);
  }

  async #createKey(): Promise<void> {
    const pem = await generateSigningKeyPem();
    let created: boolean;
    try {
      created = await writeFileAtomically(this.#file, pem, { replace: false });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new InvalidKeyError(`cannot write a new signing key to ${this.#file} (${code}): make its directory writable or provide a key there`);
    }
    if (created) this.#events.keyGenerated(this.#file);
  }
}

/**
 * Writes through a temporary file in the same directory with mode 0600, fsyncs, then links it into place.
 * With `replace: false` an existing target wins (another process created it first) and false is returned.
 */
export async function writeFileAtomically(file: string, content: string | Buffer, options: { replace: boolean }): Promise<boolean> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(tmp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    if (options.replace) {
      await fs.rename(tmp, file);
      return true;
    }
    await fs.link(tmp, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}
