import { describe, expect, it } from 'vitest';
import { RecencyMap } from './recency-map.js';

const keysOf = <K, V>(map: RecencyMap<K, V>) => [...map.entries()].map(([key]) => key);

describe('RecencyMap', () => {
  it('keeps at most maxEntries, dropping the oldest first', () => {
    const map = new RecencyMap<string, number>(3);
    for (const [i, key] of ['a', 'b', 'c', 'd'].entries()) map.set(key, i);
    expect(map.size).toBe(3);
    expect(map.has('a')).toBe(false);
    expect(keysOf(map)).toEqual(['b', 'c', 'd']);
  });

  it('keeps an entry that is used while others come and go (least recently used goes)', () => {
    const map = new RecencyMap<string, number>(4);
    map.set('hot', 0);
    for (let i = 0; i < 100; i += 1) {
      map.set(`k${i}`, i);
      expect(map.get('hot')).toBe(0);
    }
    expect(map.has('hot')).toBe(true);
    expect(map.size).toBe(4);
  });

  it('does not move a recently moved entry on every hit (no dead entries piling up)', () => {
    const map = new RecencyMap<string, number>(100);
    for (let i = 0; i < 100; i += 1) map.set(`k${i}`, i);
    // k0 is the oldest: the first hit moves it to the young end, the next ones leave it there.
    map.get('k0');
    const after = keysOf(map);
    expect(after.at(-1)).toBe('k0');
    for (let i = 0; i < 1_000; i += 1) map.get('k0');
    expect(keysOf(map)).toEqual(after);
    // A young entry that is not last stays where it is (a delete + set per hit would move it).
    map.get('k90');
    expect(keysOf(map)).toEqual(after);
  });

  it('moves a hot entry again once half the capacity of other inserts happened', () => {
    const map = new RecencyMap<string, number>(10);
    for (let i = 0; i < 10; i += 1) map.set(`k${i}`, i);
    map.get('k0'); // moved: young
    for (let i = 10; i < 15; i += 1) map.set(`k${i}`, i); // 5 inserts = half the capacity
    map.get('k0');
    expect(keysOf(map).at(-1)).toBe('k0');
    for (let i = 15; i < 24; i += 1) map.set(`k${i}`, i);
    expect(map.has('k0')).toBe(true);
  });

  it('peek reads without counting a use; set replaces; delete and clear remove', () => {
    const map = new RecencyMap<string, number>(2);
    map.set('a', 1);
    map.set('b', 2);
    expect(map.peek('a')).toBe(1);
    map.set('c', 3); // a was only peeked: it is the oldest
    expect(map.has('a')).toBe(false);
    map.set('b', 20);
    expect(map.get('b')).toBe(20);
    expect(map.delete('b')).toBe(true);
    expect(map.get('b')).toBeUndefined();
    map.clear();
    expect(map.size).toBe(0);
  });

  it('allows deleting while iterating (a user-wide forget)', () => {
    const map = new RecencyMap<string, string>(10);
    for (const key of ['a1', 'b1', 'a2', 'b2']) map.set(key, key[0] as string);
    for (const [key, owner] of map.entries()) if (owner === 'a') map.delete(key);
    expect(keysOf(map)).toEqual(['b1', 'b2']);
  });

  it('refuses a bound below 1', () => {
    expect(() => new RecencyMap(0)).toThrow(RangeError);
  });
});
