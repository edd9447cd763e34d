import { existsSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { z } from 'zod';
import { environmentSchema } from '../config/schema.ts';
import { ConfigError } from '../config/config.ts';
import { createLogger } from '../telemetry/logger.ts';
import { generateSigningKeyPem, InvalidKeyError } from '../keys/key-material.ts';
import { FileKeySource, writeFileAtomically } from '../keys/file-key-source.ts';
import { KeyRing, type KeySet } from '../keys/key-ring.ts';
import { keySourceEvents } from '../keys/select-key-source.ts';
import { kubernetesAccess } from '../keys/kubernetes-access.ts';
import { KubernetesSecretKeySource } from '../keys/kubernetes-secret-key-source.ts';
import type { KeySource } from '../keys/key-source.ts';

/** Only the key variables: `key` commands work without DATABASE_URL or TLS files (same defaults as `serve`). */
const keyEnvironmentSchema = z.object({
  INGEST_JWT_KEY_FILE: environmentSchema.shape.INGEST_JWT_KEY_FILE,
  INGEST_JWT_KEY_SECRET: environmentSchema.shape.INGEST_JWT_KEY_SECRET,
  INGEST_KUBERNETES_NAMESPACE: environmentSchema.shape.INGEST_KUBERNETES_NAMESPACE,
});

function keySourceFromEnv(env: NodeJS.ProcessEnv, options: { createIfMissing: boolean }): KeySource {
  const parsed = keyEnvironmentSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => `${String(i.path[0] ?? 'environment')} ${i.message}`));
  const logger = createLogger(env['INGEST_LOG_LEVEL'] === undefined || env['INGEST_LOG_LEVEL'] === '' ? 'warn' : env['INGEST_LOG_LEVEL'], process.stderr);
  const events = keySourceEvents(logger);
  const { INGEST_JWT_KEY_FILE: keyFile, INGEST_JWT_KEY_SECRET: secretName, INGEST_KUBERNETES_NAMESPACE: namespace } = parsed.data;
  if (secretName !== undefined) {
    return new KubernetesSecretKeySource({
      secretName,
      access: kubernetesAccess({ namespace }),
      events,
      createIfMissing: options.createIfMissing,
      startupAttempts: 3,
    });
  }
  if (!options.createIfMissing && !existsSync(keyFile)) throw new InvalidKeyError(`no signing key at ${keyFile} (INGEST_JWT_KEY_FILE)`);
  return new FileKeySource(keyFile, events);
}

function describeKeys(keys: KeySet): string {
  return `current kid ${keys.current.kid}${keys.previous === undefined ? '' : `, previous kid ${keys.previous.kid}`}`;
}

/** `ingest key generate|rotate|jwks` (SPEC §8.1, §12). Key material goes only to stdout or the named file. */
export function registerKeyCommands(program: Command): void {
  const key = program.command('key').description('signing keys: generate a key, rotate the configured key, print the JWKS');
  key
    .command('generate')
    .description('print a new 2048-bit RSA signing key (PKCS#8 PEM), or write it to a file that does not exist yet')
    .option('--out <file>', 'write the key to this file (mode 0600); an existing file is never overwritten')
    .action(async (options: { out?: string }) => {
      const pem = await generateSigningKeyPem();
      if (options.out === undefined) {
        process.stdout.write(pem);
        return;
      }
      const file = path.resolve(options.out);
      if (!(await writeFileAtomically(file, pem, { replace: false }))) {
        throw new InvalidKeyError(`${file} already exists; refusing to overwrite a signing key`);
      }
      process.stdout.write(`wrote a new signing key to ${file}\n`);
    });
  key
    .command('rotate')
    .description('make a new current key and keep the old one as previous (Secret INGEST_JWT_KEY_SECRET, else file INGEST_JWT_KEY_FILE)')
    .action(async () => {
      const source = keySourceFromEnv(process.env, { createIfMissing: true });
      const keys = await source.rotate();
      process.stdout.write(`rotated ${source.description}: ${describeKeys(keys)}\n`);
    });
  key
    .command('jwks')
    .description('print the JWKS (public keys) of the configured key source')
    .action(async () => {
      const source = keySourceFromEnv(process.env, { createIfMissing: false });
      const ring = new KeyRing(await source.load());
      process.stdout.write(`${JSON.stringify(ring.jwks(), null, 2)}\n`);
    });
}
