/**
 * Review 21: the presence watch check made when this node's bus subscriber is back, with the
 * database down at that moment. A contact removal announced while the bus was away reached nobody
 * here; the check was given up on its first failure and the refresh went ahead anyway: the former
 * contact's presence was pushed at once, and their every later change after it (the watch stayed).
 * Now the check is tried again (bounded) and the refresh waits for a check that succeeded.
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import type { UserId } from '../../protocol/src/ids.js';
import { type Bus, createMemoryBus } from '../platform/bus/bus.js';
import { PRESENCE_BATCH_TOPIC } from '../platform/bus/topics.js';
import { createLogger } from '../platform/logger.js';
import { createManualTimers } from '../platform/timers.js';
import { subscribeBusBridge, WATCH_RECHECK_ATTEMPTS } from './bus-bridge.js';
import { testPresenceWatcher } from './connection-testing.js';
import { createHub } from './hub.js';

const codec = createCodec();
const watcher = 'd0000000-0000-4000-8000-000000002101' as UserId;
const contact = 'd0000000-0000-4000-8000-000000002102' as UserId;
const former = 'd0000000-0000-4000-8000-000000002103' as UserId;
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

async function harness() {
  const hub = createHub(codec);
  const comebacks = new Set<() => void>();
  const bus: Bus = {
    ...createMemoryBus(),
    onResubscribed: (listener) => {
      comebacks.add(listener);
      return () => comebacks.delete(listener);
    },
  };
  const timers = createManualTimers();
  const { connection, pushed } = testPresenceWatcher(codec, watcher);
  hub.add(connection);
  hub.watch(connection, [contact, former]);
  // Only `contact` is a contact now: the removal of `former` was announced while the bus was away.
  const db = { down: false, checks: 0 };
  let refreshes = 0;
  const stops = await subscribeBusBridge({
    bus,
    hub,
    jobBoard: { watchersOf: () => [] },
    log: createLogger({ level: 'silent', pretty: false }),
    tellUser: () => undefined,
    onMembershipChanged: () => undefined,
    onContactRemoved: () => undefined,
    mutualContactsAmong: async (_watcher, userIds) => {
      db.checks += 1;
      if (db.down) throw new Error('injected: connection refused');
      return new Set(userIds.filter((id) => id === contact));
    },
    refreshWatchedPresence: async () => {
      refreshes += 1;
      for (const userId of hub.watchedUsers())
        hub.pushToWatchers(userId, {
          t: 'presence',
          d: { userId, status: 'online', lastSeenAt: null },
        });
    },
    timers,
  });
  const busBack = () => {
    for (const listener of comebacks) listener();
  };
  const announce = (userId: UserId) =>
    bus.publish(PRESENCE_BATCH_TOPIC, {
      states: [{ userId, status: 'offline', lastSeenAt: '2026-01-01T00:00:00.000Z' }],
    });
  return { hub, connection, timers, db, pushed, busBack, announce, stops, refreshes: () => refreshes };
}

describe('the presence watch check after the bus came back, with the database down then', () => {
  it("is tried again, and no former contact's presence is pushed meanwhile or after", async () => {
    const h = await harness();
    h.db.down = true;
    h.busBack();
    await settle();
    expect(h.db.checks).toBe(1);
    expect(h.pushed).toEqual([]);
    h.db.down = false;
    h.timers.advance(1_000);
    await settle();

    expect(h.hub.isWatching(h.connection, former)).toBe(false);
    expect(h.hub.isWatching(h.connection, contact)).toBe(true);
    await h.announce(former);
    await settle();
    expect(h.pushed).toEqual([`${contact}:online`]);
  });

  it('gives up after WATCH_RECHECK_ATTEMPTS without a refresh, and stops with the bridge', async () => {
    const h = await harness();
    h.db.down = true;
    h.busBack();
    await settle();
    for (let i = 0; i < WATCH_RECHECK_ATTEMPTS + 2; i += 1) {
      h.timers.advance(60_000);
      await settle();
    }
    expect(h.db.checks).toBe(WATCH_RECHECK_ATTEMPTS);
    expect(h.refreshes()).toBe(0);
    expect(h.timers.pending()).toBe(0);

    h.busBack();
    await settle();
    expect(h.timers.pending()).toBe(1);
    for (const stop of h.stops) await stop();
    expect(h.timers.pending()).toBe(0);
  });
});
