import { describe, expect, it } from 'vitest';
import { createLogger } from '../platform/logger.js';
import type { PresenceStore } from '../platform/presence-store.js';
import { createManualTimers } from '../platform/timers.js';
import { createNodePresence } from './node-presence.js';

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('node presence lease renewals (review 25)', () => {
  it('sets the counts again after a renewal that failed, though the next one finds the lease', async () => {
    // The failed renewal timed out on a stalled Redis, which ran it when it woke, after a reaper
    // had removed this node's lease and counts: it re-added the lease, and its "was gone" answer
    // was lost; the next renewal finds the lease and answers false.
    const answers: (() => Promise<boolean>)[] = [
      async () => true, // join
      async () => {
        throw new Error('Command timed out');
      },
      async () => false,
      async () => false,
    ];
    const store = {
      ownLeaseExpiresAt: async () => undefined,
      clearNode: async () => [],
      renewLease: () => (answers.shift() ?? (async () => false))(),
      reapDeadNodes: async () => [],
      expireLease: async () => undefined,
    } as unknown as PresenceStore;
    const timers = createManualTimers(0);
    let resyncs = 0;
    const node = createNodePresence({
      nodeId: 'n1',
      store,
      presence: { announceOffline: async () => undefined },
      timers,
      leaseMs: 3_000,
      log: createLogger({ level: 'silent', pretty: false }),
      onLeaseLost: () => {
        resyncs += 1;
      },
    });
    await node.join();
    for (let i = 0; i < 3; i++) {
      timers.advance(1_000);
      await settle();
    }
    // The failure, then the renewal after it: one resync; a renewal after that: none.
    expect(answers).toHaveLength(0);
    expect(resyncs).toBe(1);
    await node.withdraw();
  });
});
