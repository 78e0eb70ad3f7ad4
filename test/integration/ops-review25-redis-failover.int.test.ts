/**
 * Review 25: a Redis failover behind one endpoint (a DNS name or proxy that moves to the promoted
 * replica, as managed Redis services and Sentinel-fronted proxies do). The old primary, demoted,
 * keeps the connections it had: a client on one gets READONLY for every write for as long as it
 * stays connected, which ioredis never ends by itself, while PING still answers (readiness green).
 * Logins, presence and task queues failed 503 until the process was restarted. Now a client that
 * meets READONLY connects again, which reaches whatever the endpoint names now.
 */

import { execFile } from 'node:child_process';
import { createServer, type Server, Socket } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRedisClient, createRedisClient, type Redis } from '../../src/platform/redis.js';
import { captureLogs, sharedRedisUrl, tempDir, uniqueRedisPrefix } from '../support/context.js';
import { untilDefined } from '../support/poll.js';
import { freePort, type RedisServer, startRedisServer } from '../support/servers.js';

const run = promisify(execFile);

/** A TCP endpoint whose new connections go to `target` (existing ones stay where they went). */
async function movableEndpoint(target: { port: number }) {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = new Socket();
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    upstream.connect(target.port, '127.0.0.1');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}`,
    moveTo: (port: number) => {
      target.port = port;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('a Redis client across a failover that moved its endpoint', () => {
  let oldPrimary: RedisServer;
  let endpoint: Awaited<ReturnType<typeof movableEndpoint>>;
  let client: Redis;
  const key = `${uniqueRedisPrefix()}:failover`;

  beforeAll(async () => {
    oldPrimary = await startRedisServer(tempDir('review25-redis'));
    endpoint = await movableEndpoint({ port: oldPrimary.port });
    client = createRedisClient({
      endpoint: endpoint.url,
      name: 'main',
      log: captureLogs().log,
      commandTimeoutMs: 2_000,
    });
  });
  afterAll(async () => {
    if (client !== undefined) await closeRedisClient(client);
    await endpoint?.close();
    await oldPrimary?.stop();
  });

  it('writes to the new primary once the old one refuses them READONLY', async () => {
    expect(await client.set(key, 'before')).toBe('OK');
    // The failover: the old primary turns replica, the endpoint now names the new primary.
    await run('redis-cli', [
      '-p',
      String(oldPrimary.port),
      'replicaof',
      '127.0.0.1',
      String(await freePort()),
    ]);
    endpoint.moveTo(Number(new URL(sharedRedisUrl()).port));

    // Before: every write kept failing READONLY on the old connection.
    await untilDefined(
      () =>
        client.set(key, 'after').then(
          (ok) => ok,
          () => undefined,
        ),
      'a write accepted by the new primary',
      5_000,
    );
    expect(await client.get(key)).toBe('after');
    await client.del(key);
  });
});
