/**
 * Fixed-window counters in Redis (login failures per account and per IP). One INCR and, for the
 * first hit of a window, one PEXPIRE, in a single MULTI: shared by every process of a deployment.
 */
import type { Redis } from 'ioredis';

export interface WindowCount {
  readonly count: number;
  /** Milliseconds until the window ends (0 when there is no window). */
  readonly resetInMs: number;
}

export interface WindowCounter {
  /** Current count without changing it. */
  readonly peek: (key: string) => Promise<WindowCount>;
  /** Adds one; the window starts at the first hit and lasts windowMs. */
  readonly hit: (key: string, windowMs: number) => Promise<WindowCount>;
  readonly clear: (key: string) => Promise<void>;
  /** Takes one back (never below zero), e.g. an attempt that turned out to succeed. */
  readonly release: (key: string) => Promise<void>;
}

const RELEASE = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then redis.call('DECR', KEYS[1]) end
return 0`;

export function createRedisWindowCounter(redis: Redis, prefix: string): WindowCounter {
  const fullKey = (key: string) => `${prefix}:window:${key}`;
  return {
    peek: async (key) => {
      const [count, ttl] = await Promise.all([redis.get(fullKey(key)), redis.pttl(fullKey(key))]);
      return { count: Number(count ?? 0), resetInMs: Math.max(ttl, 0) };
    },
    hit: async (key, windowMs) => {
      const result = await redis
        .multi()
        .incr(fullKey(key))
        .pexpire(fullKey(key), windowMs, 'NX')
        .pttl(fullKey(key))
        .exec();
      const count = Number(result?.[0]?.[1] ?? 0);
      const ttl = Number(result?.[2]?.[1] ?? windowMs);
      return { count, resetInMs: Math.max(ttl, 0) };
    },
    clear: async (key) => {
      await redis.del(fullKey(key));
    },
    release: async (key) => {
      await redis.eval(RELEASE, 1, fullKey(key));
    },
  };
}
