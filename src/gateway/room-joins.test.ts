/**
 * The recent messages a room's bus subscription keeps for rejoins: a run of consecutive seqs, so a
 * rejoin served from it can never skip a message; anything it cannot vouch for goes to the database.
 */
import { describe, expect, it } from 'vitest';
import type { RoomMessage } from '../../protocol/src/frames.js';
import { RecentMessages } from './room-joins.js';

const message = (seq: number) =>
  ({
    roomId: 'r',
    seq,
    senderId: 's',
    clientMsgId: `m${seq}`,
    body: `b${seq}`,
    sentAt: '2026-01-01T00:00:00.000Z',
  }) as unknown as RoomMessage;
const seqs = (messages: RoomMessage[] | undefined) => messages?.map((m) => m.seq);

describe('RecentMessages', () => {
  it('answers only from a run that reaches back to sinceSeq + 1', () => {
    const recent = new RecentMessages(8);
    expect(recent.after(0)).toBeUndefined();
    for (const seq of [5, 6, 7]) recent.add(message(seq));
    expect(seqs(recent.after(4))).toEqual([5, 6, 7]);
    expect(seqs(recent.after(6))).toEqual([7]);
    expect(seqs(recent.after(7))).toEqual([]);
    expect(seqs(recent.after(9))).toEqual([]);
    // Seq 4 was never seen here: the database must answer.
    expect(recent.after(3)).toBeUndefined();
  });

  it('starts again after a hole and ignores what it already holds', () => {
    const recent = new RecentMessages(8);
    for (const seq of [1, 2, 3, 2, 5, 4, 6]) recent.add(message(seq));
    // 4 came after 5 (reordered): the run restarted at 5, and the late 4 is not taken.
    expect(recent.after(3)).toBeUndefined();
    expect(seqs(recent.after(4))).toEqual([5, 6]);
  });

  it('keeps the newest `capacity` messages', () => {
    const recent = new RecentMessages(4);
    for (let seq = 1; seq <= 10; seq++) recent.add(message(seq));
    expect(recent.after(5)).toBeUndefined();
    expect(seqs(recent.after(6))).toEqual([7, 8, 9, 10]);
  });
});
