/**
 * What a client author in another language reads in protocol/PROTOCOL.md stays true to the golden
 * frames: every JSON frame example followed by its "MessagePack (N bytes, `golden/v1/<file>`)" block
 * is that golden file's object, the hex is the golden's bytes, and N is their count. (The golden
 * test only checks that each golden's hex appears somewhere in the document; an example whose JSON
 * gained a field, like the `wallet` push's `parked`, while its hex stayed the older golden, passed.)
 * It also keeps the Connecting section from naming a token source the Access tokens section says
 * returns none (`/register` answers 202 without tokens), and the `room.send` limits as the server
 * counts them: `body` in Unicode code points (4096 emoji pass; the document said UTF-16 code units,
 * which would have refused 2049), `meta` in UTF-16 code units of its compact JSON.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';

const root = resolve(import.meta.dirname, '../..');
const protocolDoc = readFileSync(resolve(root, 'protocol/PROTOCOL.md'), 'utf8');

interface Example {
  readonly file: string;
  readonly json: unknown;
  readonly statedBytes: number;
  readonly hex: string;
}

/** A ```json block, a blank line, the "MessagePack (…)" line, and its ```text block. */
const examplePattern =
  /```json\n((?:(?!```)[\s\S])*?)```\n\nMessagePack \((\d+) bytes, `golden\/v1\/([^`]+)`\):\n\n```text\n([\s\S]*?)```/g;

const examples: Example[] = [...protocolDoc.matchAll(examplePattern)].map((match) => ({
  json: JSON.parse(match[1] ?? ''),
  statedBytes: Number(match[2]),
  file: match[3] ?? '',
  hex: (match[4] ?? '').replace(/\s+/g, ''),
}));

describe('PROTOCOL.md frame examples', () => {
  it('are found (one per golden file at least)', () => {
    expect(examples.length).toBeGreaterThanOrEqual(40);
  });

  it.each(examples.map((example) => [example.file, example] as const))(
    '%s: the JSON, the hex and the byte count are the golden frame',
    (file, example) => {
      const golden = JSON.parse(readFileSync(resolve(root, 'protocol/test/golden/v1', file), 'utf8')) as {
        json: unknown;
        msgpackHex: string;
      };
      expect(example.json, 'the JSON shown is the golden object').toEqual(golden.json);
      expect(example.hex, 'the hex shown is the golden bytes').toBe(golden.msgpackHex);
      expect(example.statedBytes, 'the stated size is the byte count').toBe(example.hex.length / 2);
    },
  );
});

describe('PROTOCOL.md token sources', () => {
  it('names only login and refresh as answering a token pair (register answers 202 without tokens)', () => {
    const connecting = protocolDoc.split(/^### /m).find((section) => section.startsWith('Connecting')) ?? '';
    const intro = connecting.split('\n\n').slice(0, 3).join('\n\n');
    expect(intro).toContain('POST /v1/auth/login');
    expect(intro).not.toMatch(/\/register`[^.]*token pair/);
  });
});

describe('PROTOCOL.md room.send length limits', () => {
  const codec = createCodec();
  const roomId = 'c7d4e2a1-5b3f-4e6a-9c8d-1f2e3a4b5c6d';
  const send = (d: Record<string, unknown>) =>
    codec.decodeClient(
      JSON.stringify({ t: 'room.send', id: 1, d: { roomId, clientMsgId: 'c', ...d } }),
      'json',
    );
  const emoji = '\u{1F600}'; // outside the BMP: 1 code point, 2 UTF-16 code units

  it('counts body in code points, as the document says', () => {
    expect(send({ body: emoji.repeat(4096) }).ok).toBe(true);
    expect(send({ body: emoji.repeat(4097) }).ok).toBe(false);
    expect(send({ body: 'x'.repeat(4097) }).ok).toBe(false);
    const row = protocolDoc.split('\n').find((line) => line.startsWith('| `body` | string | 0–4096')) ?? '';
    expect(row).toMatch(/Unicode code points/);
    expect(row).not.toMatch(/counted in UTF-16 code units/);
  });

  it('counts meta in UTF-16 code units of its compact JSON, as the document says', () => {
    // {"k":"…"} is 8 units around the value: 2044 emoji make 4096 units, 2045 make 4098.
    expect(send({ body: '', meta: { k: emoji.repeat(2044) } }).ok).toBe(true);
    expect(send({ body: '', meta: { k: emoji.repeat(2045) } }).ok).toBe(false);
    const row =
      protocolDoc.split('\n').find((line) => line.startsWith('| `meta` | map/object, optional |')) ?? '';
    expect(row).toMatch(/4096 UTF-16 code units when serialized as compact JSON/);
  });
});
