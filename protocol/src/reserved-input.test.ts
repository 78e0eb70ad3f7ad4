/**
 * Input the protocol refuses because it would be stored other than sent, or would pass for the
 * platform's own data (review of the input rules):
 * - an object key `__proto__` anywhere in a client frame, in both encodings (msgpackr renames it to
 *   `__proto_`; JSON.parse keeps it, and zod's record copy would set a prototype and drop it);
 * - a blank skill in a `jobs.watch` filter or a REST job search (an empty skill set means "any");
 * - `meta.system` and a `clientMsgId` starting with `system.` in a client `room.send`.
 */
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { createCodec, type DecodeFailure, type DecodeResult } from './codec.js';
import type { ClientFrame, ServerFrame } from './frames.js';
import { findJsonProblem } from './json-value.js';
import { scanMsgpack } from './msgpack-scan.js';
import { CreateJobRequest, JobSearchQuery, UpdateJobRequest } from './rest/jobs.js';
import { UpdateMeRequest } from './rest/users.js';

const ROOM = 'c7d4e2a1-5b3f-4e6a-9c8d-1f2e3a4b5c6d';
const codec = createCodec();
/** Writes plain JS objects as msgpack maps: an own key `__proto__` goes on the wire as such. */
const packr = new Packr({ useRecords: false, variableMapSize: true });

const failed = <F>(result: DecodeResult<F>): DecodeFailure => {
  if (result.ok) throw new Error(`expected a refusal, got ${JSON.stringify(result.frame)}`);
  return result;
};

/** A room.send frame with `meta` (parsed from JSON text, so a `__proto__` key is an own key). */
const sendWithMeta = (metaJson: string, id = 5) =>
  `{"t":"room.send","id":${id},"d":{"roomId":"${ROOM}","clientMsgId":"m-1","body":"hi","meta":${metaJson}}}`;

/** The same frame in msgpack: keys written in order, `__proto__` included, via Maps. */
function asMsgpack(json: string): Uint8Array {
  const toMaps = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(toMaps);
    if (typeof value === 'object' && value !== null)
      return new Map(Object.keys(value).map((key) => [key, toMaps((value as Record<string, unknown>)[key])]));
    return value;
  };
  return packr.pack(toMaps(JSON.parse(json)));
}

const refusal = (result: DecodeResult<ClientFrame>) => {
  const failure = failed(result);
  return { code: failure.code, id: failure.id, paths: failure.errors?.map((e) => e.path) };
};

