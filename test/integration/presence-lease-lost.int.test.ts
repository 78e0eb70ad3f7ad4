/**
 * A node whose presence lease lapsed (a long GC pause, Redis unreachable for longer than the lease)
 * has its counts reaped by another node: its users with open sockets are shown offline. End to end
 * on two real nodes and Redis: the lapsed node's next renewal finds the lease gone, counts its own
 * sockets again and announces them online, so a watcher elsewhere sees the user come back without
 * the user reconnecting.
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
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { openSocket, type TestSocket, type WireFrame } from '../support/ws-client.js';

const LEASE_MS = 1_500;

const presenceOf = (userId: string, status: 'online' | 'offline') => (frame: WireFrame) =>
  frame.t === 'presence' &&
  (frame.d as { userId: string }).userId === userId &&
  (frame.d as { status: string }).status === status;

describe('presence after a lapsed lease', () => {
  let db: TestDatabase;
  let nodeA: RunningNode;
  let nodeB: RunningNode;
  let redis: Redis;
  const prefix = uniqueRedisPrefix();
  const logs = captureLogs();
  const sockets: TestSocket[] = [];
  let watcherUser: Registered;
  let user: Registered;

  beforeAll(async () => {
    db = await createMigratedDatabase();
    const env = (nodeId: string) =>
      testConfig({
        DATABASE_URL: db.url,
        REDIS_URL: sharedRedisUrl(),
        REDIS_PREFIX: prefix,
        NODE_ID: nodeId,
        PRESENCE_LEASE_MS: String(LEASE_MS),
      });
    nodeA = await startNode(env('lease-a'), logs.log, { pid: process.pid });
    nodeB = await startNode(env('lease-b'), logs.log, { pid: process.pid });
    redis = new Redis(sharedRedisUrl());
    const api = httpClient(nodeA.baseUrl);
    watcherUser = await registerUser(api);
    user = await registerUser(api);
    await api.post(`/v1/me/contacts/${user.id}`, undefined, watcherUser.accessToken);
    await api.post(`/v1/me/contacts/${watcherUser.id}`, undefined, user.accessToken);
  }, 60_000);

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    for (const node of [nodeB, nodeA])
      if (node !== undefined) await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    redis?.disconnect();
    await db?.drop();
  });

  it('counts the open sockets of a reaped node again and announces them online', async () => {
    const watcher = await openSocket(nodeB.uwsUrl ?? '', watcherUser.accessToken, 'json');
    sockets.push(watcher);
    expect((await watcher.request('presence.subscribe', { userIds: [user.id] })).t).toBe('ok');
    const socket = await openSocket(nodeA.uwsUrl ?? '', user.accessToken, 'json');
    sockets.push(socket);
    await watcher.next(presenceOf(user.id, 'online'));

    // What a reaper does to a node whose lease lapsed (a pause longer than the lease): its counts
    // go, then its lease. (In this order a renewal between the two still finds the lease gone.)
    const reaper = createRedisPresenceStore({ redis, prefix, nodeId: 'lease-reaper', leaseMs: LEASE_MS });
    const before = watcher.frames.length;
    expect(await reaper.clearNode('lease-a')).toContain(user.id);
    await redis.zrem(`${prefix}:presence:leases`, 'lease-a');

    // A's next renewal (every lease / 3) finds the lease gone, counts its socket again and
    // announces the user online anew.
    await watcher.next(
      (frame) => watcher.frames.indexOf(frame) >= before && presenceOf(user.id, 'online')(frame),
      10_000,
    );
    expect(await reaper.isOnline([user.id])).toEqual([true]);
    expect(logs.lines().some((line) => String(line.msg).includes('presence lease had lapsed'))).toBe(true);

    // The recount holds the real socket: closing it is the user's last one, announced once.
    socket.close();
    await watcher.next(presenceOf(user.id, 'offline'));
    expect(await reaper.isOnline([user.id])).toEqual([false]);
  }, 30_000);
});
