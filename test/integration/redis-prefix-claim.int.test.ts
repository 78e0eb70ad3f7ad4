/**
 * REDIS_PREFIX belongs to one installation: a second deployment (another database) started against
 * the same Redis and prefix refuses to start with a line that says what to do, instead of sharing
 * presence, bus channels and task queues with the first. Real PostgreSQL and Redis.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { runShutdown } from '../../src/platform/shutdown.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  testConfig,
  uniqueRedisPrefix,
} from '../support/context.js';

describe('REDIS_PREFIX claim', () => {
  const logs = captureLogs();
  const databases: TestDatabase[] = [];
  const nodes: RunningNode[] = [];
  afterAll(async () => {
    for (const node of nodes) await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    for (const database of databases) await database.drop();
  });

  it('lets nodes of one installation share a prefix and refuses another installation', async () => {
    const prefix = uniqueRedisPrefix();
    const first = await createMigratedDatabase();
    const second = await createMigratedDatabase();
    databases.push(first, second);
    const env = (url: string, nodeId: string) =>
      testConfig({ DATABASE_URL: url, REDIS_URL: sharedRedisUrl(), REDIS_PREFIX: prefix, NODE_ID: nodeId });
    nodes.push(await startNode(env(first.url, 'claim-a'), logs.log, { pid: process.pid }));
    // Another process of the same installation (same database): welcome.
    nodes.push(await startNode(env(first.url, 'claim-b'), logs.log, { pid: process.pid }));
    // Another deployment that forgot its own prefix: refused, and the message says what to do.
    await expect(startNode(env(second.url, 'claim-c'), logs.log, { pid: process.pid })).rejects.toThrow(
      /REDIS_PREFIX .* belongs to another installation/,
    );
    // With a prefix of its own it starts.
    nodes.push(
      await startNode(
        testConfig({
          DATABASE_URL: second.url,
          REDIS_URL: sharedRedisUrl(),
          REDIS_PREFIX: uniqueRedisPrefix(),
          NODE_ID: 'claim-d',
        }),
        logs.log,
        { pid: process.pid },
      ),
    );
  }, 60_000);
});
