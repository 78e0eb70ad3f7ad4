/**
 * Redis holds a running count of each node's sockets per user, so a lost batch of changes would
 * leave it wrong for good: a user shown online with no socket left, or offline with one open. What
 * must hold, on real Redis and PostgreSQL (the store is wrapped only to make Redis refuse one
 * chosen batch, as when it restarts or a command times out):
 * - after a failed batch the node's counts are set again from its own sockets, and the user whose
 *   close was lost is announced offline and shown offline;
 * - after a reaper removed the counts of a node whose lease had lapsed, the renewal says so and the
 *   node's users with open sockets are counted (and announced online) again;
 * - a last-seen time whose write failed is written later, never lost.
 */
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PresenceState } from '../../protocol/src/frames.js';
import type { UserId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import type { Database } from '../../src/db/database.js';
import { insertUser, lastSeenOf } from '../../src/db/repositories/users.repo.js';
import { createPresenceService } from '../../src/domain/presence/service.js';
import { createSocketPresence } from '../../src/gateway/node-presence.js';
import { createMemoryBus } from '../../src/platform/bus/bus.js';
import { PRESENCE_BATCH_TOPIC } from '../../src/platform/bus/topics.js';
import { systemClock } from '../../src/platform/clock.js';
import { createLogger } from '../../src/platform/logger.js';
import { createRedisPresenceStore, type PresenceStore } from '../../src/platform/presence-store.js';
import { closeRedisClient, createRedisClient, type Redis } from '../../src/platform/redis.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';

const silent = createLogger({ level: 'silent', pretty: false });
const newUser = async (db: Kysely<Database>, name: string) =>
  (await insertUser(db, { username: name, email: `${name}@example.com`, passwordHash: 'x', roles: [] }))
    .id as UserId;
const waitFor = async (check: () => boolean | Promise<boolean>) => {
  for (let i = 0; i < 300 && !(await check()); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('presence after lost changes', () => {
  let database: TestDatabase;
  let handle: DbHandle;
  let redis: Redis;
  const logs = captureLogs();

  beforeAll(async () => {
    database = await createMigratedDatabase();
    handle = await createDb({ kind: 'postgres', url: database.url, poolMax: 2 }, silent);
    redis = createRedisClient({ endpoint: sharedRedisUrl(), name: 'presence-resync', log: silent });
  });
  afterAll(async () => {
    await closeRedisClient(redis);
    await handle.close();
    await database.drop();
  });

  /** A node's presence on real Redis; `refuseNextApply` makes Redis's next batch fail (nothing applied). */
  const node = (prefix: string, nodeId: string, db: Kysely<Database> = handle.db) => {
    const real = createRedisPresenceStore({ redis, prefix, nodeId, leaseMs: 10_000 });
    let refuse = false;
    const store: PresenceStore = {
      ...real,
      apply: (changes) => {
        if (!refuse) return real.apply(changes);
        refuse = false;
        return Promise.reject(new Error('Command timed out'));
      },
    };
    const bus = createMemoryBus(() => undefined);
    const announced: PresenceState[] = [];
    void bus.subscribe(PRESENCE_BATCH_TOPIC, (batch) => announced.push(...batch.states));
    const presence = createPresenceService({ db, store, bus, clock: systemClock, batchIntervalMs: 0 });
    const sockets = createSocketPresence({ presence, log: logs.log });
    return {
      real,
      presence,
      sockets,
      announced,
      refuseNextApply: () => {
        refuse = true;
      },
    };
  };

  it('sets the counts again after a failed batch: the lost close ends in offline, announced', async () => {
    const a = node(uniqueRedisPrefix(), 'node-a');
    const [alice, bob] = [await newUser(handle.db, 'resync_a'), await newUser(handle.db, 'resync_b')];
    a.sockets.opened(alice);
    a.sockets.opened(bob);
    await a.presence.drained();
    expect(await a.real.isOnline([alice, bob])).toEqual([true, true]);

    a.refuseNextApply();
    a.sockets.closed(alice); // this batch fails: Redis still counts alice's socket
    await waitFor(async () => !(await a.real.isOnline([alice]))[0]);
    await a.presence.drained();
    expect(await a.real.isOnline([alice, bob])).toEqual([false, true]);
    expect(a.announced.filter((s) => s.userId === alice).map((s) => s.status)).toEqual(['online', 'offline']);
    expect(logs.text()).toContain('presence changes failed');
    // The counts are right for what follows too: bob's last socket closing takes him offline.
    a.sockets.closed(bob);
    await a.presence.drained();
    expect(await a.real.isOnline([bob])).toEqual([false]);
  });

  it("counts a node's open sockets again after a reaper removed them, and says the lease was gone", async () => {
    const prefix = uniqueRedisPrefix();
    const a = node(prefix, 'node-a');
    const reaper = createRedisPresenceStore({ redis, prefix, nodeId: 'node-b', leaseMs: 10_000 });
    const carol = await newUser(handle.db, 'resync_c');
    expect(await a.real.renewLease()).toBe(true); // a first lease
    expect(await a.real.renewLease()).toBe(false);
    a.sockets.opened(carol);
    a.sockets.opened(carol);
    await a.presence.drained();
    // node-a's lease lapsed (a long pause) and a reaper cleared its counts.
    expect(await reaper.clearNode('node-a')).toEqual([carol]);
    expect(await a.real.isOnline([carol])).toEqual([false]);

    expect(await a.real.renewLease()).toBe(true);
    a.sockets.resync();
    await a.presence.drained();
    expect(await a.real.isOnline([carol])).toEqual([true]);
    // Both sockets counted: one closing keeps her online, the second takes her offline.
    a.sockets.closed(carol);
    await a.presence.drained();
    expect(await a.real.isOnline([carol])).toEqual([true]);
    a.sockets.closed(carol);
    await a.presence.drained();
    expect(await a.real.isOnline([carol])).toEqual([false]);
  });

  it('writes a last-seen time later when its write failed', async () => {
    let refuseLastSeen = true;
    // The real database; its executor refuses the first last-seen write (as if PostgreSQL restarted).
    type Executor = ReturnType<Kysely<Database>['getExecutor']>;
    const refusing = (executor: Executor): Executor =>
      new Proxy(executor, {
        get(inner, name) {
          const value = Reflect.get(inner, name) as unknown;
          if (name === 'withPlugins')
            return (...args: Parameters<Executor['withPlugins']>) => refusing(inner.withPlugins(...args));
          if (name === 'executeQuery')
            return (...args: Parameters<Executor['executeQuery']>) => {
              if (refuseLastSeen && args[0].sql.includes('user_last_seen')) {
                refuseLastSeen = false;
                return Promise.reject(new Error('Connection terminated unexpectedly'));
              }
              return inner.executeQuery(...args);
            };
          return typeof value === 'function' ? value.bind(inner) : value;
        },
      });
    const db = new Proxy(handle.db, {
      get(target, key, receiver) {
        if (key === 'getExecutor') return () => refusing(target.getExecutor());
        const value = Reflect.get(target, key, receiver) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const a = node(uniqueRedisPrefix(), 'node-a', db);
    const dave = await newUser(handle.db, 'resync_d');
    a.sockets.opened(dave);
    await a.presence.drained();
    a.sockets.closed(dave);
    await a.presence.drained();
    const told = a.announced.find((s) => s.userId === dave && s.status === 'offline');
    expect(told?.lastSeenAt).toBeTruthy();
    expect(refuseLastSeen).toBe(false); // the first write was refused
    await waitFor(async () => (await lastSeenOf(handle.db, [dave])).has(dave));
    expect((await lastSeenOf(handle.db, [dave])).get(dave)?.toISOString()).toBe(told?.lastSeenAt);
  });
});
