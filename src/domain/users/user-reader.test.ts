import { describe, expect, it } from 'vitest';
import { createBatchedReader } from './user-reader.js';

/** A reader whose loads the test answers by hand, with "end of turn" run explicitly. */
function harness() {
  const deferred: (() => void)[] = [];
  const loads: { keys: string[]; answer: () => void; fail: (error: Error) => void }[] = [];
  const read = createBatchedReader<string, string>({
    load: (keys) =>
      new Promise((resolve, reject) => {
        loads.push({
          keys: [...keys],
          answer: () => resolve(new Map(keys.map((key) => [key, `row of ${key}`]))),
          fail: reject,
        });
      }),
    defer: (run) => void deferred.push(run),
  });
  const endOfTurn = () => {
    for (const run of deferred.splice(0)) run();
  };
  /** Lets the promise callbacks of an answered load run. */
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  return { read, loads, endOfTurn, settle, deferred };
}

describe('createBatchedReader', () => {
  it('sends the keys of one turn in one load when none is in flight', async () => {
    const { read, loads, endOfTurn } = harness();
    const answers = Promise.all(['a', 'b', 'a'].map(read));
    expect(loads).toEqual([]);
    endOfTurn();
    expect(loads.map((l) => l.keys)).toEqual([['a', 'b']]);
    loads[0]?.answer();
    expect(await answers).toEqual(['row of a', 'row of b', 'row of a']);
  });

  it('holds keys asked while a load is in flight and sends them together once it is answered', async () => {
    const { read, loads, endOfTurn, settle, deferred } = harness();
    const first = read('a');
    endOfTurn();
    // Asked after the first load was sent: they must not join it (it may predate their writes).
    const later = Promise.all(['a', 'c', 'd'].map(read));
    endOfTurn();
    expect(loads.map((l) => l.keys)).toEqual([['a']]);
    expect(deferred).toHaveLength(0);
    loads[0]?.answer();
    expect(await first).toBe('row of a');
    await settle();
    endOfTurn();
    expect(loads.map((l) => l.keys)).toEqual([['a'], ['a', 'c', 'd']]);
    loads[1]?.answer();
    expect(await later).toEqual(['row of a', 'row of c', 'row of d']);
  });

  it('sends the waiting keys after a failed load too, and fails only the callers of that load', async () => {
    const { read, loads, endOfTurn, settle } = harness();
    const first = read('a');
    endOfTurn();
    const second = read('b');
    loads[0]?.fail(new Error('connection lost'));
    await expect(first).rejects.toThrow('connection lost');
    await settle();
    endOfTurn();
    expect(loads.map((l) => l.keys)).toEqual([['a'], ['b']]);
    loads[1]?.answer();
    expect(await second).toBe('row of b');
  });
});
