/**
 * Review 30: what one client frame costs the node to decode and check grew with the number of
 * values in it, and a 64 KiB frame holds tens of thousands: `presence.subscribe` with 60 000
 * `userIds`, or `room.send` with a `meta` array of 60 000 numbers, took 40–130 ms of the event loop
 * each (msgpack decoding, the JSON-value check, the schema collecting an issue per element) before
 * it was refused — and frames are decoded before the rate limit looks at them. Each socket may send
 * ~20 refused frames before it is closed, a user 20 sockets per node, an address 20 upgrades a
 * second: one account held a node's event loop for seconds at a time, for every user on it. No
 * valid frame comes near MAX_FRAME_VALUES (the largest `meta` holds ~2 050 values), so frames
 * beyond it are refused by their count, before anything is built from them or checked per value.
 */
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { createCodec } from './codec.js';
import { MAX_META_CHARS } from './frames.js';
import { MAX_FRAME_VALUES } from './json-value.js';
import { Encoding } from './version.js';

const codec = createCodec();
const packr = new Packr({ useRecords: false, variableMapSize: true });
const ROOM = '0f8fad5b-d9cb-469f-a165-70867728950e';
const USER = '1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed';

const both = (frame: Record<string, unknown>) => ({
  json: codec.decodeClient(JSON.stringify(frame), Encoding.JSON),
  msgpack: codec.decodeClient(packr.pack(frame), Encoding.MSGPACK),
});

describe('client frames hold at most MAX_FRAME_VALUES values (review 30)', () => {
  it.each([
    ['presence.subscribe userIds', { t: 'presence.subscribe', id: 4, d: { userIds: Array(20_000).fill(1) } }],
    ['jobs.watch skills', { t: 'jobs.watch', id: 4, d: { skills: Array(20_000).fill('x') } }],
    [
      'room.send meta',
      {
        t: 'room.send',
        id: 4,
        d: { roomId: ROOM, clientMsgId: 'c', body: 'b', meta: { a: Array(20_000).fill(0) } },
      },
    ],
    [
      'unknown envelope keys',
      Object.fromEntries([
        ['t', 'ping'],
        ['id', 4],
        ...Array.from({ length: 8_000 }, (_, i) => [`k${i}`, i]),
      ]),
    ],
  ])('refuses %s by their count, before anything is built from them', (_label, frame) => {
    // Refused by their count before the frame is read (so without its id), in both encodings.
    for (const refused of Object.values(both(frame))) {
      expect(refused).toEqual({
        ok: false,
        code: 'BAD_FRAME',
        message: `more than ${MAX_FRAME_VALUES} values`,
      });
    }
  });

  it('counts exactly once read: few commas, many values', () => {
    // `[[]],[[]],…`: two values per comma; the JSON-value check counts them before any schema does.
    const frame = { t: 'presence.subscribe', id: 4, d: { userIds: Array(2_100).fill([[]]) } };
    const { json, msgpack } = both(frame);
    expect(json).toMatchObject({ ok: false, code: 'VALIDATION_FAILED', id: 4 });
    if (!json.ok)
      expect(json.errors).toEqual([{ path: '', message: `more than ${MAX_FRAME_VALUES} values` }]);
    expect(msgpack).toMatchObject({
      ok: false,
      code: 'BAD_FRAME',
      message: `more than ${MAX_FRAME_VALUES} values`,
    });
  });

  it('still accepts the largest legal frames, with room to spare', () => {
    const numbers = { a: Array(Math.floor((MAX_META_CHARS - '{"a":[0]}'.length) / 2) + 1).fill(0) };
    let json = '{"a":[';
    while (json.length < MAX_META_CHARS - 4) json += '{},';
    const objects = JSON.parse(`${json.slice(0, -1)}]}`) as Record<string, unknown>;
    const keys = Object.fromEntries(Array.from({ length: 450 }, (_, i) => [`${i}`, 0]));
    for (const meta of [numbers, objects, keys]) {
      expect(JSON.stringify(meta).length).toBeLessThanOrEqual(MAX_META_CHARS);
      const { json: fromJson, msgpack } = both({
        t: 'room.send',
        id: 5,
        d: { roomId: ROOM, clientMsgId: 'c', body: 'b', meta },
      });
      expect(fromJson).toMatchObject({ ok: true });
      expect(msgpack).toMatchObject({ ok: true });
    }
    expect(numbers.a.length * 2).toBeLessThan(MAX_FRAME_VALUES);
    // Commas inside strings (escaped quotes around them included) are text, not separators.
    const commas = both({
      t: 'room.send',
      id: 5,
      d: {
        roomId: ROOM,
        clientMsgId: 'c',
        body: '",'.repeat(2_048),
        meta: { [',"\\,'.repeat(150)]: ','.repeat(3_100) },
      },
    });
    expect(commas.json).toMatchObject({ ok: true });
    expect(commas.msgpack).toMatchObject({ ok: true });
    const { json: ids, msgpack: packedIds } = both({
      t: 'presence.subscribe',
      id: 6,
      d: { userIds: Array(100).fill(USER) },
    });
    expect(ids).toMatchObject({ ok: true });
    expect(packedIds).toMatchObject({ ok: true });
  });

  it('leaves server frames alone: a history page may hold far more values', () => {
    const messages = Array.from({ length: 100 }, (_, i) => ({
      roomId: ROOM,
      seq: i + 1,
      senderId: USER,
      clientMsgId: `m${i}`,
      body: 'b',
      meta: { a: Array(100).fill(0) },
      sentAt: new Date(0).toISOString(),
    }));
    const frame = { t: 'ok', id: 7, d: { messages } } as never;
    expect(codec.decodeServer(codec.encode(frame, Encoding.MSGPACK), Encoding.MSGPACK)).toMatchObject({
      ok: true,
    });
    expect(codec.decodeServer(codec.encode(frame, Encoding.JSON), Encoding.JSON)).toMatchObject({ ok: true });
  });
});
