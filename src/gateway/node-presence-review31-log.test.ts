/**
 * Review 31 (operator, logs): while Redis is away, this node's presence lease renewal (every third of
 * PRESENCE_LEASE_MS) and its reaper (every 3 s) fail at every attempt; each failure wrote a warning,
 * about one line a second per gateway for the whole outage. One line per 10 s each now, with the
 * number held back.
 */
import { describe, expect, it } from 'vitest';
import { loggerToMemory } from '../platform/logger.testing.js';
import type { PresenceStore } from '../platform/presence-store.js';
import { createManualTimers } from '../platform/timers.js';
import { createNodePresence } from './node-presence.js';

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('node presence while Redis is away (review 31)', () => {
  it('logs failed renewals and reaps once per 10 s each', async () => {
    const { log, lines } = loggerToMemory();
    let joined = false;
    const down = () => Promise.reject(new Error('Connection is closed.'));
    const store = {
      ownLeaseExpiresAt: async () => undefined,
      clearNode: async () => [],
      renewLease: () => {
        if (joined) return down();
        joined = true;
        return Promise.resolve(true);
      },
      reapDeadNodes: down,
      expireLease: async () => undefined,
    } as unknown as PresenceStore;
    const timers = createManualTimers(10_000);
    const node = createNodePresence({
      nodeId: 'n1',
      store,
      presence: { announceOffline: async () => undefined },
      timers,
      leaseMs: 3_000,
      log: log,
      onLeaseLost: () => undefined,
    });
    await node.join();
    for (let second = 0; second < 25; second++) {
      timers.advance(1_000);
      await settle();
    }
    const heldBack = (msg: string) => lines.filter((line) => line.msg === msg).map((line) => line.heldBack);
    // A renewal a second: the first failure, then one line per 10 s with the 9 between.
    expect(heldBack('presence lease renewal failed')).toEqual([0, 9, 9]);
    // A reap every 3 s (at 3, 6, … 24 s): the first, then at 15 s with the 3 between.
    expect(heldBack('presence reaper failed')).toEqual([0, 3]);
    await node.withdraw();
  });
});
