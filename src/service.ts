import type { Server as HttpServer } from 'node:http';
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Config } from './config/config.ts';
import type { Logger } from './telemetry/logger.ts';
import { createMetrics, type Metrics } from './telemetry/metrics.ts';
import { systemClock, type Clock } from './clock.ts';
import { createPool, databaseAnswers, type Pool } from './db/pool.ts';
import { migrate } from './db/migrate.ts';
import { KeyRing } from './keys/key-ring.ts';
import { AgentTokens } from './keys/jwt.ts';
import { selectKeySource } from './keys/select-key-source.ts';
import type { KeySource } from './keys/key-source.ts';
import { IngestGrpcServer } from './grpc/server.ts';
import { grpcServerTelemetry } from './telemetry/grpc-interceptor.ts';
import { routeGrpcLogs } from './telemetry/grpc-logging.ts';
import { createHttpServer, type Readiness } from './http/http-server.ts';
import { listenOn } from './listen.ts';

/** Everything a request handler may need; built once by `startService`. */
export interface ServiceContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly pool: Pool;
  readonly keys: KeyRing;
  readonly keySource: KeySource;
  readonly agentTokens: AgentTokens;
  readonly grpc: IngestGrpcServer;
}

/** A part of the service with its own handlers, background work and shutdown (registration, heartbeats, ...). */
export interface ServiceComponent {
  readonly handlers?: UntypedServiceImplementation;
  /** Extra readiness problems (e.g. "database writes failing"). */
  readinessProblems?(): string[];
  start?(): Promise<void> | void;
  /** Finish in-flight work and end streams; called after the gRPC server stopped accepting. */
  drain?(deadlineMs: number): Promise<void>;
  stop?(): Promise<void> | void;
}

export type ComponentFactory = (context: ServiceContext) => ServiceComponent;

export interface RunningService {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly context: ServiceContext;
  readiness(): Promise<Readiness>;
  /** Graceful shutdown (SPEC §6.5): not ready, GOAWAY, drain, close. Resolves when everything is closed. */
  shutdown(): Promise<void>;
}

export interface StartOptions {
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly metrics?: Metrics;
  readonly components?: readonly ComponentFactory[];
}

export async function startService(config: Config, options: StartOptions): Promise<RunningService> {
  const { logger } = options;
  routeGrpcLogs(logger);
  const clock = options.clock ?? systemClock;
  const metrics = options.metrics ?? createMetrics();
  const pool = createPool(config.databaseUrl, { max: config.db.poolMax, statementTimeoutMs: config.db.statementTimeoutMs }, logger.child({ module: 'db' }));
  const closers: Array<() => Promise<void> | void> = [() => pool.end()];
  try {
    if (config.migrate) {
      const applied = await migrate(pool);
      logger.info({ applied }, applied.length > 0 ? 'database migrations applied' : 'database schema up to date');
    }
    const keySource = selectKeySource(config, logger.child({ module: 'keys' }), { onReloadFailed: () => metrics.keyReloads.inc({ result: 'failure' }) });
    const keys = new KeyRing(await keySource.load());
    metrics.keyReloads.inc({ result: 'success' });
    logger.info({ source: keySource.description, kids: keys.verificationKeys().map((k) => k.kid) }, 'signing keys loaded');
    const stopWatchingKeys = keySource.watch(config.tls.reloadIntervalMs, (next) => {
      keys.replace(next);
      metrics.keyReloads.inc({ result: 'success' });
      logger.info({ kids: keys.verificationKeys().map((k) => k.kid) }, 'signing keys reloaded');
    });
    closers.push(stopWatchingKeys);
    const agentTokens = new AgentTokens(keys, { issuer: config.jwt.issuer, ttlSeconds: config.jwt.ttlSeconds, clock });

    const handlers: UntypedServiceImplementation = {};
    const components: ServiceComponent[] = [];
    const grpc = new IngestGrpcServer({ config, logger: logger.child({ module: 'grpc' }), interceptors: [grpcServerTelemetry(metrics, logger)] });
    const context: ServiceContext = { config, logger, metrics, clock, pool, keys, keySource, agentTokens, grpc };
    for (const factory of options.components ?? []) {
      const component = factory(context);
      Object.assign(handlers, component.handlers ?? {});
      components.push(component);
    }
    await grpc.prepare(handlers);

    let draining = false;
    const readiness = async (): Promise<Readiness> => {
      const reasons: string[] = [];
      if (draining) reasons.push('draining');
      if (!keys.loaded) reasons.push('signing keys not loaded');
      if (!(await databaseAnswers(pool))) reasons.push('database unreachable');
      for (const component of components) reasons.push(...(component.readinessProblems?.() ?? []));
      metrics.ready.set(reasons.length === 0 ? 1 : 0);
      return { ready: reasons.length === 0, reasons };
    };
    const http: HttpServer = createHttpServer(
      {
        readiness,
        jwks: () => keys.jwks(),
        metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
      },
      { requestTimeoutMs: config.httpRequestTimeoutMs, logger: logger.child({ module: 'http' }) },
    );

    for (const component of components) await component.start?.();
    closers.push(async () => {
      for (const component of components) await component.stop?.();
    });
    const grpcPort = await grpc.listen();
    closers.push(() => grpc.forceShutdown());
    const httpPort = await listenOn(http, config.httpPort, config.bindAddress);
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeAllConnections();
        }),
    );
    metrics.ready.set(1);
    logger.info({ grpcPort, httpPort }, 'ct-ops ingest serving');

    let shuttingDown: Promise<void> | undefined;
    const shutdown = (): Promise<void> => {
      shuttingDown ??= (async () => {
        draining = true;
        metrics.ready.set(0);
        const deadlineMs = Date.now() + config.shutdownGraceMs;
        logger.info({ graceMs: config.shutdownGraceMs }, 'shutting down: draining connections');
        await grpc.beginDrain(Math.max(config.shutdownGraceMs - 1_000, 0));
        for (const component of components) await component.drain?.(deadlineMs);
        await closeAll(closers, logger);
        logger.info('shutdown complete');
      })();
      return shuttingDown;
    };
    return { grpcPort, httpPort, context, readiness, shutdown };
  } catch (error) {
    await closeAll(closers, logger);
    throw error;
  }
}

async function closeAll(closers: Array<() => Promise<void> | void>, logger: Logger): Promise<void> {
  for (const close of closers.reverse()) {
    try {
      await close();
    } catch (error) {
      logger.warn({ err: { message: (error as Error).message } }, 'error while closing');
    }
  }
  closers.length = 0;
}
