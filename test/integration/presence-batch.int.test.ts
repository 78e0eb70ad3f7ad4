/**
 * What per-batch presence (src/domain/presence/service.ts, presence-store.ts `apply`) could break,
 * on two real nodes sharing Postgres and Redis:
 * - sockets of many users opened at once (their upgrades and presence changes share batches)
 *   each get their own user, and each user is announced online exactly once, to a watcher on the
 *   other node;
 * - a user with a socket on each node stays online when one closes, and goes offline (announced
 *   once) when the last one does;
 * - sockets closed at once are each announced offline exactly once, and a fresh snapshot agrees;
 * - the store answers each change of one `apply` call in order, also several of one user.
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

const USERS = 12;

interface PresenceFrame {
  readonly userId: string;
  readonly status: 'online' | 'offline';
}

const presenceFrames = (socket: TestSocket) =>
  socket.frames.filter((f) => f.t === 'presence').map((f) => f.d as PresenceFrame);
const countOf = (socket: TestSocket, userId: string, status: PresenceFrame['status']) =>
  presenceFrames(socket).filter((p) => p.userId === userId && p.status === status).length;
const isPresence = (userId: string, status: PresenceFrame['status']) => (f: WireFrame) =>
  f.t === 'presence' && (f.d as PresenceFrame).userId === userId && (f.d as PresenceFrame).status === status;

describe('presence counted and announced per batch', () => {
  let db: TestDatabase;
  let nodeA: RunningNode;
  let nodeB: RunningNode;
  const prefix = uniqueRedisPrefix();
  const logs = captureLogs();
  const sockets: TestSocket[] = [];
  let watcherUser: Registered;
  let users: Registered[];
  let watcher: TestSocket;

  beforeAll(async () => {
    db = await createMigratedDatabase();
    const env = (nodeId: string) =>
      testConfig({
        DATABASE_URL: db.url,
        REDIS_URL: sharedRedisUrl(),
        REDIS_PREFIX: prefix,
        NODE_ID: nodeId,
        RATE_LIMIT_PER_MINUTE: '100000',
      });
    nodeA = await startNode(env('node-a'), logs.log, { pid: process.pid });
    nodeB = await startNode(env('node-b'), logs.log, { pid: process.pid });
    const api = httpClient(nodeA.baseUrl);
    watcherUser = await registerUser(api);
    users = await Promise.all(Array.from({ length: USERS }, () => registerUser(api)));
    // Presence is for mutual contacts: each adds the other.
    await Promise.all(
      users.flatMap((user) => [
        api.post(`/v1/me/contacts/${user.id}`, undefined, watcherUser.accessToken),
        api.post(`/v1/me/contacts/${watcherUser.id}`, undefined, user.accessToken),
      ]),
    );
    watcher = await openSocket(nodeB.uwsUrl ?? '', watcherUser.accessToken, 'json');
    sockets.push(watcher);
  }, 60_000);
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    for (const node of [nodeA, nodeB])
      await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    await db.drop();
  });

  /** Each user's status as a new subscription on node A reads it (Redis counts, not announcements). */
  const snapshot = async () => {
    const reader = await openSocket(nodeA.uwsUrl ?? '', watcherUser.accessToken, 'msgpack');
    sockets.push(reader);
    const reply = await reader.request('presence.subscribe', { userIds: users.map((u) => u.id) });
    reader.close();
    expect(reply.t).toBe('ok');
    const states = (reply.d as { presence: PresenceFrame[] }).presence;
    return new Map(states.map((s) => [s.userId, s.status]));
  };

  it('opens many users at once: each socket its own user, each user announced online once', async () => {
    const subscribed = await watcher.request('presence.subscribe', { userIds: users.map((u) => u.id) });
    expect(subscribed.t).toBe('ok');
    expect([...(await snapshot()).values()].every((status) => status === 'offline')).toBe(true);

    // All at once: the upgrades, session checks and presence changes share batches.
    const opened = await Promise.all(
      users.map((user, i) =>
        openSocket(nodeA.uwsUrl ?? '', user.accessToken, i % 2 === 0 ? 'json' : 'msgpack'),
      ),
    );
    sockets.push(...opened);
    for (const [i, socket] of opened.entries()) {
      const hello = await socket.next((f) => f.t === 'hello');
      expect((hello.d as { userId: string }).userId).toBe(users[i]?.id);
    }
    for (const user of users) await watcher.next(isPresence(user.id, 'online'), 10_000);
    // A later transition on the same node is announced after every earlier one (batches in order),
    // so by the time it arrives no duplicate online can still be on its way.
    const [first] = opened;
    const [firstUser] = users;
    if (first === undefined || firstUser === undefined) throw new Error('no users');
    const second = await openSocket(nodeB.uwsUrl ?? '', firstUser.accessToken, 'json');
    sockets.push(second);
    await second.next((f) => f.t === 'hello');
    for (const user of users) expect(countOf(watcher, user.id, 'online')).toBe(1);
    expect([...(await snapshot()).values()].every((status) => status === 'online')).toBe(true);

    // The first user has a socket on each node: closing the one on A keeps them online.
    first.close();
    await first.closed;
    const [, other, ...rest] = opened;
    const [, otherUser, ...restUsers] = users;
    if (other === undefined || otherUser === undefined) throw new Error('no users');
    other.close();
    await watcher.next(isPresence(otherUser.id, 'offline'), 10_000);
    // Node A announces in order: an offline of the first user would have come before this one.
    expect(countOf(watcher, firstUser.id, 'offline')).toBe(0);
    expect((await snapshot()).get(firstUser.id)).toBe('online');

    // The rest close at once: each announced offline exactly once.
    for (const socket of rest) socket.close();
    for (const user of restUsers) await watcher.next(isPresence(user.id, 'offline'), 10_000);
    // The first user's last socket (on B) closes: offline, announced once.
    second.close();
    await watcher.next(isPresence(firstUser.id, 'offline'), 10_000);
    for (const user of users) expect(countOf(watcher, user.id, 'offline')).toBe(1);
    expect([...(await snapshot()).values()].every((status) => status === 'offline')).toBe(true);
  }, 60_000);

  it('answers each change of one apply call in order, several of one user included', async () => {
    const redis = new Redis(sharedRedisUrl());
    try {
      const storePrefix = uniqueRedisPrefix();
      const onNode = (nodeId: string) =>
        createRedisPresenceStore({ redis, prefix: storePrefix, nodeId, leaseMs: 10_000 });
      const [x, y, z] = ['user-x', 'user-y', 'user-z'];
      const nodeOne = onNode('one');
      const nodeTwo = onNode('two');
      expect(
        await nodeOne.apply([
          { userId: x, delta: 1 },
          { userId: y, delta: 1 },
          { userId: x, delta: 1 },
          { userId: x, delta: -1 },
          { userId: z, delta: 1 },
          { userId: z, delta: -1 },
          { userId: z, delta: 1 },
        ]),
      ).toEqual(['online', 'online', null, null, 'online', 'offline', 'online']);
      // Another node's sockets count too: the user goes offline only when the last one anywhere closes.
      expect(await nodeTwo.apply([{ userId: y, delta: 1 }])).toEqual([null]);
      expect(
        await nodeOne.apply([
          { userId: y, delta: -1 },
          { userId: x, delta: -1 },
        ]),
      ).toEqual([null, 'offline']);
      expect(await nodeTwo.apply([{ userId: y, delta: -1 }])).toEqual(['offline']);
      // A close without a counted socket changes nothing.
      expect(await nodeTwo.apply([{ userId: y, delta: -1 }])).toEqual([null]);
      expect(await nodeOne.isOnline([x, y, z])).toEqual([false, false, true]);
      expect(await nodeOne.clearNode()).toEqual([z]);
    } finally {
      redis.disconnect();
    }
  });
});
