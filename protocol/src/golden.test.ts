/**
 * Recorded frames of protocol v1 (protocol/test/golden/v1, written once by
 * scripts/gen-protocol-golden.ts) must keep decoding, and keep encoding to the same bytes, forever:
 * deployed clients depend on them. A failure here is a breaking change, not a stale fixture.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type AnyFrame, createCodec } from './codec.js';
import { ClientFrameType, ReplyPayloads, ServerPushType } from './frames.js';

interface Golden {
  readonly name: string;
  readonly json: { readonly t: string } & Record<string, unknown>;
  readonly msgpackHex: string;
}

const goldenDir = new URL('../test/golden/v1/', import.meta.url);
const goldens = readdirSync(goldenDir)
  .filter((file) => file.endsWith('.json'))
  .sort()
  .map((file) => ({ file, ...(JSON.parse(readFileSync(new URL(file, goldenDir), 'utf8')) as Golden) }));
const protocolDoc = readFileSync(new URL('../PROTOCOL.md', import.meta.url), 'utf8');

const hex = (bytes: Uint8Array): string =>
  Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
const fromHex = (text: string): Uint8Array =>
  Uint8Array.from(text.match(/../g) ?? [], (pair) => Number.parseInt(pair, 16));

describe('golden frames v1', () => {
  const codec = createCodec();

  it('cover every client request type and every server frame type', () => {
    const clientTypes = new Set(goldens.filter((g) => g.name.startsWith('client.')).map((g) => g.json.t));
    const serverTypes = new Set(goldens.filter((g) => g.name.startsWith('server.')).map((g) => g.json.t));
    expect([...clientTypes].sort()).toEqual(Object.values(ClientFrameType).sort());
    expect([...serverTypes].sort()).toEqual(['error', 'ok', ...Object.values(ServerPushType)].sort());
  });

  it.each(goldens.map((golden) => [golden.file, golden] as const))('%s', (file, golden) => {
    expect(file).toBe(`${golden.name}.json`);
    expect(golden.msgpackHex).toMatch(/^([0-9a-f]{2})+$/);
    const decode = golden.name.startsWith('client.') ? codec.decodeClient : codec.decodeServer;

    // The recorded bytes still decode to the recorded object…
    expect(decode(fromHex(golden.msgpackHex), 'msgpack')).toEqual({ ok: true, frame: golden.json });
    // …the object still encodes to the recorded bytes…
    expect(hex(codec.encode(golden.json as AnyFrame, 'msgpack'))).toBe(golden.msgpackHex);
    // …and the JSON encoding carries the same object.
    expect(decode(JSON.stringify(golden.json), 'json')).toEqual({ ok: true, frame: golden.json });
  });

  it('include an ok reply to every request type whose reply has a payload, valid for that type', () => {
    // `ok` decodes its `d` as unknown: only the request type says what it must be. Names are
    // server.ok.<type>[.<variant>]; types contain dots, so the longest matching type wins.
    const typeOf = (name: string) =>
      Object.values(ClientFrameType)
        .filter((type) => name === `server.ok.${type}` || name.startsWith(`server.ok.${type}.`))
        .sort((a, b) => b.length - a.length)[0];
    const okGoldens = goldens.filter((golden) => golden.name.startsWith('server.ok.'));
    for (const golden of okGoldens) {
      const type = typeOf(golden.name);
      expect(type, golden.name).toBeDefined();
      if (type === undefined) continue;
      const parsed = ReplyPayloads[type].safeParse(golden.json.d);
      expect(parsed.success, golden.name).toBe(true);
      expect(parsed.data, golden.name).toEqual(golden.json.d);
    }
    const withPayload = Object.values(ClientFrameType).filter(
      (type) => !ReplyPayloads[type].safeParse(undefined).success,
    );
    const answered = new Set(okGoldens.map((golden) => typeOf(golden.name)));
    expect(withPayload.filter((type) => !answered.has(type))).toEqual([]);
  });

  it('are all quoted in PROTOCOL.md (bytes may be split by spaces and newlines there)', () => {
    const compact = protocolDoc.replace(/\s+/g, '');
    const missing = goldens
      .filter((golden) => !compact.includes(golden.msgpackHex))
      .map((golden) => golden.name);
    expect(missing).toEqual([]);
  });
});
