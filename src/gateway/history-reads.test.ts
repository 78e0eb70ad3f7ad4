import { describe, expect, it } from 'vitest';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import { isAppError } from '../platform/errors.js';
import { createManualTimers } from '../platform/timers.js';
import { createHistoryReads } from './history-reads.js';

const room = 'room' as RoomId;
const alice = 'alice' as UserId;
const bob = 'bob' as UserId;

function heldReads() {
  const gates: (() => void)[] = [];
  const reads = createHistoryReads({
    read: (_roomId, beforeSeq) =>
      new Promise<number | undefined>((resolve) => gates.push(() => resolve(beforeSeq))),
    perUser: 2,
    concurrency: 3,
    maxWaiting: 1,
  });
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  return { reads, gates, tick };
}

describe('history reads', () => {
  it('refuses a user beyond their reads in flight RATE_LIMITED, and takes them again once one ends', async () => {
    const { reads, gates, tick } = heldReads();
    const first = reads.read(alice, room, 1, 10);
    const second = reads.read(alice, room, 2, 10);
    const refused = await reads.read(alice, room, 3, 10).catch((error: unknown) => error);
    expect(isAppError(refused) && refused.code).toBe('RATE_LIMITED');
    await tick();
    gates.shift()?.();
    expect(await first).toBe(1);
    const third = reads.read(alice, room, 3, 10);
    await tick();
    for (const open of gates.splice(0)) open();
    expect([await second, await third]).toEqual([2, 3]);
    expect(reads.load()).toEqual({ running: 0, waiting: 0, users: 0 });
  });

  it('runs at most `concurrency` reads on the node, queues the next in order, and refuses beyond the queue', async () => {
    const { reads, gates, tick } = heldReads();
    const users = ['u1', 'u2', 'u3', 'u4', 'u5'] as UserId[];
    const running = users.slice(0, 3).map((user, i) => reads.read(user, room, i, 10));
    const queued = reads.read(users[3] as UserId, room, 3, 10);
    const overflow = await reads.read(users[4] as UserId, room, 4, 10).catch((error: unknown) => error);
    expect(isAppError(overflow) && overflow.code).toBe('UNAVAILABLE');
    await tick();
    expect(gates).toHaveLength(3);
    expect(reads.load()).toMatchObject({ running: 3, waiting: 1 });
    gates.shift()?.();
    await tick();
    expect(gates).toHaveLength(3); // the queued read took the freed slot
    for (const open of gates.splice(0)) open();
    expect(await Promise.all([...running, queued])).toEqual([0, 1, 2, 3]);
    expect(reads.read(bob, room, 9, 10)).toBeInstanceOf(Promise);
    await tick();
    gates.shift()?.();
    expect(reads.load()).toMatchObject({ waiting: 0 });
  });

  it('gives up a wait longer than maxWaitMs UNAVAILABLE, and skips a read whose asker is gone', async () => {
    const timers = createManualTimers();
    const gates: (() => void)[] = [];
    const reads = createHistoryReads({
      read: () => new Promise<string>((resolve) => gates.push(() => resolve('page'))),
      concurrency: 1,
      maxWaitMs: 5_000,
      timers,
    });
    const tick = () => new Promise((resolve) => setImmediate(resolve));
    const held = reads.read(alice, room, undefined, 10);
    const late = reads.read(bob, room, undefined, 10).catch((error: unknown) => error);
    let open = true;
    const gone = reads
      .read('carol' as UserId, room, undefined, 10, () => open)
      .catch((error: unknown) => error);
    await tick();
    timers.advance(5_000);
    const gaveUp = await late;
    expect(isAppError(gaveUp) && gaveUp.code).toBe('UNAVAILABLE');
    expect(reads.load()).toMatchObject({ running: 1, waiting: 0 });
    // carol gave up too (same deadline); a new waiter whose socket closes while it waits is skipped.
    expect(isAppError(await gone) && ((await gone) as { code: string }).code).toBe('UNAVAILABLE');
    const closing = reads
      .read('dave' as UserId, room, undefined, 10, () => open)
      .catch((error: unknown) => error);
    await tick();
    open = false;
    gates.shift()?.();
    expect(await held).toBe('page');
    const skipped = await closing;
    expect(isAppError(skipped) && skipped.code).toBe('UNAVAILABLE');
    expect(gates).toHaveLength(0);
    expect(reads.load()).toEqual({ running: 0, waiting: 0, users: 0 });
  });
});
