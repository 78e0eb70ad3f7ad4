/** Frames, codec, negotiation and close codes; reads protocol/schema.json to prove it fresh. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type AnyFrame, createCodec, type DecodeResult, errorReplyFor } from './codec.js';
import { CloseAction, CloseCode, closeAction, ErrorCode } from './codes.js';
import {
  buildProtocolSchema,
  type ClientFrame,
  ClientFrameType,
  ErrorReply,
  MAX_REQUEST_ID,
  ReplyPayloads,
  type ServerFrame,
} from './frames.js';
import { Encoding, negotiateEncoding, parseSubprotocols, SUBPROTOCOL, Subprotocol } from './version.js';

const userA = '5d2c8f3a-9b1e-4c7d-8a6f-2e4b9c1d7a35';
const userB = 'a3e1f9b2-6c4d-4e8a-b7f1-9d2c5e8a3b60';
const now = 1_767_225_600_000;

const clientFrames: readonly ClientFrame[] = [
  { t: 'ping' },
  { t: 'ping', id: 0 },
  { t: 'ping', id: MAX_REQUEST_ID, d: {} },
  { t: 'auth.refresh', id: 7, d: { accessToken: 'a.b.c' } },
  { t: 'presence.subscribe', id: 8, d: { userIds: [userA, userB] } } as ClientFrame,
  { t: 'presence.unsubscribe', d: { userIds: [userB] } } as ClientFrame,
];

const serverFrames: readonly ServerFrame[] = [
  {
    t: 'hello',
    d: {
      connectionId: 'gw-1.1',
      userId: userA,
      serverTime: now,
      heartbeatMs: 30_000,
      protocolVersion: 1,
      encoding: 'json',
      limits: { maxFrameBytes: 65_536, maxMessagesPerSecond: 50, maxBurst: 100, maxBufferedBytes: 1_048_576 },
    },
  } as ServerFrame,
  { t: 'ok', id: 1, d: { serverTime: now } },
  { t: 'ok', id: 2 },
  { t: 'error', id: 3, d: { code: 'FORBIDDEN', message: 'not a contact', details: { userIds: [userB] } } },
  { t: 'error', d: { code: 'BAD_FRAME', message: 'frame is not valid JSON' } },
  {
    t: 'presence',
    d: { userId: userB, status: 'offline', lastSeenAt: '2026-01-01T00:00:00.000Z' },
  } as ServerFrame,
  { t: 'presence', d: { userId: userA, status: 'online', lastSeenAt: null } } as ServerFrame,
  {
    t: 'notification',
    d: {
      id: 'n-1',
      kind: 'bid.received',
      title: 'New bid',
      body: 'Héllo ✓ 🎉',
      data: { nested: { list: [1, -1, 2 ** 40, -(2 ** 40), 0.5, null, true, 'x'] } },
      createdAt: '2026-01-01T00:00:00.000+01:00',
    },
  },
  { t: 'pong', d: { serverTime: now } },
];

const hex = (bytes: Uint8Array): string =>
  Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
const fromHex = (text: string): Uint8Array =>
  Uint8Array.from(text.match(/../g) ?? [], (pair) => Number.parseInt(pair, 16));
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Small deterministic PRNG (mulberry32), so a fuzz failure reproduces. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function failed<F>(result: DecodeResult<F>) {
  if (result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result.frame)}`);
  return result;
}

describe('negotiateEncoding', () => {
  it('defaults to msgpack and echoes nothing when none of ours is offered', () => {
    expect(negotiateEncoding(undefined)).toEqual({ encoding: 'msgpack', subprotocol: null });
    expect(negotiateEncoding([])).toEqual({ encoding: 'msgpack', subprotocol: null });
    expect(negotiateEncoding('chat, superchat')).toEqual({ encoding: 'msgpack', subprotocol: null });
  });

  it('ignores the bearer.<jwt> entry a browser sends with the encoding', () => {
    expect(negotiateEncoding('bearer.eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln')).toEqual({
      encoding: 'msgpack',
      subprotocol: null,
    });
    expect(negotiateEncoding('bearer.eyJ0.eyJ1.c2ln, gigwire.v1.json')).toEqual({
      encoding: 'json',
      subprotocol: 'gigwire.v1.json',
    });
    expect(negotiateEncoding(['gigwire.v1.msgpack', 'bearer.a.b.c'])).toEqual({
      encoding: 'msgpack',
      subprotocol: 'gigwire.v1.msgpack',
    });
  });

  it("follows the client's order and matches names exactly", () => {
    expect(negotiateEncoding(['gigwire.v1.json', 'gigwire.v1.msgpack']).encoding).toBe('json');
    expect(negotiateEncoding(['gigwire.v1.msgpack', 'gigwire.v1.json']).encoding).toBe('msgpack');
    expect(negotiateEncoding(['GIGWIRE.V1.JSON', 'gigwire.v2.json'])).toEqual({
      encoding: 'msgpack',
      subprotocol: null,
    });
    expect(negotiateEncoding(['__proto__', 'constructor']).subprotocol).toBeNull();
  });

  it('parses a Sec-WebSocket-Protocol header value', () => {
    expect(parseSubprotocols(' a ,, b,c ')).toEqual(['a', 'b', 'c']);
    expect(parseSubprotocols('')).toEqual([]);
    expect(parseSubprotocols(undefined)).toEqual([]);
  });

  it('names one subprotocol per encoding', () => {
    expect(SUBPROTOCOL).toEqual({ msgpack: 'gigwire.v1.msgpack', json: 'gigwire.v1.json' });
    expect(Object.values(Subprotocol).map((name) => negotiateEncoding([name]).subprotocol)).toEqual(
      Object.values(Subprotocol),
    );
  });
});

describe('closeAction', () => {
  it.each([
    [1000, 'stop'],
    [1001, 'reconnect'],
    [1002, 'stop'],
    [1005, 'reconnect'],
    [1006, 'reconnect'],
    [1007, 'stop'],
    [1008, 'stop'],
    [1009, 'stop'],
    [1011, 'reconnect'],
    [1012, 'reconnect'],
    [1013, 'reconnect'],
    [1014, 'reconnect'],
    [1015, 'reconnect'],
    [3000, 'reconnect'],
    [4001, 'reauthenticate'],
    [4099, 'reauthenticate'],
    [4100, 'reconnect'],
    [4499, 'reconnect'],
    [4500, 'stop'],
    [4999, 'stop'],
    [0, 'reconnect'],
    [999, 'reconnect'],
    [5000, 'reconnect'],
  ] as const)('close %i → %s', (code, action) => {
    expect(closeAction(code)).toBe(action);
  });

  it('has a decided action for every CloseCode', () => {
    for (const code of Object.values(CloseCode)) {
      expect(Object.values(CloseAction)).toContain(closeAction(code));
    }
  });
});

describe('codec round trips', () => {
  const codec = createCodec();

  it('lower-cases ids as it decodes them: the server compares and keys ids as lower-case strings', () => {
    const roomId = '6F1D2C3B-4A59-4E68-9D7C-8B1A2F3E4D5C';
    for (const encoding of ['json', 'msgpack'] as const) {
      const join = codec.decodeClient(
        codec.encode({ t: 'room.join', id: 1, d: { roomId } } as ClientFrame, encoding),
        encoding,
      );
      expect(join).toMatchObject({ ok: true, frame: { d: { roomId: roomId.toLowerCase() } } });
      const subscribe = codec.decodeClient(
        codec.encode(
          { t: 'presence.subscribe', id: 2, d: { userIds: [userA.toUpperCase()] } } as ClientFrame,
          encoding,
        ),
        encoding,
      );
      expect(subscribe).toMatchObject({ ok: true, frame: { d: { userIds: [userA] } } });
    }
  });

  it.each(clientFrames.map((frame) => [frame.t, frame] as const))(
    'client %s in msgpack and json',
    (_, frame) => {
      const bytes = codec.encode(frame, 'msgpack');
      expect(bytes).toBeInstanceOf(Uint8Array);
      expect(codec.decodeClient(bytes, 'msgpack')).toEqual({ ok: true, frame });
      const text = codec.encode(frame, 'json');
      expect(typeof text).toBe('string');
      expect(codec.decodeClient(text, 'json')).toEqual({ ok: true, frame });
    },
  );

  it.each(serverFrames.map((frame) => [frame.t, frame] as const))(
    'server %s in msgpack and json',
    (_, frame) => {
      expect(codec.decodeServer(codec.encode(frame, 'msgpack'), 'msgpack')).toEqual({ ok: true, frame });
      expect(codec.decodeServer(codec.encode(frame, 'json'), 'json')).toEqual({ ok: true, frame });
    },
  );

  it('decodes an ArrayBuffer (how uWebSockets.js hands over a message) and a subarray view', () => {
    const frame: ClientFrame = { t: 'ping', id: 42 };
    const bytes = codec.encode(frame, 'msgpack');
    const buffer = new ArrayBuffer(bytes.length);
    new Uint8Array(buffer).set(bytes);
    expect(codec.decodeClient(buffer, 'msgpack')).toEqual({ ok: true, frame });
    const padded = new Uint8Array(bytes.length + 4);
    padded.set(bytes, 2);
    expect(codec.decodeClient(padded.subarray(2, 2 + bytes.length), 'msgpack')).toEqual({ ok: true, frame });
  });

  it('encodes the same frame identically on every call (one buffer reused safely)', () => {
    const first = codec.encode({ t: 'pong', d: { serverTime: now } }, 'msgpack');
    const firstHex = hex(first);
    codec.encode(serverFrames[0] as ServerFrame, 'msgpack');
    expect(hex(first)).toBe(firstHex);
    expect(hex(codec.encode({ t: 'pong', d: { serverTime: now } }, 'msgpack'))).toBe(firstHex);
  });

  it('leaves out undefined values in both encodings, as JSON does', () => {
    const frame = { t: 'ok', id: 1, d: undefined } as AnyFrame;
    expect(codec.encode(frame, 'json')).toBe('{"t":"ok","id":1}');
    expect(hex(codec.encode(frame, 'msgpack'))).toBe(hex(codec.encode({ t: 'ok', id: 1 }, 'msgpack')));
  });
});

describe('msgpack is standard MessagePack', () => {
  const codec = createCodec();

  it('writes maps with fixmap headers and ms timestamps as int64, not float64 or records', () => {
    // {"t":"pong","d":{"serverTime":1767225600000}}: 0x82 fixmap, 0xd3 int64; no 0xd4/0xd5 records.
    expect(hex(codec.encode({ t: 'pong', d: { serverTime: now } }, 'msgpack'))).toBe(
      '82a174a4706f6e67a16481aa73657276657254696d65d30000019b76daa800',
    );
  });

  it("reads what Python's msgpack writes (uint64 for large ints)", () => {
    // msgpack.packb({'t':'ok','id':7,'d':{'serverTime':1767225600000}}) with Python msgpack 1.0.3
    const python = fromHex('83a174a26f6ba2696407a16481aa73657276657254696d65cf0000019b76daa800');
    expect(codec.decodeServer(python, 'msgpack')).toEqual({
      ok: true,
      frame: { t: 'ok', id: 7, d: { serverTime: now } },
    });
    // msgpack.packb({'t':'ping','id':7,'d':{}})
    expect(codec.decodeClient(fromHex('83a174a470696e67a2696407a16480'), 'msgpack')).toEqual({
      ok: true,
      frame: { t: 'ping', id: 7, d: {} },
    });
  });

  it('keeps a __proto__ key of user data as an ordinary key', () => {
    const data = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}') as Record<string, unknown>;
    const frame = {
      t: 'notification',
      d: { id: 'n', kind: 'k', title: '', body: '', data, createdAt: '2026-01-01T00:00:00Z' },
    } as ServerFrame;
    const bytes = codec.encode(frame, 'msgpack');
    expect(hex(bytes)).toContain(hex(utf8('__proto__')));
    expect(codec.decodeServer(bytes, 'msgpack').ok).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('decodeClient never throws', () => {
  const codec = createCodec();

  it('refuses a binary frame on a json connection and a text frame on a msgpack one', () => {
    const json = codec.encode({ t: 'ping', id: 1 }, 'json');
    expect(failed(codec.decodeClient(json, 'msgpack')).code).toBe('BAD_FRAME');
    expect(failed(codec.decodeClient(utf8(json), 'json')).code).toBe('BAD_FRAME');
    expect(failed(codec.decodeClient(codec.encode({ t: 'ping', id: 1 }, 'msgpack'), 'json')).code).toBe(
      'BAD_FRAME',
    );
  });

  it.each([
    ['empty', ''],
    ['never-used byte 0xc1', 'c1'],
    ['truncated map', '82a174a470696e'],
    ['trailing bytes', '81a174a470696e6700'],
    ['reserved ext (records)', 'd47240'],
    ['str32 claiming 4 GiB', 'dbffffffff61'],
    ['array32 claiming 4G items', 'ddffffffff'],
  ])('garbage msgpack: %s → BAD_FRAME', (_, bytes) => {
    const result = failed(codec.decodeClient(fromHex(bytes), 'msgpack'));
    expect(result.code).toBe('BAD_FRAME');
    expect(result.id).toBeUndefined();
  });

  it('survives nesting deep enough to overflow the stack', () => {
    const deep = new Uint8Array(300_001).fill(0x91);
    deep[deep.length - 1] = 0xc0;
    expect(failed(codec.decodeClient(deep, 'msgpack')).code).toBe('BAD_FRAME');
    const deepJson = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    expect(failed(codec.decodeClient(deepJson, 'json')).code).toBe('BAD_FRAME');
    expect(codec.decodeClient(codec.encode({ t: 'ping', id: 9 }, 'msgpack'), 'msgpack').ok).toBe(true);
  });

  it.each([
    ['nil', 'c0'],
    ['integer', '2a'],
    ['string', 'a470696e67'],
    ['array', '92a474a470'],
    ['timestamp extension', 'd6ff00000001'],
    ['binary', 'c40101'],
  ])('non-object msgpack: %s → BAD_FRAME', (_, bytes) => {
    expect(failed(codec.decodeClient(fromHex(bytes), 'msgpack')).code).toBe('BAD_FRAME');
  });

  it.each(['', '{', '42', 'null', '[]', '"ping"', 'true', '{"t":"ping"} {}'])(
    'non-object json %j → BAD_FRAME',
    (text) => {
      expect(failed(codec.decodeClient(text, 'json')).code).toBe('BAD_FRAME');
    },
  );

  it('refuses an envelope without a string t, recovering a readable id', () => {
    expect(failed(codec.decodeClient('{"id":4}', 'json'))).toMatchObject({ code: 'BAD_FRAME', id: 4 });
    expect(failed(codec.decodeClient('{"t":5,"id":4}', 'json'))).toMatchObject({ code: 'BAD_FRAME', id: 4 });
    expect(failed(codec.decodeClient('{"t":"ping","id":null}', 'json')).id).toBeUndefined();
  });

  it.each(['-1', '1.5', String(MAX_REQUEST_ID + 1), '"1"', 'null', '[]'])(
    'id %s is unreadable → BAD_FRAME without id',
    (id) => {
      const result = failed(codec.decodeClient(`{"t":"ping","id":${id}}`, 'json'));
      expect(result.code).toBe('BAD_FRAME');
      expect(result.id).toBeUndefined();
    },
  );

  it.each(['room.explode', 'hello', 'ok', 'error', 'pong', 'constructor', '__proto__', 'toString', ''])(
    'unknown type %j → UNKNOWN_TYPE with the id',
    (t) => {
      const result = failed(
        codec.decodeClient(codec.encode({ t, id: 11 } as unknown as AnyFrame, 'msgpack'), 'msgpack'),
      );
      expect(result).toMatchObject({ code: 'UNKNOWN_TYPE', id: 11 });
    },
  );

  it.each([
    ['bad uuid', { t: 'presence.subscribe', id: 5, d: { userIds: ['x'] } }, 'd.userIds.0'],
    ['empty list', { t: 'presence.subscribe', id: 5, d: { userIds: [] } }, 'd.userIds'],
    ['101 ids', { t: 'presence.subscribe', id: 5, d: { userIds: Array(101).fill(userA) } }, 'd.userIds'],
    ['missing d', { t: 'presence.unsubscribe', id: 5 }, 'd'],
    ['unknown key in d', { t: 'auth.refresh', id: 5, d: { accessToken: 'x', extra: 1 } }, 'd'],
    ['unknown envelope key', { t: 'ping', id: 5, x: 1 }, ''],
    ['d null on ping', { t: 'ping', id: 5, d: null }, 'd'],
    ['empty token', { t: 'auth.refresh', id: 5, d: { accessToken: '' } }, 'd.accessToken'],
    [
      'token of 4097 characters',
      { t: 'auth.refresh', id: 5, d: { accessToken: 'a'.repeat(4097) } },
      'd.accessToken',
    ],
  ])('invalid payload (%s) → VALIDATION_FAILED with the id and the field', (_, frame, path) => {
    for (const encoding of Object.values(Encoding)) {
      const result = failed(
        codec.decodeClient(codec.encode(frame as unknown as AnyFrame, encoding), encoding),
      );
      expect(result).toMatchObject({ code: 'VALIDATION_FAILED', id: 5 });
      expect(result.errors?.[0]?.path).toBe(path);
      expect(result.message).toContain(path === '' ? 'frame' : path);
    }
  });

  it('accepts a token of exactly 4096 characters', () => {
    const frame: ClientFrame = { t: 'auth.refresh', id: 1, d: { accessToken: 'a'.repeat(4096) } };
    expect(codec.decodeClient(codec.encode(frame, 'msgpack'), 'msgpack')).toEqual({ ok: true, frame });
  });

  it('bounds what it echoes from oversize input', () => {
    const longType = failed(codec.decodeClient(JSON.stringify({ t: 'x'.repeat(60_000), id: 1 }), 'json'));
    expect(longType.code).toBe('UNKNOWN_TYPE');
    expect(longType.message.length).toBeLessThan(120);
    const manyBad = failed(
      codec.decodeClient(
        JSON.stringify({ t: 'presence.subscribe', id: 2, d: { userIds: Array(100).fill('y'.repeat(500)) } }),
        'json',
      ),
    );
    expect(manyBad.errors).toHaveLength(10);
    expect(JSON.stringify(errorReplyFor(manyBad)).length).toBeLessThan(2_000);
  });

  it('does not let a __proto__ key through or pollute prototypes', () => {
    const result = failed(codec.decodeClient('{"t":"ping","id":3,"__proto__":{"polluted":true}}', 'json'));
    expect(result).toMatchObject({ code: 'VALIDATION_FAILED', id: 3 });
    const packed = fromHex(`83a174a470696e67a2696403a95f5f70726f746f5f5f81a870${hex(utf8('olluted'))}c3`);
    expect(codec.decodeClient(packed, 'msgpack').ok).toBe(false);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('fuzz: random and mutated frames decode to a result, never an exception', () => {
    const next = random(20_260_101);
    const valid = clientFrames.map((frame) => codec.encode(frame, 'msgpack'));
    const codes = new Set<string>([ErrorCode.BAD_FRAME, ErrorCode.UNKNOWN_TYPE, ErrorCode.VALIDATION_FAILED]);
    for (let round = 0; round < 5_000; round += 1) {
      let bytes: Uint8Array;
      if (round % 2 === 0) {
        bytes = Uint8Array.from({ length: Math.floor(next() * 48) }, () => Math.floor(next() * 256));
      } else {
        bytes = Uint8Array.from(valid[round % valid.length] as Uint8Array);
        const flips = 1 + Math.floor(next() * 3);
        for (let i = 0; i < flips; i += 1)
          bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
      }
      const result = codec.decodeClient(bytes, 'msgpack');
      if (!result.ok) expect(codes.has(result.code)).toBe(true);
      const text = new TextDecoder().decode(bytes);
      expect(() => codec.decodeClient(text, 'json')).not.toThrow();
    }
    expect(codec.decodeClient(valid[0] as Uint8Array, 'msgpack').ok).toBe(true);
  });
});

describe('decodeServer (SDK side)', () => {
  const codec = createCodec();

  it('reports an unknown push type as UNKNOWN_TYPE so the client can skip it', () => {
    expect(failed(codec.decodeServer('{"t":"room.explode","d":{}}', 'json')).code).toBe('UNKNOWN_TYPE');
    expect(failed(codec.decodeServer('{"t":"ping","id":1}', 'json')).code).toBe('UNKNOWN_TYPE');
  });

  it('reads an error code it does not know as INTERNAL', () => {
    const result = codec.decodeServer(
      '{"t":"error","id":3,"d":{"code":"SOMETHING_NEW","message":"m"}}',
      'json',
    );
    expect(result).toEqual({ ok: true, frame: { t: 'error', id: 3, d: { code: 'INTERNAL', message: 'm' } } });
  });

  it('drops fields added by a newer server', () => {
    const result = codec.decodeServer('{"t":"pong","d":{"serverTime":1,"region":"eu"},"trace":"x"}', 'json');
    expect(result).toEqual({ ok: true, frame: { t: 'pong', d: { serverTime: 1 } } });
  });

  it('refuses an ok reply without id and garbage', () => {
    expect(failed(codec.decodeServer('{"t":"ok"}', 'json')).code).toBe('VALIDATION_FAILED');
    expect(failed(codec.decodeServer(fromHex('c1'), 'msgpack')).code).toBe('BAD_FRAME');
    expect(failed(codec.decodeServer('{}', 'msgpack')).code).toBe('BAD_FRAME');
  });
});

describe('errorReplyFor', () => {
  const codec = createCodec();

  it('answers with the id and the field errors, as a valid ErrorReply', () => {
    const result = failed(
      codec.decodeClient('{"t":"presence.subscribe","id":5,"d":{"userIds":["x"]}}', 'json'),
    );
    const reply = errorReplyFor(result);
    expect(reply).toEqual({
      t: 'error',
      id: 5,
      d: {
        code: 'VALIDATION_FAILED',
        message: 'invalid "presence.subscribe" frame: d.userIds.0: Invalid UUID',
        details: { errors: [{ path: 'd.userIds.0', message: 'Invalid UUID' }] },
      },
    });
    expect(ErrorReply.parse(reply)).toEqual(reply);
    expect(codec.decodeServer(codec.encode(reply, 'msgpack'), 'msgpack')).toEqual({ ok: true, frame: reply });
  });

  it('answers without id when none was readable', () => {
    const reply = errorReplyFor(failed(codec.decodeClient(fromHex('c1'), 'msgpack')));
    expect(reply).toEqual({ t: 'error', d: { code: 'BAD_FRAME', message: expect.any(String) } });
    expect('id' in reply).toBe(false);
  });
});

describe('ReplyPayloads', () => {
  it('names the ok payload of every request type', () => {
    expect(Object.keys(ReplyPayloads).sort()).toEqual(Object.values(ClientFrameType).sort());
    expect(ReplyPayloads.ping.parse({ serverTime: now })).toEqual({ serverTime: now });
    expect(ReplyPayloads['presence.unsubscribe'].safeParse(undefined).success).toBe(true);
    expect(ReplyPayloads['presence.subscribe'].safeParse({ presence: [{ userId: 'x' }] }).success).toBe(
      false,
    );
  });
});

describe('protocol/schema.json', () => {
  it('equals a fresh generation (run `node --import tsx scripts/gen-protocol-schema.ts`)', () => {
    // Same text as scripts/gen-protocol-schema.ts writes: two-space JSON and a final newline.
    const committed = readFileSync(new URL('../schema.json', import.meta.url), 'utf8');
    expect(committed).toBe(`${JSON.stringify(buildProtocolSchema(), null, 2)}\n`);
  });

  it('is draft 2020-12 with ClientFrame and ServerFrame definitions', () => {
    const schema = buildProtocolSchema();
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(Object.keys(schema.$defs)).toEqual(
      expect.arrayContaining(['ClientFrame', 'ServerFrame', 'PresenceState']),
    );
    expect(JSON.stringify(schema)).not.toContain('__shared');
    for (const match of JSON.stringify(schema).matchAll(/"\$ref":"#\/\$defs\/([^"]+)"/g)) {
      expect(schema.$defs).toHaveProperty([match[1] as string]);
    }
  });
});

describe('protocol/schema.json types what PROTOCOL.md says (review 21)', () => {
  const defs = buildProtocolSchema().$defs as Record<string, { properties?: Record<string, unknown> }>;
  const prop = (def: string, ...path: string[]) =>
    path.reduce<unknown>(
      (at, key) => (at as { properties: Record<string, unknown> }).properties[key],
      defs[def],
    ) as Record<string, unknown>;

  it('hello.protocolVersion is an integer, not any number', () => {
    expect(prop('HelloFrame', 'd', 'protocolVersion')).toEqual({ type: 'integer', const: 1 });
  });

  it('a stored message seq starts at 1; positions (lastSeq, sinceSeq, read marks) may be 0', () => {
    expect(prop('RoomMessage', 'seq')).toMatchObject({ type: 'integer', minimum: 1 });
    expect(prop('RoomSendResult', 'seq')).toMatchObject({ type: 'integer', minimum: 1 });
    expect(prop('RoomReadPushFrame', 'd', 'seq')).toMatchObject({ type: 'integer', minimum: 1 });
    expect(prop('RoomJoinResult', 'lastSeq')).toMatchObject({ type: 'integer', minimum: 0 });
    expect(prop('RoomReadResult', 'seq')).toMatchObject({ type: 'integer', minimum: 0 });
    expect(prop('RoomJoinFrame', 'd', 'sinceSeq')).toMatchObject({ type: 'integer', minimum: 0 });
    expect(prop('RoomReadFrame', 'd', 'seq')).toMatchObject({ type: 'integer', minimum: 0 });
  });

  it('a room.message with seq 0 does not decode', () => {
    const codec = createCodec();
    const message = {
      roomId: 'c7d4e2a1-5b3f-4e6a-9c8d-1f2e3a4b5c6d',
      senderId: userA,
      clientMsgId: 'm1',
      body: 'hi',
      sentAt: '2026-01-01T00:00:00.000Z',
    };
    const frame = (seq: number) => JSON.stringify({ t: 'room.message', d: { ...message, seq } });
    expect(codec.decodeServer(frame(1), 'json').ok).toBe(true);
    expect(codec.decodeServer(frame(0), 'json').ok).toBe(false);
  });
});
