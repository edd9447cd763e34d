import { loadConfig, unknownIngestVariables, type Config } from '../config/config.ts';
import { createLogger, type Logger } from '../telemetry/logger.ts';
import { startService, type RunningService } from '../service.ts';
import { serviceComponents } from '../components.ts';

/** Runs the service until SIGTERM/SIGINT, then drains (SPEC §6.5) and exits 0. */
export async function runServe(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadConfig(env);
  const logger = createLogger(config.logLevel);
  const unknown = unknownIngestVariables(env);
  if (unknown.length > 0) logger.warn({ variables: unknown }, 'ignoring unknown INGEST_* variables (typos?); their settings are at their defaults');
  await serveUntilSignalled(config, logger);
}

export async function serveUntilSignalled(config: Config, logger: Logger, onStarted?: (service: RunningService) => Promise<void> | void): Promise<void> {
  installCrashGuards(logger);
  const service = await startService(config, { logger, components: serviceComponents });
  await onStarted?.(service);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'signal received');
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      const hardStop = setTimeout(() => {
        logger.error('shutdown grace exceeded; exiting');
        process.exit(1);
      }, config.shutdownGraceMs + 5_000);
      hardStop.unref();
      service.shutdown().then(resolve, (error: unknown) => {
        logger.error({ err: { message: (error as Error).message } }, 'shutdown failed');
        resolve();
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

let guardsInstalled = false;

/** A stray rejection is logged, never fatal; an uncaught exception leaves unknown state, so it exits. */
export function installCrashGuards(logger: Logger): void {
  if (guardsInstalled) return;
  guardsInstalled = true;
  process.on('unhandledRejection', (reason) => {
    logger.error({ err: { message: reason instanceof Error ? reason.message : String(reason) } }, 'unhandled promise rejection');
  });
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: { message: error.message, stack: error.stack } }, 'uncaught exception; exiting');
    process.exit(1);
  });
}
