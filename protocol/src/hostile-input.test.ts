/**
 * Hostile input at the codec: every MessagePack extension type, nesting to the frame limit,
 * unpaired surrogates, U+0000, non-finite numbers and keys that name methods. Decoding must answer
 * with a code, never throw; encoding stored values must never throw or call what the data names.
 */
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { createCodec } from './codec.js';
import { ClientFrameType } from './frames.js';
import { findJsonProblem, MAX_JSON_DEPTH } from './json-value.js';
import { findMsgpackProblem } from './msgpack-scan.js';
import { Encoding } from './version.js';

const codec = createCodec();
const rawPackr = new Packr({ useRecords: false, variableMapSize: true });
const ROOM = '0f8fad5b-d9cb-469f-a165-70867728950e';

/** `{t:"room.send", id:1, d:{roomId, clientMsgId:"c", body:"b", meta:{x: <ext>}}}` with raw ext bytes spliced in. */
function sendWithMetaValue(valueBytes: Uint8Array): Uint8Array {
  const head = rawPackr.pack({
    t: 'room.send',
    id: 1,
    d: { roomId: ROOM, clientMsgId: 'c', body: 'b', meta: { x: 0 } },
  });
  // The marker value 0 (fixint 0x00) packs as the last byte: splice the hostile value in its place.
  return Buffer.concat([head.subarray(0, head.length - 1), valueBytes]);
}

function extensionEncodings(type: number): Uint8Array[] {
  const t = type & 0xff;
  return [
    Uint8Array.of(0xd4, t, 1),
    Uint8Array.of(0xd5, t, 1, 2),
    Uint8Array.of(0xd6, t, 0, 0, 0, 1),
    Uint8Array.of(0xd7, t, 0, 0, 0, 0, 0, 0, 0, 1),
    Uint8Array.of(0xd8, t, ...new Array(16).fill(1)),
    Uint8Array.of(0xc7, 3, t, 1, 2, 3),
    Uint8Array.of(0xc8, 0, 3, t, 1, 2, 3),
    Uint8Array.of(0xc9, 0, 0, 0, 3, t, 1, 2, 3),
  ];
}

describe('msgpack extension types are refused', () => {
  it('every type byte in every ext format, at top level and inside meta', () => {
    for (let type = -128; type <= 127; type++) {
      for (const ext of extensionEncodings(type)) {
        const top = codec.decodeClient(ext, Encoding.MSGPACK);
        expect(top.ok).toBe(false);
        const nested = codec.decodeClient(sendWithMetaValue(ext), Encoding.MSGPACK);
        expect(nested.ok, `ext type ${type}`).toBe(false);
        if (!nested.ok) expect(nested.code).toBe('BAD_FRAME');
      }
    }
  });

  it('the BigInt extension (0x42) that used to stop the node', () => {
    const result = codec.decodeClient(sendWithMetaValue(Uint8Array.of(0xd4, 0x42, 0x01)), Encoding.MSGPACK);
    expect(result).toMatchObject({ ok: false, code: 'BAD_FRAME' });
  });

  it('non-string map keys, 0xc1 and trailing bytes', () => {
    expect(findMsgpackProblem(Uint8Array.of(0x81, 0x01, 0x02), 8)).toMatch(/keys must be strings/);
    expect(findMsgpackProblem(Uint8Array.of(0x81, 0x91, 0x01, 0x02), 8)).toMatch(/keys must be strings/);
    expect(findMsgpackProblem(Uint8Array.of(0xc1), 8)).toMatch(/0xc1/);
    expect(findMsgpackProblem(Uint8Array.of(0x01, 0x02), 8)).toMatch(/trailing/);
    expect(findMsgpackProblem(Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff), 8)).toMatch(/truncated/);
    expect(
      findMsgpackProblem(rawPackr.pack({ a: [1, 'x', { b: null }], c: 1.5, d: -3, e: 2 ** 40 }), 8),
    ).toBeUndefined();
  });
});

describe('nesting up to the frame limit', () => {
  const deepArrayMsgpack = (levels: number) => Buffer.concat([Buffer.alloc(levels, 0x91), Buffer.of(0x01)]);
  const deepJson = (levels: number) => `${'['.repeat(levels)}1${']'.repeat(levels)}`;

  it('every client frame type, as deep as a 64 KiB frame allows, both encodings', () => {
    for (const t of Object.values(ClientFrameType)) {
      for (const levels of [MAX_JSON_DEPTH, 1_000, 5_000, 60_000]) {
        const json = `{"t":"${t}","id":7,"d":{"roomId":"${ROOM}","meta":${deepJson(levels)}}}`;
        const fromJson = codec.decodeClient(json, Encoding.JSON);
        expect(fromJson).toMatchObject({ ok: false, id: 7 });
        const head = rawPackr.pack({ t, id: 7, d: { x: 0 } });
        const msgpack = Buffer.concat([head.subarray(0, head.length - 1), deepArrayMsgpack(levels)]);
        expect(codec.decodeClient(msgpack, Encoding.MSGPACK).ok).toBe(false);
      }
    }
  });

  it('meta within the caps still passes', () => {
    const meta = { a: { b: { c: [1, 2, { d: 'ok' }] } } };
    const frame = { t: 'room.send', id: 2, d: { roomId: ROOM, clientMsgId: 'c', body: 'hi', meta } };
    expect(codec.decodeClient(JSON.stringify(frame), Encoding.JSON)).toMatchObject({ ok: true });
    expect(codec.decodeClient(rawPackr.pack(frame), Encoding.MSGPACK)).toMatchObject({ ok: true });
  });
});

