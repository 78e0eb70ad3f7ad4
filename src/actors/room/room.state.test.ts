import { describe, expect, it } from 'vitest';
import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import { applyRead, applyTyping, planBatch, type RoomState, sendKey } from './room.state.js';

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
