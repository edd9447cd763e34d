import { parseSigningKey } from '../../src/keys/key-material.ts';
import type { StoredSecret } from './fake-kubernetes-api.ts';

export { runIngest, type CliResult } from '../helpers/cli.ts';

/** Polls `check` until it returns a value (not undefined), or fails after `timeoutMs` with the last observation. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${(last as Error).message}`}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function kidOf(secret: StoredSecret, dataKey: string): Promise<string> {
  const value = secret.data[dataKey];
  if (value === undefined) throw new Error(`Secret has no ${dataKey}`);
  return (await parseSigningKey(Buffer.from(value, 'base64'), dataKey)).kid;
}

export async function jwksKids(http: (p: string) => Promise<Response>): Promise<string[]> {
  const response = await http('/.well-known/jwks.json');
  const body = (await response.json()) as { keys: Array<{ kid: string }> };
  return body.keys.map((k) => k.kid);
}
