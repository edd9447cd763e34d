import type { Config } from '../config/config.ts';
import type { Logger } from '../telemetry/logger.ts';
import { FileKeySource } from './file-key-source.ts';
import type { KeySource, KeySourceEvents } from './key-source.ts';
import { kubernetesAccess } from './kubernetes-access.ts';
import { KubernetesSecretKeySource } from './kubernetes-secret-key-source.ts';

export function keySourceEvents(logger: Logger, onReloadFailed?: () => void): KeySourceEvents {
  return {
    keyGenerated: (location) =>
      logger.warn({ location }, 'generated a new JWT signing key; back it up: losing it invalidates every agent JWT and forces all agents to re-register'),
    reloadFailed: (error) => {
      onReloadFailed?.();
      logger.error({ err: { message: (error as Error).message } }, 'signing key reload failed; keeping the keys in force');
    },
  };
}

export interface KeySourceSelection {
  /** Called on each failed reload (e.g. to count `ingest_key_reloads_total{result="failure"}`). */
  readonly onReloadFailed?: () => void;
}

/**
 * Exactly one key source applies (SPEC §8.1): the Kubernetes Secret named by INGEST_JWT_KEY_SECRET, else the
 * file INGEST_JWT_KEY_FILE.
 */
export function selectKeySource(config: Config, logger: Logger, selection: KeySourceSelection = {}): KeySource {
  const events = keySourceEvents(logger, selection.onReloadFailed);
  if (config.jwt.keySecret !== undefined) {
    return new KubernetesSecretKeySource({
      secretName: config.jwt.keySecret,
      access: kubernetesAccess({ namespace: config.jwt.keySecretNamespace }),
      events,
    });
  }
  return new FileKeySource(config.jwt.keyFile, events);
}
