import { describe, expect, it } from 'vitest';
import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import {
  applyRead,
  applyTyping,
  classifyWriteFailure,
  planBatch,
  type RoomState,
  sendKey,
  splitBatch,
} from './room.state.js';

const alice = 'a0000000-0000-4000-8000-000000000001' as UserId;
const bob = 'b0000000-0000-4000-8000-000000000002' as UserId;
const state = (lastSeq = 0): RoomState => ({
  roomId: 'r0000000-0000-4000-8000-000000000000' as RoomId,
  members: new Map([
    [alice, { lastReadSeq: 0 }],
    [bob, { lastReadSeq: 0 }],
  ]),
  lastSeq,
  typingPushedAt: new Map(),
});
const send = (senderId: UserId, clientMsgId: string) => ({
  senderId,
  clientMsgId,
  body: clientMsgId,
  meta: null,
});

describe('planBatch', () => {
  it('numbers a batch after lastSeq with no gaps', () => {
    const plan = planBatch(state(7), [send(alice, 'a1'), send(bob, 'b1'), send(alice, 'a2')], new Map());
    expect(plan.inserts.map((i) => i.seq)).toEqual([8, 9, 10]);
    expect(plan.lastSeq).toBe(10);
  });

  it('gives a resend its stored seq and inserts it no more, without leaving a gap', () => {
    const stored = new Map([[sendKey(alice, 'a1'), 3]]);
    const plan = planBatch(state(7), [send(alice, 'a1'), send(bob, 'b1')], stored);
    expect(plan.inserts.map((i) => [i.clientMsgId, i.seq])).toEqual([['b1', 8]]);
    expect(plan.seqOf.get(sendKey(alice, 'a1'))).toBe(3);
    expect(plan.lastSeq).toBe(8);
  });

  it('stores the same clientMsgId once even when it appears twice in one batch', () => {
    const plan = planBatch(state(0), [send(alice, 'x'), send(alice, 'x'), send(bob, 'x')], new Map());
    expect(plan.inserts.map((i) => [i.senderId, i.seq])).toEqual([
      [alice, 1],
      [bob, 2],
    ]);
  });
});

describe('applyRead', () => {
  it('moves forward only, and never past the last message', () => {
    let s = state(5);
    let result = applyRead(s, alice, 3);
    expect(result).toMatchObject({ seq: 3, changed: true });
    s = result.state;
    expect(applyRead(s, alice, 2)).toMatchObject({ seq: 3, changed: false });
    result = applyRead(s, alice, 99);
    expect(result).toMatchObject({ seq: 5, changed: true });
  });
});

describe('applyTyping', () => {
  it('pushes at most once per throttle window per member', () => {
    let s = state();
    const first = applyTyping(s, alice, 1_000, 2_000);
    expect(first.push).toBe(true);
    s = first.state;
    expect(applyTyping(s, alice, 2_500, 2_000).push).toBe(false);
    expect(applyTyping(s, bob, 2_500, 2_000).push).toBe(true);
    expect(applyTyping(s, alice, 3_000, 2_000).push).toBe(true);
  });
});

describe('classifyWriteFailure', () => {
  it('tells duplicates, refused rows and an unavailable database apart by SQLSTATE', () => {
    expect(classifyWriteFailure({ code: '23505' })).toBe('duplicate');
    // What Postgres says for a NUL in text (22021), \u0000 in jsonb (22P05), a broken constraint.
    expect(classifyWriteFailure({ code: '22021' })).toBe('rejected');
    expect(classifyWriteFailure({ code: '22P05' })).toBe('rejected');
    expect(classifyWriteFailure({ code: '23514' })).toBe('rejected');
    expect(classifyWriteFailure({ code: '54000' })).toBe('rejected');
    // No send is to blame: connection lost, shutdown, serialization, no SQLSTATE at all.
    expect(classifyWriteFailure({ code: '08006' })).toBe('unavailable');
    expect(classifyWriteFailure({ code: '57P01' })).toBe('unavailable');
    expect(classifyWriteFailure({ code: '40001' })).toBe('unavailable');
    expect(classifyWriteFailure({ code: 'ECONNREFUSED' })).toBe('unavailable');
    expect(classifyWriteFailure(new Error('timeout'))).toBe('unavailable');
    // Another node took the room over (RoomFencedError): this writer steps down.
    expect(classifyWriteFailure({ code: 'ROOM_FENCED' })).toBe('fenced');
    expect(classifyWriteFailure(null)).toBe('unavailable');
  });
});

describe('splitBatch', () => {
  it('halves a batch in order until one send stands alone', () => {
    expect(splitBatch([1, 2, 3, 4, 5])).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
    expect(splitBatch([1, 2])).toEqual([[1], [2]]);
    expect(splitBatch([1])).toBeUndefined();
    expect(splitBatch([])).toBeUndefined();
  });

  it('isolates one refused send among 500 in about log2(500) rounds of writes', () => {
    const batch = Array.from({ length: 500 }, (_, i) => i);
    const bad = 337;
    const queue: number[][] = [batch];
    const stored: number[] = [];
    const refused: number[] = [];
    let writes = 0;
    while (queue.length > 0) {
      const fragment = queue.shift() as number[];
      writes += 1;
      if (!fragment.includes(bad)) {
        stored.push(...fragment);
        continue;
      }
      const halves = splitBatch(fragment);
      if (halves === undefined) refused.push(...fragment);
      else queue.unshift(...halves);
    }
    expect(refused).toEqual([bad]);
    expect(stored).toEqual(batch.filter((i) => i !== bad));
    expect(writes).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(500)) + 1);
  });
});
