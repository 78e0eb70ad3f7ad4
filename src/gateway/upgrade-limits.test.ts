import { describe, expect, it } from 'vitest';
import { clientAddressResolver, createConnectionCap, createUpgradeRateLimiter } from './upgrade-limits.js';

describe('createUpgradeRateLimiter', () => {
  it('admits a burst per address, then refuses with Retry-After until tokens refill', () => {
    let now = 0;
    const limiter = createUpgradeRateLimiter({ perSecond: 2, burst: 3, now: () => now });
    for (let i = 0; i < 3; i++) expect(limiter.admit('10.0.0.1')).toEqual({ ok: true });
    expect(limiter.admit('10.0.0.1')).toEqual({ ok: false, retryAfterS: 1 });
    // Another address has a bucket of its own.
    expect(limiter.admit('10.0.0.2')).toEqual({ ok: true });
    now = 500; // one token back at 2 per second
    expect(limiter.admit('10.0.0.1')).toEqual({ ok: true });
    expect(limiter.admit('10.0.0.1').ok).toBe(false);
  });

  it('tracks a bounded number of addresses, forgetting full buckets first', () => {
    let now = 0;
    const limiter = createUpgradeRateLimiter({ perSecond: 1, burst: 2, now: () => now, maxTracked: 100 });
    for (let i = 0; i < 1_000; i++) {
      limiter.admit(`10.0.${Math.floor(i / 250)}.${i % 250}`);
      now += 1;
    }
    expect(limiter.size()).toBeLessThanOrEqual(100);
  });
});

describe('clientAddressResolver', () => {
  it('ignores X-Forwarded-For unless proxies are trusted', () => {
    expect(clientAddressResolver(0)('10.0.0.9', '1.2.3.4')).toBe('10.0.0.9');
    expect(clientAddressResolver(false)('10.0.0.9', '1.2.3.4')).toBe('10.0.0.9');
  });

  it('with a hop count, takes the address that many hops from the socket peer (not the leftmost)', () => {
    const resolve = clientAddressResolver(1);
    expect(resolve('10.0.0.9', '1.2.3.4')).toBe('1.2.3.4');
    // A client-written entry in front of the one the proxy appended does not count.
    expect(resolve('10.0.0.9', '6.6.6.6, 1.2.3.4')).toBe('1.2.3.4');
    expect(resolve('10.0.0.9', undefined)).toBe('10.0.0.9');
  });

  it('with proxy addresses or CIDRs, skips only those hops', () => {
    const resolve = clientAddressResolver(['10.0.0.0/8']);
    expect(resolve('10.0.0.9', '6.6.6.6, 1.2.3.4')).toBe('1.2.3.4');
    expect(resolve('192.0.2.1', '1.2.3.4')).toBe('192.0.2.1');
  });
});

describe('createConnectionCap (review 21)', () => {
  it('holds at most the cap per client; each place is given back once, however often released', () => {
    const cap = createConnectionCap(2);
    const first = cap.acquire('10.0.0.1');
    const second = cap.acquire('10.0.0.1');
    expect(first).toBeDefined();
    expect(second).toBeDefined();
    expect(cap.acquire('10.0.0.1')).toBeUndefined();
    expect(cap.acquire('10.0.0.2')).toBeDefined();
    first?.();
    first?.();
    expect(cap.held('10.0.0.1')).toBe(1);
    expect(cap.acquire('10.0.0.1')).toBeDefined();
    expect(cap.acquire('10.0.0.1')).toBeUndefined();
    second?.();
    expect(cap.held('10.0.0.1')).toBe(1);
  });

  it('forgets a client holding nothing', () => {
    const cap = createConnectionCap(5);
    const releases = Array.from({ length: 100 }, (_, n) => cap.acquire(`10.0.1.${n}`));
    for (const release of releases) release?.();
    expect(cap.size()).toBe(0);
  });
});