describe('a __proto__ key in a client frame', () => {
  const cases: [string, string, string][] = [
    ['at the top of meta', '{"__proto__":{"system":"contract.completed"}}', 'd.meta.__proto__'],
    ['beside other keys', '{"a":1,"__proto__":{"polluted":true}}', 'd.meta.__proto__'],
    ['nested in meta', '{"a":{"b":{"__proto__":1}}}', 'd.meta.a.b.__proto__'],
    ['in an array in meta', '{"list":[1,{"__proto__":null}]}', 'd.meta.list.1.__proto__'],
  ];

  it.each(cases)('is refused %s on json, naming its path', (_label, meta, path) => {
    expect(refusal(codec.decodeClient(sendWithMeta(meta), 'json'))).toEqual({
      code: 'VALIDATION_FAILED',
      id: 5,
      paths: [path],
    });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each(cases)(
    'is refused %s on msgpack, naming its path (not renamed to __proto_)',
    (_label, meta, path) => {
      const bytes = asMsgpack(sendWithMeta(meta));
      expect(scanMsgpack(bytes, 32)).toEqual({ problem: undefined, protoKey: true });
      expect(refusal(codec.decodeClient(bytes, 'msgpack'))).toEqual({
        code: 'VALIDATION_FAILED',
        id: 5,
        paths: [path],
      });
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    },
  );

  it('is found whatever str format spells the key (fixstr, str 8, str 16)', () => {
    const key = Array.from('__proto__', (c) => c.charCodeAt(0));
    const envelope = (keyBytes: number[]) =>
      Uint8Array.of(
        0x83,
        0xa1,
        0x74, // t
        0xa4,
        ...Array.from('ping', (c) => c.charCodeAt(0)),
        0xa2,
        0x69,
        0x64, // id
        0x07,
        0xa1,
        0x64, // d
        0x81,
        ...keyBytes,
        0x01,
      );
    for (const keyBytes of [
      [0xa9, ...key],
      [0xd9, 9, ...key],
      [0xda, 0, 9, ...key],
    ]) {
      expect(refusal(codec.decodeClient(envelope(keyBytes), 'msgpack'))).toEqual({
        code: 'VALIDATION_FAILED',
        id: 7,
        paths: ['d.__proto__'],
      });
    }
  });

  it('is refused in the envelope and in d of any frame type, on both encodings', () => {
    for (const json of [
      '{"t":"ping","id":3,"__proto__":{}}',
      '{"t":"ping","id":3,"d":{"__proto__":{}}}',
      '{"t":"jobs.watch","id":3,"d":{"__proto__":{"skills":["x"]}}}',
    ]) {
      for (const result of [
        codec.decodeClient(json, 'json'),
        codec.decodeClient(asMsgpack(json), 'msgpack'),
      ]) {
        const failure = failed(result);
        expect(failure.code).toBe('VALIDATION_FAILED');
        expect(failure.id).toBe(3);
        expect(failure.errors?.[0]?.path).toMatch(/__proto__$/);
      }
    }
  });

  it('is refused in an escaped JSON spelling too', () => {
    expect(refusal(codec.decodeClient(sendWithMeta('{"\\u005f_proto__":1}'), 'json')).paths).toEqual([
      'd.meta.__proto__',
    ]);
  });

  it('leaves constructor, prototype, toJSON and __proto_ as ordinary keys, stored as sent', () => {
    const meta = '{"constructor":{"prototype":{"toJSON":"z"}},"prototype":1,"__proto_":2}';
    const expected = {
      constructor: { prototype: { toJSON: 'z' } },
      prototype: 1,
      __proto_: 2,
    };
    for (const result of [
      codec.decodeClient(sendWithMeta(meta), 'json'),
      codec.decodeClient(asMsgpack(sendWithMeta(meta)), 'msgpack'),
    ]) {
      expect(result.ok).toBe(true);
      const frame = (result as { frame: ClientFrame }).frame;
      const sent = frame.t === 'room.send' ? frame.d.meta : undefined;
      expect(sent).toEqual(expected);
      expect(Object.keys(sent ?? {})).toEqual(Object.keys(expected));
      expect(JSON.stringify(sent)).toBe(JSON.stringify(expected));
    }
  });

  it('does not send frames without the key down the slow path', () => {
    const bytes = asMsgpack(sendWithMeta('{"__proto_":1,"proto":2,"__proto__x":3}'));
    expect(scanMsgpack(bytes, 32)).toEqual({ problem: undefined, protoKey: false });
    // A `__proto__` that is a value, not a key, is just a string.
    expect(scanMsgpack(asMsgpack('{"t":"ping","d":{"k":"__proto__"}}'), 32).protoKey).toBe(false);
  });

  it('is refused by the JSON-value rule used for REST input too, unless allowed', () => {
    const value = JSON.parse('{"a":[{"__proto__":1}]}') as unknown;
    expect(findJsonProblem(value)).toEqual({
      path: 'a.0.__proto__',
      message: 'the key "__proto__" is not allowed',
    });
    expect(findJsonProblem(value, { allowProtoKey: true })).toBeUndefined();
  });

  it('still lets the SDK read a server frame carrying one (stored data never breaks a reader)', () => {
    const data = JSON.parse('{"__proto__":{"polluted":true},"ok":1}') as Record<string, unknown>;
    const frame = {
      t: 'notification',
      d: { id: 'n', kind: 'k', title: '', body: '', data, createdAt: '2026-01-01T00:00:00Z' },
    } as ServerFrame;
    expect(codec.decodeServer(codec.encode(frame, 'msgpack'), 'msgpack').ok).toBe(true);
    expect(codec.decodeServer(codec.encode(frame, 'json'), 'json').ok).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('a blank skill', () => {
  const watch = (skills: unknown) => JSON.stringify({ t: 'jobs.watch', id: 9, d: { skills } });

  it.each(['   ', '\t\n', '\u00a0\u2003'])('%j in jobs.watch is refused at d.skills.N', (blank) => {
    for (const skills of [[blank], ['react', blank]]) {
      const index = skills.length - 1;
      for (const [data, encoding] of [
        [watch(skills), 'json'],
        [asMsgpack(watch(skills)), 'msgpack'],
      ] as const) {
        expect(refusal(codec.decodeClient(data, encoding))).toEqual({
          code: 'VALIDATION_FAILED',
          id: 9,
          paths: [`d.skills.${index}`],
        });
      }
    }
  });

  it('is not confused with a skill that has spaces around it, or with no skills at all', () => {
    for (const skills of [[' React '], ['node js'], []]) {
      const result = codec.decodeClient(watch(skills), 'json');
      expect(result.ok).toBe(true);
    }
  });

  it('in a REST job search is refused at skills.N; an empty value is no filter', () => {
    for (const [skills, index] of [
      [' ', 0],
      ['react, ', 1],
      ['react,,node', 1],
    ] as const) {
      const parsed = JobSearchQuery.safeParse({ skills });
      expect(parsed.success, skills).toBe(false);
      expect(
        parsed.error?.issues.map((issue) => issue.path.join('.')),
        skills,
      ).toEqual([`skills.${index}`]);
    }
    expect(JobSearchQuery.parse({ skills: '' }).skills).toEqual([]);
    // Trimmed and lower-cased as skills are stored (rest/skills.ts), so the cap holds on that form.
    expect(JobSearchQuery.parse({ skills: ' React , node ' }).skills).toEqual(['react', 'node']);
    // Other comma lists keep dropping blank items (an empty status list means the default, open).
    expect(JobSearchQuery.parse({ status: 'open,,' }).status).toEqual(['open']);
  });

  it('of a job or a worker profile is refused (as every blank single-line text)', () => {
    const job = {
      title: 'T',
      description: 'D',
      categoryId: '6f1c2a8e-0b0e-4f3c-9a57-2d7f0e1c4b21',
      budget: { kind: 'fixed', amount: 1, currency: 'USD' },
    };
    const paths = (result: { success: boolean; error?: { issues: { path: PropertyKey[] }[] } }) =>
      result.error?.issues.map((issue) => issue.path.join('.'));
    expect(paths(CreateJobRequest.safeParse({ ...job, skills: ['rust', '  '] }))).toEqual(['skills.1']);
    expect(paths(UpdateJobRequest.safeParse({ skills: ['\u3000'] }))).toEqual(['skills.0']);
    expect(paths(UpdateMeRequest.safeParse({ skills: [' \t '] }))).toEqual(['skills.0']);
  });
});

describe('a client room.send posing as a platform message', () => {
  const send = (d: Record<string, unknown>) =>
    JSON.stringify({ t: 'room.send', id: 11, d: { roomId: ROOM, clientMsgId: 'c-1', body: 'b', ...d } });

  it.each([
    ['meta.system', { meta: { system: 'contract.completed' } }, 'd.meta.system'],
    ['meta.system beside contractId', { meta: { system: 'x', contractId: ROOM } }, 'd.meta.system'],
    ['a non-string meta.system', { meta: { system: { text: 'x' } } }, 'd.meta.system'],
    ['clientMsgId system.<uuid>', { clientMsgId: `system.${ROOM}` }, 'd.clientMsgId'],
    ['clientMsgId "system."', { clientMsgId: 'system.' }, 'd.clientMsgId'],
  ])('is refused: %s', (_label, d, path) => {
    for (const [data, encoding] of [
      [send(d), 'json'],
      [asMsgpack(send(d)), 'msgpack'],
    ] as const) {
      expect(refusal(codec.decodeClient(data, encoding))).toEqual({
        code: 'VALIDATION_FAILED',
        id: 11,
        paths: [path],
      });
    }
  });

  it('accepts what only looks alike: a nested system key, contractId alone, other ids', () => {
    for (const d of [
      { meta: { reply: { system: 'x' } } },
      { meta: { contractId: ROOM, event: 'deliver' } },
      { meta: { systemNote: 'x', System: 'y' } },
      { clientMsgId: 'system' },
      { clientMsgId: 'System.1' },
      { clientMsgId: 'my.system.1' },
    ]) {
      expect(codec.decodeClient(send(d), 'json').ok, JSON.stringify(d)).toBe(true);
    }
  });

  it('leaves the server frame of a platform message readable (RoomMessage is not the client schema)', () => {
    const frame = {
      t: 'room.message',
      d: {
        roomId: ROOM,
        seq: 1,
        senderId: ROOM,
        clientMsgId: `system.${ROOM}`,
        body: 'Delivered',
        meta: { system: 'contract.delivered', contractId: ROOM },
        sentAt: '2026-01-01T00:00:00.000Z',
      },
    } as unknown as ServerFrame;
    for (const encoding of ['json', 'msgpack'] as const) {
      const back = codec.decodeServer(codec.encode(frame, encoding), encoding);
      expect(back.ok).toBe(true);
    }
  });
});
