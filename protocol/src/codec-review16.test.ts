/**
 * Error replies to refused frames stay small whatever the frame held: zod names every unknown key in
 * one issue message, and paths carry the client's own keys. A 60 KB frame of unknown keys was
 * answered with about 170 KB (its keys in the message and again in details.errors), so a short
 * burst of such frames filled the send buffer and closed the socket 1013 as a slow consumer.
 */
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { createCodec, errorReplyFor } from './codec.js';

const codec = createCodec();
const packr = new Packr({ useRecords: false, variableMapSize: true });

/**
 * Distinct keys of control characters (each well-formed, none U+0000), each three of them `repeat`
 * times: few enough keys to stay within MAX_FRAME_VALUES (review 30), long enough to fill a frame.
 */
function manyKeys(count: number, repeat = 1): Map<string, unknown> {
  const chars = Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1));
  const keys = new Map<string, unknown>();
  for (const a of chars)
    for (const b of chars)
      for (const c of chars) {
        if (keys.size >= count) return keys;
        keys.set((a + b + c).repeat(repeat), 1);
      }
  return keys;
}

const replySize = (data: Uint8Array | string, encoding: 'json' | 'msgpack') => {
  const decoded = codec.decodeClient(data, encoding);
  if (decoded.ok) throw new Error('expected a refusal');
  return {
    decoded,
    bytes: Buffer.byteLength(codec.encode(errorReplyFor(decoded), encoding) as Uint8Array | string),
  };
};

describe('codec: error replies to refused frames are bounded (review 16)', () => {
  it('answers a 60 KB msgpack frame of unknown keys in d with a few KB, naming the problem', () => {
    const frame = new Map<string, unknown>([
      ['t', 'ping'],
      ['id', 7],
      ['d', manyKeys(2_000, 8)],
    ]);
    const bytes = packr.pack(frame);
    expect(bytes.length).toBeGreaterThan(50_000);
    const { decoded, bytes: size } = replySize(bytes, 'msgpack');
    expect(decoded.code).toBe('VALIDATION_FAILED');
    expect(decoded.id).toBe(7);
    expect(decoded.message).toMatch(/^invalid "ping" frame: d: Unrecognized keys/);
    expect(size).toBeLessThan(4_096);
  });

  it('answers unknown envelope keys on a json connection with a bounded reply', () => {
    const frame: Record<string, unknown> = { t: 'ping', id: 1 };
    for (let i = 0; i < 4_000; i++) frame[`k${i}`] = 1;
    const { decoded, bytes } = replySize(JSON.stringify(frame), 'json');
    expect(decoded.code).toBe('VALIDATION_FAILED');
    expect(bytes).toBeLessThan(4_096);
  });

  it('bounds a path made of a huge key, without splitting a surrogate pair', () => {
    const key = `${'a'.repeat(248)}😀${'b'.repeat(60_000)}`;
    const frame = {
      t: 'room.send',
      id: 3,
      d: {
        roomId: '7a0c1f9e-3b5d-4c2a-9e8f-1d2c3b4a5f60',
        clientMsgId: 'm1',
        body: 'x',
        meta: { [key]: 'a\u0000b' },
      },
    };
    const { decoded, bytes } = replySize(JSON.stringify(frame), 'json');
    expect(decoded.code).toBe('VALIDATION_FAILED');
    expect(bytes).toBeLessThan(4_096);
    const path = decoded.errors?.[0]?.path ?? '';
    expect(path.startsWith('d.meta.aaa')).toBe(true);
    expect(path.endsWith('…')).toBe(true);
    // Well-formed: no lone surrogate where the cut fell.
    expect(/[\uD800-\uDFFF]/u.test(path.slice(-2))).toBe(false);
  });
});
