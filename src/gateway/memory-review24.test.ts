/**
 * Review 24: room messages kept in memory are bounded by bytes, not only by count. One message is
 * not one size: a `meta` of 4 096 characters written as `{"a":[{},{},…]}` is ~90 KB of heap once
 * parsed (domain/rooms/message-size.ts). By count alone,
 * - a room subscription's recent run (64 messages) pinned ~6 MB per room with local joiners, for as
 *   long as anyone here stayed joined: one user joined to their 1 000 rooms, sending 64 such
 *   messages to each (at the rate limits, about a minute), put ~6 GB on a node's heap (its limit
 *   is ~4 GB): the node died, with every socket on it;
 * - the live messages held for one joiner catching up (10 000) could pin ~900 MB per join.
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import { CloseCode } from '../../protocol/src/codes.js';
import type { RoomMessage } from '../../protocol/src/frames.js';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import { estimatedMessageBytes } from '../domain/rooms/message-size.js';
import { testHeldConnection } from './connection-testing.js';
import { createHub, MAX_HELD_BYTES_PER_JOIN, MAX_HELD_PER_JOIN } from './hub.js';
import { RECENT_BYTES_PER_ROOM, RECENT_PER_ROOM, RecentMessages } from './room-joins.js';

const codec = createCodec();
const roomId = 'c0000000-0000-4000-8000-000000000024' as RoomId;
const userId = 'd0000000-0000-4000-8000-000000000024' as UserId;

/** The largest legal `meta` by heap: 4 096 characters of JSON, ~1 360 empty objects. */
function heavyMeta(): Record<string, unknown> {
  let json = '{"a":[';
  while (json.length < 4_086) json += '{},';
  return JSON.parse(`${json.slice(0, -1)}]}`) as Record<string, unknown>;
}

const message = (seq: number, heavy: boolean): RoomMessage => ({
  roomId,
  seq,
  senderId: 'a0000000-0000-4000-8000-000000000024' as UserId,
  clientMsgId: `m${seq}`,
  body: heavy ? 'x'.repeat(4_096) : `body ${seq}`,
  ...(heavy ? { meta: heavyMeta() } : {}),
  sentAt: new Date(0).toISOString(),
});

describe('the recent run of a room subscription (review 24)', () => {
  it('keeps at most RECENT_BYTES_PER_ROOM of messages: the oldest go first', () => {
    const recent = new RecentMessages(RECENT_PER_ROOM);
    for (let seq = 1; seq <= RECENT_PER_ROOM; seq++) recent.add(message(seq, true));
    // Not all 64 are kept any more; what is kept runs up to the newest and fits the bound.
    expect(recent.after(0)).toBeUndefined();
    let kept: RoomMessage[] = [];
    for (let since = RECENT_PER_ROOM - 1; since >= 0; since--) {
      const run = recent.after(since);
      if (run === undefined) break;
      kept = run;
    }
    expect(kept.reduce((sum, m) => sum + estimatedMessageBytes(m), 0)).toBeLessThanOrEqual(
      RECENT_BYTES_PER_ROOM,
    );
    if (kept.length > 0) expect(kept.at(-1)?.seq).toBe(RECENT_PER_ROOM);
  });

  it('still keeps RECENT_PER_ROOM ordinary messages, and never restarts at a late older one', () => {
    const recent = new RecentMessages(RECENT_PER_ROOM);
    for (let seq = 1; seq <= RECENT_PER_ROOM; seq++) recent.add(message(seq, false));
    expect(recent.after(0)?.length).toBe(RECENT_PER_ROOM);

    // A run emptied by one message over the bound alone: a late, older message does not start a
    // run it cannot vouch for (the seqs after it were delivered before).
    const alone = new RecentMessages(RECENT_PER_ROOM, 1_000);
    alone.add(message(1, false));
    alone.add(message(2, true));
    alone.add(message(1, false));
    expect(alone.after(0)).toBeUndefined();
    alone.add(message(3, false));
    expect(alone.after(2)?.map((m) => m.seq)).toEqual([3]);
    expect(alone.after(1)).toBeUndefined();
  });
});

describe('live messages held during a catch-up (review 24)', () => {
  it('closes the joiner 1013 once its held messages pass MAX_HELD_BYTES_PER_JOIN, long before the count', () => {
    const { connection, closes } = testHeldConnection(codec, userId);
    const hub = createHub(codec);
    hub.add(connection);
    hub.joinRoom(roomId, connection, 0); // still catching up: live messages are held
    const perMessage = estimatedMessageBytes(message(1, true));
    const fit = Math.floor(MAX_HELD_BYTES_PER_JOIN / perMessage);
    expect(fit).toBeLessThan(MAX_HELD_PER_JOIN / 10);
    for (let seq = 1; seq <= fit; seq++) hub.pushToRoom(roomId, { t: 'room.message', d: message(seq, true) });
    expect(closes).toEqual([]);
    hub.pushToRoom(roomId, { t: 'room.message', d: message(fit + 1, true) });
    expect(closes).toEqual([CloseCode.TRY_AGAIN_LATER]);
  });

  it('counts only what is still held: messages sent out in bursts make room again', () => {
    const { connection, closes } = testHeldConnection(codec, userId);
    const hub = createHub(codec);
    hub.add(connection);
    hub.joinRoom(roomId, connection, 0);
    const fit = Math.floor(MAX_HELD_BYTES_PER_JOIN / estimatedMessageBytes(message(1, true)));
    let seq = 0;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < fit; i++) {
        seq += 1;
        hub.pushToRoom(roomId, { t: 'room.message', d: message(seq, true) });
      }
      // The catch-up writes what is held (in bursts, all of it here) before more arrives.
      while (!hub.deliverHeld(roomId, connection, Number.POSITIVE_INFINITY)) {
        // every burst sends at least one message
      }
    }
    expect(closes).toEqual([]);
  });
});
