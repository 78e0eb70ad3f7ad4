/**
 * Review 30: `meta` is stored as PostgreSQL jsonb, whose numbers are `numeric` and are written out
 * in full when read back: `1e308` comes back as a 1 followed by 308 zeros, `1e-300` as `0.` and 299
 * zeros and a 1. The 4 096-character bound measured JavaScript's JSON, so a member could store ~580
 * such numbers per message (~180 KB per row as the database sends it, 45 times the bound): every
 * later reader of the room (a join's 200-row backlog page, a history page, GET /v1/rooms' last
 * messages) made PostgreSQL print and the node receive and parse tens of megabytes per page, the
 * event loop held for everyone meanwhile. A number now counts as its digits written out in full.
 */
import { describe, expect, it } from 'vitest';
import { createCodec } from './codec.js';
import { MAX_META_CHARS } from './frames.js';
import { Encoding } from './version.js';

const codec = createCodec();
const roomId = 'c0000000-0000-4000-8000-000000000300';

const send = (meta: Record<string, unknown>) =>
  codec.decodeClient(
    JSON.stringify({ t: 'room.send', id: 7, d: { roomId, clientMsgId: 'm1', body: 'hi', meta } }),
    Encoding.JSON,
  );

describe('room.send meta numbers, as the database writes them (review 30)', () => {
  it('refuses a meta whose numbers written out in full pass the bound, on both encodings', () => {
    const meta = { a: Array.from({ length: 500 }, () => 1e308) };
    expect(JSON.stringify(meta).length).toBeLessThan(MAX_META_CHARS);
    const refused = send(meta);
    expect(refused).toMatchObject({ ok: false, code: 'VALIDATION_FAILED', id: 7 });
    if (!refused.ok) expect(refused.errors?.[0]?.path).toBe('d.meta');
    const packed = codec.decodeClient(
      codec.encode(
        { t: 'room.send', id: 8, d: { roomId, clientMsgId: 'm1', body: 'hi', meta } } as never,
        Encoding.MSGPACK,
      ),
      Encoding.MSGPACK,
    );
    expect(packed).toMatchObject({ ok: false, code: 'VALIDATION_FAILED', id: 8 });
    // Tiny numbers alike: 1e-300 is written as 0.000…1 (302 characters).
    expect(send({ a: Array.from({ length: 500 }, () => -1.5e-300) })).toMatchObject({
      ok: false,
      code: 'VALIDATION_FAILED',
    });
  });

  it('accepts ordinary numbers, and counts a long number by its digits', () => {
    expect(
      send({ replyToSeq: 42, price: 19.99, ratio: 1e-6, big: Number.MAX_SAFE_INTEGER, neg: -0.5, e: 1e20 }),
    ).toMatchObject({ ok: true });
    // 1e21 is written as 22 digits: `{"a":[…]}` holds 177 of them in 4 096 characters, not 178.
    expect(send({ a: Array.from({ length: 177 }, () => 1e21) })).toMatchObject({ ok: true });
    expect(send({ a: Array.from({ length: 178 }, () => 1e21) })).toMatchObject({ ok: false });
    // Numbers JavaScript writes out in full already count the same as before: the bound is unchanged.
    const atBound = { x: 'a'.repeat(MAX_META_CHARS - '{"x":"","n":1234567890}'.length), n: 1234567890 };
    expect(JSON.stringify(atBound).length).toBe(MAX_META_CHARS);
    expect(send(atBound)).toMatchObject({ ok: true });
  });
});
