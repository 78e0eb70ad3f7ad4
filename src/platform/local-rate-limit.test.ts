import { describe, expect, it } from 'vitest';
import { createLocalRateLimit } from './local-rate-limit.js';

function limiterAt(start: number, options: { max: number; windowMs?: number; maxKeys?: number }) {
  let now = start;
  const limit = createLocalRateLimit({
    max: options.max,
    windowMs: options.windowMs ?? 60_000,
    maxKeys: options.maxKeys ?? 100,
    now: () => now,
  });
  return {
    limit,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('createLocalRateLimit', () => {
  it('lets max requests of a window pass and refuses the rest with the seconds left', () => {
    const { limit, advance } = limiterAt(1_000, { max: 3 });
    expect([limit('a'), limit('a'), limit('a')]).toEqual([undefined, undefined, undefined]);
    expect(limit('a')).toBe(60);
    advance(59_100);
    // 0.9 s left: rounded up, never 0 (a client told "retry in 0 s" would hammer at once).
    expect(limit('a')).toBe(1);
  });

  it('starts a new window at the first request after one ended', () => {
    const { limit, advance } = limiterAt(0, { max: 1, windowMs: 1_000 });
    expect(limit('a')).toBeUndefined();
    expect(limit('a')).toBe(1);
    advance(1_000);
    expect(limit('a')).toBeUndefined();
    expect(limit('a')).toBe(1);
  });

  it('counts each key on its own', () => {
    const { limit } = limiterAt(0, { max: 1 });
    expect(limit('a')).toBeUndefined();
    expect(limit('b')).toBeUndefined();
    expect(limit('a')).toBe(60);
    expect(limit('b')).toBe(60);
  });

  it('keeps counting refused requests: a client hammering while refused stays refused', () => {
    const { limit, advance } = limiterAt(0, { max: 2 });
    limit('a');
    limit('a');
    for (let i = 0; i < 50; i += 1) expect(limit('a')).toBeGreaterThanOrEqual(1);
    advance(60_000);
    expect(limit('a')).toBeUndefined();
  });

  it('remembers at most maxKeys clients: the least recently seen starts afresh', () => {
    const { limit } = limiterAt(0, { max: 1, maxKeys: 3 });
    for (const key of ['a', 'b', 'c']) expect(limit(key)).toBeUndefined();
    expect(limit('a')).toBe(60);
    // 'd' pushes out the least recently seen of b, c; 'a' was just seen and stays limited.
    expect(limit('d')).toBeUndefined();
    expect(limit('a')).toBe(60);
  });

  it('refuses settings that would limit nothing or everything by mistake', () => {
    expect(() => createLocalRateLimit({ max: -1, windowMs: 1_000, maxKeys: 1 })).toThrow(RangeError);
    expect(() => createLocalRateLimit({ max: 1.5, windowMs: 1_000, maxKeys: 1 })).toThrow(RangeError);
    expect(() => createLocalRateLimit({ max: 1, windowMs: 0, maxKeys: 1 })).toThrow(RangeError);
    expect(() => createLocalRateLimit({ max: 1, windowMs: 1_000, maxKeys: 0 })).toThrow(RangeError);
  });
});
