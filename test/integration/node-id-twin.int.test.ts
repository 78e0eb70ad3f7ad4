/**
 * Two live processes under one NODE_ID would wipe each other's presence counts and both host the
 * rooms placement gives that node. A gateway that finds its NODE_ID's lease renewed by someone else
 * refuses to start, before it clears anything; one that finds the lease of a crashed earlier life
 * (never renewed again) starts after one renewal interval.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { createRedisPresenceStore } from '../../src/platform/presence-store.js';
import { runShutdown } from '../../src/platform/shutdown.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  testConfig,
  uniqueRedisPrefix,
} from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

const LEASE_MS = 1_500;

describe('one live process per NODE_ID', () => {
  let db: TestDatabase;
  let redis: Redis;
  const prefix = uniqueRedisPrefix();
  const logs = captureLogs();
  const nodes: RunningNode[] = [];
  const sockets: TestSocket[] = [];
  const env = (nodeId: string) =>
    testConfig({
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: prefix,
      NODE_ID: nodeId,
      PRESENCE_LEASE_MS: String(LEASE_MS),
    });

  beforeAll(async () => {
    db = await createMigratedDatabase();
    redis = new Redis(sharedRedisUrl());
  }, 60_000);

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    for (const node of nodes.reverse())
      await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    redis?.disconnect();
    await db?.drop();
  });

  it('refuses a second live process under the same NODE_ID and leaves the first one counted', async () => {
    const first = await startNode(env('twin'), logs.log, { pid: process.pid });
    nodes.push(first);
    const user = await registerUser(httpClient(first.baseUrl));
    const socket = await openSocket(first.uwsUrl ?? '', user.accessToken, 'json');
    sockets.push(socket);
    const store = createRedisPresenceStore({ redis, prefix, nodeId: 'observer', leaseMs: LEASE_MS });
    await expect.poll(async () => (await store.isOnline([user.id]))[0]).toBe(true);

    await expect(startNode(env('twin'), logs.log, { pid: process.pid })).rejects.toThrow(
      /NODE_ID "twin" is in use: another live process renews its presence lease/,
    );
    // The refused process cleared nothing: the first node's socket still counts.
    expect((await store.isOnline([user.id]))[0]).toBe(true);
  }, 60_000);

  it("starts over a crashed earlier life's lease, which nobody renews", async () => {
    const earlierLife = createRedisPresenceStore({ redis, prefix, nodeId: 'phoenix', leaseMs: 60_000 });
    await earlierLife.renewLease();
    const node = await startNode(env('phoenix'), logs.log, { pid: process.pid });
    nodes.push(node);
    expect(node.uwsUrl).toBeDefined();
  }, 60_000);
});
