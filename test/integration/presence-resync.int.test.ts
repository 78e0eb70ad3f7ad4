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
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
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
/** Event-loop turns (setImmediate, not faked) until `check` holds or `turns` have passed. */
const waitForTurns = async (check: () => boolean, turns = 200) => {
  for (let i = 0; i < turns && !check(); i++) await new Promise((r) => setImmediate(r));
};
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
    /** Resyncs sent to Redis; `reconcileGate` holds the next one (before Redis sees it) until resolved. */
    let reconciles = 0;
    let reconcileGate: Promise<void> | undefined;
    let refuseReconcile = false;
    const store: PresenceStore = {
      ...real,
      apply: (changes) => {
        if (!refuse) return real.apply(changes);
        refuse = false;
        return Promise.reject(new Error('Command timed out'));
      },
      reconcile: async (counts) => {
        reconciles += 1;
        if (refuseReconcile) throw new Error('Connection is closed.');
        const gate = reconcileGate;
        reconcileGate = undefined;
        if (gate !== undefined) await gate;
        return real.reconcile(counts);
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
      reconciles: () => reconciles,
      holdNextReconcile: () => {
        let open: () => void = () => undefined;
        reconcileGate = new Promise<void>((resolve) => {
          open = resolve;
        });
        return open;
      },
      refuseReconciles: (refuseThem: boolean) => {
        refuseReconcile = refuseThem;
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
    // PostgreSQL failing says nothing about Redis's counts: no resync for it.
    expect(a.reconciles()).toBe(0);
  });

  it('sets the counts a resync read when it went: a socket closing meanwhile is counted once', async () => {
    const a = node(uniqueRedisPrefix(), 'node-a');
    const erin = await newUser(handle.db, 'resync_e');
    a.sockets.opened(erin);
    a.sockets.opened(erin);
    await a.presence.drained();
    const release = a.holdNextReconcile();
    a.sockets.resync();
    await waitFor(() => a.reconciles() === 1);
    a.sockets.closed(erin); // while the resync (counted 2) is on its way: the next batch's -1
    release();
    await a.presence.drained();
    expect(await a.real.isOnline([erin])).toEqual([true]); // one socket is still open
    a.sockets.closed(erin);
    await a.presence.drained();
    expect(await a.real.isOnline([erin])).toEqual([false]);
  });

  it('tries a refused resync again a second later, not at once, and never after stop', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const a = node(uniqueRedisPrefix(), 'node-a');
      a.refuseReconciles(true);
      a.sockets.resync();
      await waitForTurns(() => a.reconciles() === 1);
      await waitForTurns(() => false, 20); // turns pass, no timer fires: no retry yet
      expect(a.reconciles()).toBe(1);
      vi.advanceTimersByTime(999);
      await waitForTurns(() => false, 20);
      expect(a.reconciles()).toBe(1);
      vi.advanceTimersByTime(1);
      await waitForTurns(() => a.reconciles() === 2);
      expect(a.reconciles()).toBe(2);
      a.presence.stop();
      vi.advanceTimersByTime(5_000);
      await waitForTurns(() => false, 20);
      expect(a.reconciles()).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });
});