describe('strings PostgreSQL cannot store are refused in every field', () => {
  const cases = ['\ud800', 'a\udfffb', '\u0000', 'x\u0000'];
  it.each(cases)('%j in body, meta value, meta key and clientMsgId', (bad) => {
    const variants = [
      { roomId: ROOM, clientMsgId: 'c', body: bad },
      { roomId: ROOM, clientMsgId: 'c', body: 'b', meta: { k: bad } },
      { roomId: ROOM, clientMsgId: 'c', body: 'b', meta: { [bad]: 1 } },
      { roomId: ROOM, clientMsgId: bad, body: 'b' },
    ];
    for (const d of variants) {
      const frame = { t: 'room.send', id: 3, d };
      expect(codec.decodeClient(JSON.stringify(frame), Encoding.JSON)).toMatchObject({
        ok: false,
        code: 'VALIDATION_FAILED',
        id: 3,
      });
      // msgpackr writes a lone surrogate as U+FFFD (well-formed); U+0000 survives and is refused.
      const fromMsgpack = codec.decodeClient(rawPackr.pack(frame), Encoding.MSGPACK);
      if (bad.includes('\u0000')) expect(fromMsgpack).toMatchObject({ ok: false, code: 'VALIDATION_FAILED' });
      else expect(findJsonProblem(fromMsgpack.ok ? fromMsgpack.frame : {})).toBeUndefined();
    }
  });

  it('CESU-8 surrogate bytes in a msgpack string never reach a handler as an unpaired surrogate', () => {
    const head = rawPackr.pack({ t: 'room.send', id: 6, d: { roomId: ROOM, clientMsgId: 'c', body: 'xyz' } });
    const at = head.indexOf(Buffer.from([0xa3, 0x78, 0x79, 0x7a]));
    const wire = Buffer.from(head);
    wire.set([0xa3, 0xed, 0xa0, 0x80], at);
    expect(codec.decodeClient(wire, Encoding.MSGPACK)).toMatchObject({ ok: false, code: 'BAD_FRAME' });
    // Overlong, truncated and stray continuation bytes too; valid multi-byte text passes.
    for (const bad of [
      [0xc0, 0xaf, 0x78],
      [0xe2, 0x82, 0x78],
      [0x80, 0x78, 0x79],
    ]) {
      wire.set([0xa3, ...bad], at);
      expect(codec.decodeClient(wire, Encoding.MSGPACK)).toMatchObject({ ok: false, code: 'BAD_FRAME' });
    }
    wire.set([0xa3, 0xe2, 0x82, 0xac], at);
    expect(codec.decodeClient(wire, Encoding.MSGPACK)).toMatchObject({ ok: true });
  });

  it('well-formed astral characters pass', () => {
    const frame = {
      t: 'room.send',
      id: 4,
      d: { roomId: ROOM, clientMsgId: 'c', body: '😀 ok', meta: { e: '𝄞' } },
    };
    expect(codec.decodeClient(JSON.stringify(frame), Encoding.JSON).ok).toBe(true);
  });
});

describe('non-JSON values', () => {
  it('NaN, Infinity and binary in meta are VALIDATION_FAILED', () => {
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, new Uint8Array([1, 2])]) {
      const frame = {
        t: 'room.send',
        id: 5,
        d: { roomId: ROOM, clientMsgId: 'c', body: 'b', meta: { v: value } },
      };
      expect(codec.decodeClient(rawPackr.pack(frame), Encoding.MSGPACK)).toMatchObject({
        ok: false,
        code: 'VALIDATION_FAILED',
      });
    }
  });

  it('findJsonProblem names the path and survives a million-element array', () => {
    expect(findJsonProblem({ a: [1, { b: Number.NaN }] })).toEqual({
      path: 'a.1.b',
      message: 'must be a finite number',
    });
    expect(findJsonProblem(new Array(1_000_000).fill(1))).toBeUndefined();
    expect(findJsonProblem({ when: new Date() })?.path).toBe('when');
  });
});

describe('encoding stored values never throws nor calls what the data names', () => {
  const hostileMeta = [
    { constructor: 'x', toJSON: 'y' },
    { constructor: { name: 'Map' } },
    JSON.parse('{"__proto__": {"polluted": true}, "then": "z", "valueOf": 1, "toString": []}'),
    { s: 'lone \ud800 surrogate' },
    (() => {
      let deep: unknown = 1;
      for (let i = 0; i < 10_000; i++) deep = [deep];
      return { deep };
    })(),
  ];
  it.each(hostileMeta.map((meta, index) => [index, meta]))(
    'case %i, both encodings, decodable by the SDK',
    (_index, meta) => {
      const frame = {
        t: 'room.message' as const,
        d: {
          roomId: ROOM,
          seq: 1,
          senderId: ROOM,
          clientMsgId: 'c',
          body: 'b\udc00',
          meta,
          sentAt: new Date(0).toISOString(),
        },
      };
      for (const encoding of [Encoding.JSON, Encoding.MSGPACK] as const) {
        const wire = codec.encode(frame as never, encoding);
        const back = codec.decodeServer(wire, encoding);
        expect(back.ok, `encoding ${encoding}`).toBe(true);
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    },
  );
});
