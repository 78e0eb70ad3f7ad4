/**
 * /health/ready follows its dependencies: a Redis that dies turns it 503 naming redis within 5 s, and
 * the same process turns 200 again once Redis is back, with no restart. The app runs in-process on
 * the real composition (startNode) against its own redis-server and a database of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { runShutdown } from '../../src/platform/shutdown.js';
import {
  captureLogs,
  createMigratedDatabase,
  type TestDatabase,
  tempDir,
  testConfig,
  uniqueRedisPrefix,
} from '../support/context.js';
import { type RedisServer, startRedisServer } from '../support/servers.js';
import { pollHttp } from '../support/spawn.js';

describe('readiness', () => {
  let redis: RedisServer;
  let db: TestDatabase;
  let node: RunningNode;
  const logs = captureLogs();

  beforeAll(async () => {
    redis = await startRedisServer(tempDir('redis'));
    db = await createMigratedDatabase();
    const config = testConfig({
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      REDIS_PREFIX: uniqueRedisPrefix(),
    });
    node = await startNode(config, logs.log, { pid: process.pid });
  });
  afterAll(async () => {
    await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 5_000 });
    await redis.stop();
  });

  it('answers 503 naming redis within 5 s of Redis dying, and 200 again once it is back', async () => {
    const ready = `${node.baseUrl}/health/ready`;
    expect((await fetch(ready)).status).toBe(200);

    await redis.kill();
    const down = await pollHttp(ready, (s) => s === 503, 5_000);
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({
      type: 'urn:gigwire:problem:UNAVAILABLE',
      status: 503,
      code: 'UNAVAILABLE',
      failed: ['redis'],
      checks: { postgres: { status: 'ok' }, redis: { status: 'failed' } },
    });
    expect((down.body as { detail: string }).detail).toMatch(/^redis unavailable: /);
    expect((await fetch(`${node.baseUrl}/health/live`)).status).toBe(200);

    await redis.restart();
    const up = await pollHttp(ready, (s) => s === 200, 10_000);
    expect(up.status).toBe(200);
    expect(up.body).toMatchObject({ status: 'ready' });
  });

  it('answers 503 naming postgres when its database disappears', async () => {
    await db.drop();
    const down = await pollHttp(`${node.baseUrl}/health/ready`, (s) => s === 503, 5_000);
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ failed: ['postgres'], checks: { redis: { status: 'ok' } } });
    expect((down.body as { detail: string }).detail).toMatch(/^postgres unavailable: /);
  });
});
