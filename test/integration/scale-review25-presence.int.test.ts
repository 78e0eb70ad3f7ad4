/**
 * Presence store against a real Redis (review 25).
 *
 * A presence batch whose answer is lost with its connection (Redis ran the script, the socket
 * closed before the reply arrived): ioredis sends unanswered commands again once it reconnects
 * (autoResendUnfulfilledCommands), so the script runs twice. Counted twice, a socket stays
 * counted after it closes (the user online for good, the online never announced); a close counted
 * twice takes a user offline with a socket still open. Real Redis, the production client, and a
 * relay that drops one reply together with the connection.
 *
 * A user who closed on one node and opened on another while the first node's last-seen write was
 * slow: the second node's online reached watchers before the first node's offline, which left
 * them shown offline while connected.
 *
 * A dead node's users are dropped many per script: one round trip per user kept them online for
 * seconds past the documented 15 s on a networked Redis once a node held thousands.
 */
import { createServer, type Server, Socket } from 'node:net';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PresenceState } from '../../protocol/src/frames.js';
import type { UserId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { insertUser } from '../../src/db/repositories/users.repo.js';
import { createPresenceService } from '../../src/domain/presence/service.js';
import { createMemoryBus } from '../../src/platform/bus/bus.js';
import { PRESENCE_BATCH_TOPIC } from '../../src/platform/bus/topics.js';
import { systemClock } from '../../src/platform/clock.js';
import { createLogger } from '../../src/platform/logger.js';
import { createRedisPresenceStore } from '../../src/platform/presence-store.js';
import { closeRedisClient, createRedisClient, type Redis } from '../../src/platform/redis.js';
import {
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';

/** Forwards to Redis; once armed, the next reply is swallowed and the client's connection closed. */
async function startLossyRelay(target: URL) {
  let armed = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = new Socket();
    sockets.add(client).add(upstream);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (!armed) {
        client.write(chunk);
        return;
      }
      armed = false;
      client.destroy();
      upstream.destroy();
    });
    for (const socket of [client, upstream]) {
      socket.on('error', () => undefined);
      socket.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.connect(Number(target.port), target.hostname);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('relay: no address');
  return {
    url: `redis://127.0.0.1:${address.port}`,
    loseNextReply: () => {
      armed = true;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('presence batches whose reply was lost with the connection', () => {
  let relay: Awaited<ReturnType<typeof startLossyRelay>>;
  let redis: Redis;
  const log = createLogger({ level: 'silent', pretty: false });

  beforeAll(async () => {
    relay = await startLossyRelay(new URL(sharedRedisUrl()));
    redis = createRedisClient({ endpoint: relay.url, name: 'review25', log, commandTimeoutMs: 5_000 });
    await redis.ping();
  });
  afterAll(async () => {
    await closeRedisClient(redis);
    await relay.close();
  });

  it('counts each change once when ioredis resends it after reconnecting', async () => {
    const store = createRedisPresenceStore({
      redis,
      prefix: uniqueRedisPrefix(),
      nodeId: 'n1',
      leaseMs: 10_000,
    });
    // Loads the script into Redis's cache, so the batch below runs at its first EVALSHA.
    expect(await store.apply([{ userId: 'warm', delta: 1 }])).toEqual(['online']);

    relay.loseNextReply();
    expect(await store.apply([{ userId: 'u1', delta: 1 }])).toEqual(['online']);
    expect(await store.apply([{ userId: 'u1', delta: -1 }])).toEqual(['offline']);
    expect(await store.isOnline(['u1'])).toEqual([false]);

    // Two sockets; one closes with its reply lost: still online.
    await store.apply([
      { userId: 'u2', delta: 1 },
      { userId: 'u2', delta: 1 },
    ]);
    relay.loseNextReply();
    expect(await store.apply([{ userId: 'u2', delta: -1 }])).toEqual([null]);
    expect(await store.isOnline(['u2'])).toEqual([true]);
  });

  it('reaps a dead node in a few scripts, not one round trip per user', async () => {
    const prefix = uniqueRedisPrefix();
    const dead = createRedisPresenceStore({ redis, prefix, nodeId: 'dead', leaseMs: 10_000 });
    const users = Array.from({ length: 400 }, (_, i) => `r${i}`);
    await dead.renewLease();
    await dead.apply(users.map((userId) => ({ userId, delta: 1 as const })));
    await dead.expireLease();
    let scripts = 0;
    const counted = new Proxy(redis, {
      get(target, property) {
        const value = Reflect.get(target, property, target) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (property === 'eval' || property === 'evalsha') scripts += 1;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const reaper = createRedisPresenceStore({ redis: counted, prefix, nodeId: 'live', leaseMs: 10_000 });
    expect((await reaper.reapDeadNodes()).sort()).toEqual([...users].sort());
    expect(await reaper.isOnline(users)).toEqual(users.map(() => false));
    // One to list the lapsed leases, at most one per presence group (16) to drop the node.
    expect(scripts).toBeLessThanOrEqual(17);
  });
});

describe('an offline overtaken by a reconnect to another node', () => {
  let database: TestDatabase;
  let handle: DbHandle;
  let redis: Redis;
  const log = createLogger({ level: 'silent', pretty: false });

  beforeAll(async () => {
    database = await createMigratedDatabase();
    handle = await createDb({ kind: 'postgres', url: database.url, poolMax: 3 }, log);
    redis = createRedisClient({ endpoint: sharedRedisUrl(), name: 'review25-race', log });
  });
  afterAll(async () => {
    await closeRedisClient(redis);
    await handle.close();
    await database.drop();
  });

  it('leaves watchers with the user online', async () => {
    const prefix = uniqueRedisPrefix();
    const bus = createMemoryBus();
    const told: PresenceState[] = [];
    await bus.subscribe(PRESENCE_BATCH_TOPIC, ({ states }) => told.push(...states));
    const node = (nodeId: string) => {
      const store = createRedisPresenceStore({ redis, prefix, nodeId, leaseMs: 10_000 });
      return { store, presence: createPresenceService({ db: handle.db, store, bus, clock: systemClock }) };
    };
    const [a, b] = [node('node-a'), node('node-b')];
    const user = (
      await insertUser(handle.db, {
        username: 'review25_race',
        email: 'review25_race@example.com',
        passwordHash: 'x',
        roles: [],
      })
    ).id as UserId;
    await a.presence.connected(user);
    await a.presence.disconnected(user); // its last-seen row exists from now on
    await a.presence.connected(user);

    // The last-seen write of the next close waits for this lock (a busy database).
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let locked: () => void = () => undefined;
    const isLocked = new Promise<void>((resolve) => {
      locked = resolve;
    });
    const lock = handle.db.transaction().execute(async (trx) => {
      await sql`select 1 from user_last_seen where user_id = ${user} for update`.execute(trx);
      locked();
      await held;
    });
    await isLocked;
    const closing = a.presence.disconnected(user);
    for (let i = 0; i < 200 && (await a.store.isOnline([user]))[0]; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await b.presence.connected(user); // reconnected to node b: announced online at once
    release();
    await lock;
    await closing;
    await new Promise((resolve) => setImmediate(resolve));
    expect(told.map((state) => state.status).at(-1)).toBe('online');
    expect(await b.store.isOnline([user])).toEqual([true]);
  });
});
