import { describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { isAppError } from '../platform/errors.js';
import { createManualTimers } from '../platform/timers.js';
import { createRoomReads, type RoomReadsOptions } from './room-reads.js';

const alice = 'alice' as UserId;
const bob = 'bob' as UserId;

/** Reads that wait for their gate; `read(user, value)` reads `value` (counted as one message). */
function gatedReads(options: RoomReadsOptions) {
  const gates: (() => void)[] = [];
  const reads = createRoomReads(options);
  const read = <T>(user: UserId, value: T, wanted?: () => boolean) =>
    reads.read(
      user,
      () => new Promise<T>((resolve) => gates.push(() => resolve(value))),
      () => 1,
      wanted,
    );
  return { reads, read, gates };
}

function heldReads() {
  const { reads, read, gates } = gatedReads({ perUser: 2, concurrency: 3, maxWaiting: 1 });
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  return { reads, read, gates, tick };
}

describe('room reads', () => {
  it('refuses a user beyond their reads in flight RATE_LIMITED, and takes them again once one ends', async () => {
    const { reads, read, gates, tick } = heldReads();
    const first = read(alice, 1);
    const second = read(alice, 2);
    const refused = await read(alice, 3).catch((error: unknown) => error);
    expect(isAppError(refused) && refused.code).toBe('RATE_LIMITED');
    await tick();
    gates.shift()?.();
    expect(await first).toBe(1);
    const third = read(alice, 3);
    await tick();
    for (const open of gates.splice(0)) open();
    expect([await second, await third]).toEqual([2, 3]);
    expect(reads.load()).toEqual({ running: 0, waiting: 0, users: 0 });
  });

  it('runs at most `concurrency` reads on the node, queues the next in order, and refuses beyond the queue', async () => {
    const { reads, read, gates, tick } = heldReads();
    const users = ['u1', 'u2', 'u3', 'u4', 'u5'] as UserId[];
    const running = users.slice(0, 3).map((user, i) => read(user, i));
    const queued = read(users[3] as UserId, 3);
    const overflow = await read(users[4] as UserId, 4).catch((error: unknown) => error);
    expect(isAppError(overflow) && overflow.code).toBe('UNAVAILABLE');
    await tick();
    expect(gates).toHaveLength(3);
    expect(reads.load()).toMatchObject({ running: 3, waiting: 1 });
    gates.shift()?.();
    await tick();
    expect(gates).toHaveLength(3); // the queued read took the freed slot
    for (const open of gates.splice(0)) open();
    expect(await Promise.all([...running, queued])).toEqual([0, 1, 2, 3]);
    expect(read(bob, 9)).toBeInstanceOf(Promise);
    await tick();
    gates.shift()?.();
    expect(reads.load()).toMatchObject({ waiting: 0 });
  });

  it('gives up a wait longer than maxWaitMs UNAVAILABLE, and skips a read whose asker is gone', async () => {
    const timers = createManualTimers();
    const { reads, read, gates } = gatedReads({ concurrency: 1, maxWaitMs: 5_000, timers });
    const tick = () => new Promise((resolve) => setImmediate(resolve));
    const held = read(alice, 'page');
    const late = read(bob, 'page').catch((error: unknown) => error);
    let open = true;
    const gone = read('carol' as UserId, 'page', () => open).catch((error: unknown) => error);
    await tick();
    timers.advance(5_000);
    const gaveUp = await late;
    expect(isAppError(gaveUp) && gaveUp.code).toBe('UNAVAILABLE');
    expect(reads.load()).toMatchObject({ running: 1, waiting: 0 });
    // carol gave up too (same deadline); a new waiter whose socket closes while it waits is skipped.
    expect(isAppError(await gone) && ((await gone) as { code: string }).code).toBe('UNAVAILABLE');
    const closing = read('dave' as UserId, 'page', () => open).catch((error: unknown) => error);
    await tick();
    open = false;
    gates.shift()?.();
    expect(await held).toBe('page');
    const skipped = await closing;
    expect(isAppError(skipped) && skipped.code).toBe('UNAVAILABLE');
    expect(gates).toHaveLength(0);
    expect(reads.load()).toEqual({ running: 0, waiting: 0, users: 0 });
  });

  it('sends each user at most the budget of stored messages, from the database or memory alike', async () => {
    let clock = 0;
    const reads = createRoomReads({ messagesPerSecond: 100, messageBurst: 300, now: () => clock });
    const page = (n: number) => () => Promise.resolve(Array.from({ length: n }, (_, i) => i));
    const count = (rows: number[]) => rows.length;
    // The burst goes at once, a page may overdraw it, and then the user waits for the refill.
    expect(await reads.read(alice, page(200), count)).toHaveLength(200);
    reads.spendMessages(alice, 64);
    expect(await reads.read(alice, page(200), count)).toHaveLength(200);
    const refused = await reads.read(alice, page(1), count).catch((error: unknown) => error);
    expect(isAppError(refused) && refused.code).toBe('RATE_LIMITED');
    // 164 below zero at 100 per second: room for one message again after 1.65 s.
    expect(isAppError(refused) && refused.details?.retryAfterMs).toBe(1_650);
    expect(() => reads.spendMessages(alice, 1)).toThrow(/stored messages per second/);
    // Another user has a budget of their own.
    expect(await reads.read(bob, page(300), count)).toHaveLength(300);
    clock += 1_650;
    expect(await reads.read(alice, page(1), count)).toHaveLength(1);
    clock += 60_000;
    expect(await reads.read(alice, page(300), count)).toHaveLength(300);
  });
});
