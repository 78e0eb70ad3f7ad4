/**
 * Scale review 20: a connection catching up with a room holds the room's live messages until its
 * backlog is out. A reader whose buffer goes down now and then never counts as stalled, so its
 * catch-up could last for ever while every message of a busy room stayed held for it. Past
 * MAX_HELD_PER_JOIN held messages it is now a slow consumer, closed 1013 (its client rejoins).
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import { CloseCode } from '../../protocol/src/codes.js';
import type { RoomMessage } from '../../protocol/src/frames.js';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import { testHeldConnection } from './connection-testing.js';
import { createHub, MAX_HELD_PER_JOIN } from './hub.js';

const codec = createCodec();
const roomId = 'c0000000-0000-4000-8000-000000000020' as RoomId;
const userId = 'd0000000-0000-4000-8000-000000000020' as UserId;

const message = (seq: number): RoomMessage => ({
  roomId,
  seq,
  senderId: 'a0000000-0000-4000-8000-000000000020' as UserId,
  clientMsgId: `m${seq}`,
  body: `body ${seq}`,
  sentAt: new Date(0).toISOString(),
});

describe('live messages held during a catch-up', () => {
  it('closes a connection 1013 once it would hold more than MAX_HELD_PER_JOIN', () => {
    const { connection, closes } = testHeldConnection(codec, userId);
    const hub = createHub(codec);
    hub.add(connection);
    hub.joinRoom(roomId, connection, 0); // still catching up: live messages are held
    for (let seq = 1; seq <= MAX_HELD_PER_JOIN; seq++) {
      hub.pushToRoom(roomId, { t: 'room.message', d: message(seq) });
    }
    expect(closes).toEqual([]);
    hub.pushToRoom(roomId, { t: 'room.message', d: message(MAX_HELD_PER_JOIN + 1) });
    expect(closes).toEqual([CloseCode.TRY_AGAIN_LATER]);
  });
});
