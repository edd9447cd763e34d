import type { Config } from '../config/config.ts';
import type { Logger } from '../telemetry/logger.ts';
import { FileKeySource } from './file-key-source.ts';
import type { KeySource, KeySourceEvents } from './key-source.ts';

export function keySourceEvents(logger: Logger): KeySourceEvents {
  return {
    keyGenerated: (location) =>
      logger.warn({ location }, 'generated a new JWT signing key; back it up: losing it invalidates every agent JWT and forces all agents to re-register'),
    reloadFailed: (error) => logger.error({ err: { message: (error as Error).message } }, 'signing key reload failed; keeping the keys in force'),
  };
}

/** Exactly one key source applies (SPEC §8.1). */
export function selectKeySource(config: Config, logger: Logger): KeySource {
  return new FileKeySource(config.jwt.keyFile, keySourceEvents(logger));
}
