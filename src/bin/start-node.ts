/**
 * Composition root of one gigwire process: wires the concrete parts for the configured role, listens,
 * and returns the ordered shutdown steps. Only bin/ listens and handles signals (ARCHITECTURE.md §3.10).
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';
import { createDb, type DbHandle } from '../db/create-db.js';
import { migrateToLatest } from '../db/migrate.js';
import { ensureInstallation } from '../db/repositories/installation.repo.js';
import { buildApp } from '../http/app.js';
import { lockDataDir } from '../platform/data-dir-lock.js';
import type { Logger } from '../platform/logger.js';
import { type ManagedRedis, startManagedRedis } from '../platform/managed-redis.js';
import { createMetricsRegistry } from '../platform/metrics.js';
import { closeRedisClient, createRedisClient, type Redis } from '../platform/redis.js';
import type { ShutdownStep } from '../platform/shutdown.js';
import { ensureProgram } from '../platform/system-packages.js';

export interface RunningNode {
  readonly app: FastifyInstance;
  /** Base URL of the HTTP server, e.g. http://127.0.0.1:3000. */
  readonly baseUrl: string;
  /** In the order they must run. */
  readonly shutdownSteps: readonly ShutdownStep[];
}

export interface StartNodeOptions {
  readonly pid: number;
}

/**
 * Starts everything this process runs. On failure, what was already started is stopped before the
 * error propagates, so a failed start leaves no child process behind.
 */
export async function startNode(
  config: Config,
  log: Logger,
  options: StartNodeOptions,
): Promise<RunningNode> {
  // Each part pushes its closer as it starts; shutdown runs them newest first, which is the order of
  // ARCHITECTURE.md §3.10: stop accepting → quit Redis clients → close the database → stop the
  // managed redis-server → release DATA_DIR. A failed start runs the same list.
  const started: ShutdownStep[] = [];
  const shutdownSteps = () => [...started].reverse();
  let draining = false;
  try {
    if (config.databaseUrl === undefined || config.redisUrl === undefined) {
      const release = lockDataDir(config.dataDir, options.pid);
      started.push({ name: 'release data directory', run: async () => release() });
    }

    let managedRedis: ManagedRedis | undefined;
    if (config.redisUrl === undefined) {
      const redisServerPath = await ensureProgram(
        { command: 'redis-server', debianPackage: 'redis-server', alternative: 'or set REDIS_URL' },
        {
          install: config.installSystemPackages,
          searchPath: config.searchPath,
          onInstall: (pkg) => log.info({ package: pkg }, 'installing a missing system package with apt-get'),
        },
      );
      const managed = await startManagedRedis({ redisServerPath, dir: join(config.dataDir, 'redis'), log });
      managedRedis = managed;
      started.push({ name: 'stop managed redis-server', run: () => managed.stop() });
    }

    const dbHandle: DbHandle = await createDb(
      config.databaseUrl === undefined
        ? { kind: 'pglite', dir: join(config.dataDir, 'pglite') }
        : { kind: 'postgres', url: config.databaseUrl, poolMax: config.dbPoolMax },
      log,
    );
    started.push({ name: 'close database', run: () => dbHandle.close() });

    const redis: Redis = createRedisClient({
      endpoint: config.redisUrl ?? managedRedis?.endpoint ?? '',
      name: 'main',
      log,
    });
    started.push({ name: 'quit redis clients', run: () => closeRedisClient(redis) });

    await migrateToLatest(dbHandle.db, log);
    const installation = await ensureInstallation(dbHandle.db);
    const boots = await redis.incr(`${config.redisPrefix}:boots`);
    const redisKind = managedRedis === undefined ? 'external' : 'managed';
    log.info(
      { installationId: installation.id, boots, database: dbHandle.dialect, redis: redisKind },
      'storage ready',
    );

    const metrics = createMetricsRegistry({
      nodeId: config.nodeId,
      role: config.role,
      collectProcessMetrics: true,
    });
    const app = await buildApp({
      log,
      metrics,
      health: {
        info: () => ({
          nodeId: config.nodeId,
          role: config.role,
          installationId: installation.id,
          boots,
          database: dbHandle.dialect,
          redis: redisKind,
        }),
        checks: {
          postgres: () => dbHandle.ping(config.readyCheckTimeoutMs),
          redis: async () => {
            // A dropped connection fails at once instead of waiting in ioredis' offline queue.
            if (redis.status !== 'ready') throw new Error(`connection ${redis.status}`);
            await redis.ping();
          },
        },
        timeoutMs: config.readyCheckTimeoutMs,
        isDraining: () => draining,
      },
    });
    started.push({
      name: 'stop accepting HTTP',
      run: async () => {
        draining = true;
        await app.close();
      },
    });
    await app.listen({ host: config.host, port: config.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : config.port;
    const shownHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
    return { app, baseUrl: `http://${shownHost}:${port}`, shutdownSteps: shutdownSteps() };
  } catch (error) {
    for (const step of shutdownSteps()) await step.run().catch(() => undefined);
    throw error;
  }
}
