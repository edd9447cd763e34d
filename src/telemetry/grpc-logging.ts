import { format } from 'node:util';
import { logVerbosity, setLogger, setLogVerbosity } from '@grpc/grpc-js';
import type { Logger } from './logger.ts';

/** grpc-js verbosity matching a pino level: its DEBUG lines only when we log debug, its INFO lines only at info. */
export function grpcVerbosityFor(level: string): logVerbosity {
  switch (level) {
    case 'trace':
    case 'debug':
      return logVerbosity.DEBUG;
    case 'info':
      return logVerbosity.INFO;
    case 'silent':
      return logVerbosity.NONE;
    default:
      return logVerbosity.ERROR;
  }
}

/**
 * Routes grpc-js's own log output (process-wide) into our JSON logger. An explicit GRPC_VERBOSITY /
 * GRPC_NODE_VERBOSITY (grpc-js's own knob, read when it loads) is left in charge of the verbosity.
 */
export function routeGrpcLogs(logger: Logger, env: NodeJS.ProcessEnv = process.env): void {
  const grpcLogger = logger.child({ module: 'grpc-js' });
  setLogger({
    error: (...args: unknown[]) => grpcLogger.error(format(...args)),
    info: (...args: unknown[]) => grpcLogger.info(format(...args)),
    debug: (...args: unknown[]) => grpcLogger.debug(format(...args)),
  });
  if ((env['GRPC_VERBOSITY'] ?? env['GRPC_NODE_VERBOSITY'] ?? '') === '') setLogVerbosity(grpcVerbosityFor(logger.level));
}
