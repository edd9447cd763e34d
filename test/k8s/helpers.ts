import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSigningKey } from '../../src/keys/key-material.ts';
import type { StoredSecret } from './fake-kubernetes-api.ts';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const node = path.join(repoRoot, 'node_modules/.bin/node');

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node src/main.ts <args>` with only the given variables (plus PATH/HOME): no DATABASE_URL, no TLS files. */
export function runIngest(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(node, ['src/main.ts', ...args], {
      cwd: repoRoot,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

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
