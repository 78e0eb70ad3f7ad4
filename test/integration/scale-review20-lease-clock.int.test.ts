/**
 * Scale review 20: presence leases were scored with the renewing node's wall clock and read
 * against the reader's. One node whose clock stepped forward (NTP, a VM resumed) saw every other
 * lease as lapsed: it reaped their users offline for everyone and placement gave it every room; one
 * whose clock stepped back wrote a lease the others reaped at once. Leases are now timed by Redis's
 * clock (TIME in the scripts). This process's clock is stepped with a fake Date; Redis is real.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/platform/logger.js';
import { createRedisPresenceStore } from '../../src/platform/presence-store.js';
import { closeRedisClient, createRedisClient, type Redis } from '../../src/platform/redis.js';
import { sharedRedisUrl, uniqueRedisPrefix } from '../support/context.js';

const HOUR_MS = 3_600_000;

describe('presence leases when a node’s clock steps', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = createRedisClient({
      endpoint: sharedRedisUrl(),
      name: 'lease-clock',
      log: createLogger({ level: 'silent', pretty: false }),
    });
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  afterAll(async () => {
    await closeRedisClient(redis);
  });

  const stores = () => {
    const prefix = uniqueRedisPrefix();
    const at = (nodeId: string) => createRedisPresenceStore({ redis, prefix, nodeId, leaseMs: 10_000 });
    return { a: at('node-a'), b: at('node-b') };
  };
  const stepClock = (ms: number) => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + ms);
  };

  it('a node an hour ahead reaps nobody live and sees the others live', async () => {
    const { a, b } = stores();
    await a.renewLease();
    await b.renewLease();
    expect(await a.connected('user-1')).toBe('online');

    stepClock(HOUR_MS); // node-b's clock jumps
    expect(await b.reapDeadNodes()).toEqual([]);
    expect((await b.liveNodes()).map((n) => n.nodeId).sort()).toEqual(['node-a', 'node-b']);
    expect(await b.isOnline(['user-1'])).toEqual([true]);
  });

  it('a node an hour behind renews a lease the others see live', async () => {
    const { a, b } = stores();
    stepClock(-HOUR_MS); // node-a's clock jumps back
    await a.renewLease();
    expect(await a.connected('user-2')).toBe('online');
    vi.useRealTimers();

    expect((await b.liveNodes()).map((n) => n.nodeId)).toEqual(['node-a']);
    expect(await b.reapDeadNodes()).toEqual([]);
    expect(await b.isOnline(['user-2'])).toEqual([true]);
    // Its own lease is live to it too, whatever its clock says.
    stepClock(-HOUR_MS);
    expect(await a.ownLeaseExpiresAt()).toBeDefined();
    expect(await a.renewLease()).toBe(false);
  });
});
