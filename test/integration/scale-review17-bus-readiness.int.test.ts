/**
 * A node whose bus subscriber connection is down while its main Redis connection works (Redis at
 * `maxclients`, so the subscriber's reconnects are refused) hears nothing of the bus: no room
 * pushes from other nodes, no forwarded room requests (every other node finds it gone and moves its
 * rooms, then takes it back at its next lease renewal), no session revocations. It still renewed
 * its lease and answered /health/ready 200, so its load balancer kept sending it clients. Readiness
 * now counts the bus connection as part of Redis. A dedicated redis-server; the node is real.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode, tempDir } from '../support/context.js';
import { untilDefined } from '../support/poll.js';
import { type RedisServer, startRedisServer } from '../support/servers.js';

describe('readiness while the bus subscriber cannot reconnect', () => {
  let redis: RedisServer;
  let admin: Redis;
  let testNode: TestNode;

  beforeAll(async () => {
    redis = await startRedisServer(tempDir('redis-bus-ready'));
    admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    testNode = await startTestNode({ REDIS_URL: redis.url });
  });
  afterAll(async () => {
    await admin.config('SET', 'maxclients', '10000').catch(() => undefined);
    admin.disconnect();
    await testNode.stop();
    await redis.stop();
  });

  const ready = async () => {
    const response = await fetch(`${testNode.node.baseUrl}/health/ready`);
    return {
      status: response.status,
      body: (await response.json()) as { failed?: string[]; detail?: string },
    };
  };

  it('answers 503 naming redis (its bus connection) while the subscriber is down, and 200 again once it is back', async () => {
    expect((await ready()).status).toBe(200);
    const clients = String(await admin.client('LIST'))
      .split('\n')
      .filter((line) => line.trim() !== '');
    const bus = clients.find((line) => / name=gigwire:bus /.test(` ${line} `));
    expect(bus, clients.join('\n')).toBeDefined();
    const id = /\bid=(\d+)/.exec(bus as string)?.[1] as string;
    // Full once the subscriber is gone: its reconnects are refused, the other connections stay.
    await admin.config('SET', 'maxclients', String(clients.length - 1));
    await admin.client('KILL', 'ID', id);

    const refused = await untilDefined(async () => {
      const answer = await ready();
      return answer.status === 503 ? answer : undefined;
    }, 'readiness to fail');
    expect(refused.body).toMatchObject({ failed: ['redis'] });
    expect(refused.body.detail).toMatch(/^redis unavailable: bus connection /);

    await admin.config('SET', 'maxclients', '10000');
    await untilDefined(async () => ((await ready()).status === 200 ? true : undefined), 'readiness back');
  }, 60_000);
});
