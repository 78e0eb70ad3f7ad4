import { describe, expect, it } from 'vitest';
import { createTickBatcher } from './tick-batcher.js';

/** A scheduler the test flushes by hand, so "one tick" is explicit. */
function manualTick() {
  const queued: (() => void)[] = [];
  return {
    schedule: (flush: () => void) => void queued.push(flush),
    flush: () => {
      for (const run of queued.splice(0)) run();
    },
    pending: () => queued.length,
  };
}

/** A batcher over a loader that records each batch and answers `rowOf(key)` for every key. */
function recording<V>(rowOf: (key: string) => V, options: { maxBatch?: number } = {}) {
  const tick = manualTick();
  const calls: string[][] = [];
  const get = createTickBatcher<string, V>({
    load: async (keys) => {
      calls.push([...keys]);
      return new Map(keys.map((key) => [key, rowOf(key)]));
    },
    schedule: tick.schedule,
    ...options,
  });
  return { tick, calls, get };
}

describe('createTickBatcher', () => {
  it('loads every key asked for in one tick in one call, and gives each caller its own value', async () => {
    const { tick, calls, get } = recording((key) => `row of ${key}`);
    const keys = Array.from({ length: 50 }, (_, i) => `k${i}`);
    const answers = Promise.all(keys.map((key) => get(key)));
    expect(calls).toEqual([]);
    expect(tick.pending()).toBe(1);
    tick.flush();
    expect(await answers).toEqual(keys.map((key) => `row of ${key}`));
    expect(calls).toEqual([keys]);
  });

  it('loads a key asked for twice in one tick once, and answers both callers', async () => {
    const { tick, calls, get } = recording((key) => key.length);
    const both = Promise.all([get('abc'), get('abc'), get('de')]);
    tick.flush();
    expect(await both).toEqual([3, 3, 2]);
    expect(calls).toEqual([['abc', 'de']]);
  });

  it('answers undefined for a key the loader did not find', async () => {
    const tick = manualTick();
    const get = createTickBatcher<string, string>({
      load: async () => new Map([['known', 'row']]),
      schedule: tick.schedule,
    });
    const answers = Promise.all([get('known'), get('unknown')]);
    tick.flush();
    expect(await answers).toEqual(['row', undefined]);
  });

  it('starts a new batch in the next tick', async () => {
    const { tick, calls, get } = recording((key) => key);
    const first = get('a');
    tick.flush();
    await first;
    const second = get('a');
    tick.flush();
    expect(await second).toBe('a');
    expect(calls).toEqual([['a'], ['a']]);
  });

  it('splits a tick into loads of at most maxBatch keys', async () => {
    const { tick, calls, get } = recording((key) => key.toUpperCase(), { maxBatch: 2 });
    const answers = Promise.all(['a', 'b', 'c', 'd', 'e'].map((key) => get(key)));
    tick.flush();
    expect(await answers).toEqual(['A', 'B', 'C', 'D', 'E']);
    expect(calls).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
  });

  it('rejects every caller of a failed batch, and only those', async () => {
    const tick = manualTick();
    let fail = true;
    const get = createTickBatcher<string, string>({
      load: async (keys) => {
        if (fail) throw new Error('database down');
        return new Map(keys.map((key) => [key, key]));
      },
      schedule: tick.schedule,
    });
    const failed = [get('a'), get('b')].map((p) =>
      p.then(
        () => 'ok',
        (error: Error) => error.message,
      ),
    );
    tick.flush();
    expect(await Promise.all(failed)).toEqual(['database down', 'database down']);
    fail = false;
    const next = get('a');
    tick.flush();
    expect(await next).toBe('a');
  });

  it('rejects the batch when the loader throws synchronously', async () => {
    const tick = manualTick();
    const get = createTickBatcher<string, string>({
      load: () => {
        throw new Error('bad input');
      },
      schedule: tick.schedule,
    });
    const answer = get('a');
    tick.flush();
    await expect(answer).rejects.toThrow('bad input');
  });

  it('flushes with setImmediate by default: requests of one loop turn share one load', async () => {
    const calls: string[][] = [];
    const get = createTickBatcher<string, string>({
      load: async (keys) => {
        calls.push([...keys]);
        return new Map(keys.map((key) => [key, key]));
      },
    });
    // Asked from separate microtasks of one turn: still one batch.
    const answers = await Promise.all(['a', 'b', 'c'].map((key) => Promise.resolve().then(() => get(key))));
    expect(answers).toEqual(['a', 'b', 'c']);
    expect(calls).toEqual([['a', 'b', 'c']]);
  });
});
