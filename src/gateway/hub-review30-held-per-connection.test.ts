/**
 * Review 30: the live messages a connection holds while it catches up were bounded per join only
 * (MAX_HELD_BYTES_PER_JOIN, review 24), and a connection may catch up with every room its user is a
 * member of at once (ROOMS_MAX_PER_USER, 1 000 by default). A join waits in its catch-up for the
 * socket's buffer to drain to the low-water mark (room-joins.ts `drained`), even one without
 * `sinceSeq` (its `finish` waits too), and a reader that reads a little now and then never counts
 * as stalled. So one account keeping its socket's buffer between the low-water mark and the bound,
 * joined to its 1 000 rooms, with its other sockets (or accounts) sending the largest legal
 * messages round the rooms, made the node hold up to 1 000 × 8 MiB for that one socket — past any
 * node's heap, and the node died with every socket on it. Now the bound holds per connection, over
 * all its joins together: past it the connection is a slow consumer, closed 1013, as one join past
 * its own bound is.
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import { CloseCode } from '../../protocol/src/codes.js';
import type { RoomMessage } from '../../protocol/src/frames.js';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import { estimatedMessageBytes } from '../domain/rooms/message-size.js';
import { testHeldConnection } from './connection-testing.js';
import { createHub, MAX_HELD_BYTES_PER_CONNECTION, MAX_HELD_BYTES_PER_JOIN } from './hub.js';

const codec = createCodec();
const userId = 'd0000000-0000-4000-8000-000000000300' as UserId;
const roomIds = [1, 2, 3, 4].map((n) => `c0000000-0000-4000-8000-00000000030${n}` as RoomId);

/** The largest legal `meta` by heap: 4 096 characters of JSON, ~1 360 empty objects. */
function heavyMeta(): Record<string, unknown> {
  let json = '{"a":[';
  while (json.length < 4_086) json += '{},';
  return JSON.parse(`${json.slice(0, -1)}]}`) as Record<string, unknown>;
}

const message = (roomId: RoomId, seq: number): RoomMessage => ({
  roomId,
  seq,
  senderId: 'a0000000-0000-4000-8000-000000000300' as UserId,
  clientMsgId: `m${seq}`,
  body: 'x'.repeat(4_096),
  meta: heavyMeta(),
  sentAt: new Date(0).toISOString(),
});

function harness() {
  const { connection, closes } = testHeldConnection(codec, userId, 'c-review30');
  const hub = createHub(codec);
  hub.add(connection);
  return { hub, connection, closes };
}

describe('live messages held during catch-ups, per connection (review 30)', () => {
  it('closes a connection 1013 once what all its joins hold passes the bound, though no join passes its own', () => {
    const { hub, connection, closes } = harness();
    // Every join still catching up (waiting for the socket to drain): live messages are held.
    for (const roomId of roomIds) hub.joinRoom(roomId, connection, 0);
    const perMessage = estimatedMessageBytes(message(roomIds[0] as RoomId, 1));
    // Each join stays under its own bound; together they are well past the connection's.
    const perJoin = Math.floor(MAX_HELD_BYTES_PER_JOIN / perMessage) - 1;
    expect(perJoin * perMessage * roomIds.length).toBeGreaterThan(2 * MAX_HELD_BYTES_PER_CONNECTION);
    let pushed = 0;
    for (let seq = 1; seq <= perJoin && closes.length === 0; seq++) {
      for (const roomId of roomIds) {
        hub.pushToRoom(roomId, { t: 'room.message', d: message(roomId, seq) });
        pushed += 1;
      }
    }
    expect(closes).toEqual([CloseCode.TRY_AGAIN_LATER]);
    expect(pushed * perMessage).toBeLessThanOrEqual(
      MAX_HELD_BYTES_PER_CONNECTION + roomIds.length * perMessage,
    );
    // Closing: nothing more is held for it while its transport reports the close.
    for (let seq = perJoin + 1; seq <= perJoin + 50; seq++) {
      for (const roomId of roomIds) hub.pushToRoom(roomId, { t: 'room.message', d: message(roomId, seq) });
    }
    expect(closes).toEqual([CloseCode.TRY_AGAIN_LATER]);
  });

  it('counts only what is still held: catch-ups that finish or send their held messages make room', () => {
    const { hub, connection, closes } = harness();
    const perMessage = estimatedMessageBytes(message(roomIds[0] as RoomId, 1));
    const perJoin = Math.floor(MAX_HELD_BYTES_PER_CONNECTION / perMessage / 2);
    let seq = 0;
    for (let round = 0; round < 3; round++) {
      for (const roomId of roomIds) {
        hub.joinRoom(roomId, connection, seq);
        for (let i = 1; i <= perJoin; i++) {
          hub.pushToRoom(roomId, { t: 'room.message', d: message(roomId, seq + i) });
        }
        // Half of them sent in bursts while catching up, the rest when it finishes.
        for (let sent = 0; sent < perJoin / 2; sent++) hub.deliverHeld(roomId, connection, 1);
        hub.finishCatchUp(roomId, connection);
      }
      seq += perJoin;
      // A join that left (or was replaced) while holding gives its share back too.
      hub.joinRoom(roomIds[0] as RoomId, connection, seq);
      for (let i = 1; i <= perJoin; i++) {
        hub.pushToRoom(roomIds[0] as RoomId, {
          t: 'room.message',
          d: message(roomIds[0] as RoomId, seq + i),
        });
      }
      hub.leaveRoom(roomIds[0] as RoomId, connection);
      seq += perJoin;
    }
    expect(closes).toEqual([]);
  });
});
