/**
 * Two real nodes (`node-a`, `node-b`) in the test process, on one migrated database and a
 * redis-server of the test file's own, for files that break that Redis on purpose (a subscriber
 * kicked, PUBLISH denied). Registers the file's beforeAll/afterAll; `restore` undoes what the file
 * did to Redis before the nodes stop (so their shutdown is not slowed by it).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { runShutdown } from '../../src/platform/shutdown.js';
import {
  captureLogs,
  createMigratedDatabase,
  type LogCapture,
  type TestDatabase,
  tempDir,
  testConfig,
  uniqueRedisPrefix,
} from './context.js';
import { type RedisServer, startRedisServer } from './servers.js';
import type { TestSocket } from './ws-client.js';

export interface TwoNodes {
  readonly db: TestDatabase;
  readonly redis: RedisServer;
  /** A plain client of the file's Redis (ACL, CONFIG, CLIENT KILL). */
  readonly admin: Redis;
  readonly nodes: RunningNode[];
  /** Sockets the file opened: closed before the nodes stop. */
  readonly sockets: TestSocket[];
  readonly logs: LogCapture;
}

export function twoNodesOnOwnRedis(dirName: string, restore?: (admin: Redis) => Promise<unknown>): TwoNodes {
  const nodes: RunningNode[] = [];
  const sockets: TestSocket[] = [];
  const logs = captureLogs();
  const held: { db?: TestDatabase; redis?: RedisServer; admin?: Redis } = {};
  const must = <T>(value: T | undefined, name: string): T => {
    if (value === undefined) throw new Error(`${name} is not started yet (used outside a test?)`);
    return value;
  };

  beforeAll(async () => {
    [held.db, held.redis] = await Promise.all([createMigratedDatabase(), startRedisServer(tempDir(dirName))]);
    held.admin = new Redis(held.redis.url, { maxRetriesPerRequest: 1 });
    const prefix = uniqueRedisPrefix();
    for (const nodeId of ['node-a', 'node-b']) {
      nodes.push(
        await startNode(
          testConfig({
            DATABASE_URL: held.db.url,
            REDIS_URL: held.redis.url,
            REDIS_PREFIX: prefix,
            NODE_ID: nodeId,
          }),
          logs.log,
          { pid: process.pid },
        ),
      );
    }
  }, 30_000);
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    if (held.admin !== undefined) {
      await restore?.(held.admin).catch(() => undefined);
      held.admin.disconnect();
    }
    for (const node of nodes) await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 5_000 });
    await held.redis?.stop();
    await held.db?.drop();
  });

  return {
    get db() {
      return must(held.db, 'the database');
    },
    get redis() {
      return must(held.redis, 'redis-server');
    },
    get admin() {
      return must(held.admin, 'the Redis admin client');
    },
    nodes,
    sockets,
    logs,
  };
}
