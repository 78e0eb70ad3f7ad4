/**
 * A plain WebSocket test client (the `ws` package) speaking gigwire's protocol in either encoding,
 * recording every frame it receives. Independent of the SDK, so gateway tests do not depend on it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { createCodec } from '../../protocol/src/codec.js';
import type { ServerFrame } from '../../protocol/src/frames.js';
import { type Encoding, Subprotocol } from '../../protocol/src/version.js';

export type WireFrame = Record<string, unknown> & { t: string };

export interface TestSocket {
  readonly ws: WebSocket;
  readonly frames: WireFrame[];
  readonly send: (frame: Record<string, unknown>) => void;
  readonly sendRaw: (data: string | Buffer) => void;
  /** Waits for a received frame matching `match` (searching from the start). */
  readonly next: (match: (frame: WireFrame) => boolean, timeoutMs?: number) => Promise<WireFrame>;
  readonly request: (t: string, d?: Record<string, unknown>, timeoutMs?: number) => Promise<WireFrame>;
  readonly closed: Promise<{ code: number; reason: string; at: number }>;
  readonly close: () => void;
}

let nextId = 1;

export async function openSocket(
  url: string,
  token: string,
  encoding: Encoding = 'json',
  via: 'subprotocol' | 'header' | 'query' = 'subprotocol',
): Promise<TestSocket> {
  const codec = createCodec();
  const protocols: string[] = [encoding === 'json' ? Subprotocol.JSON : Subprotocol.MSGPACK];
  if (via === 'subprotocol') protocols.push(`bearer.${token}`);
  const target = via === 'query' ? `${url}?access_token=${encodeURIComponent(token)}` : url;
  const ws = new WebSocket(
    target,
    protocols,
    via === 'header' ? { headers: { authorization: `Bearer ${token}` } } : {},
  );
  const frames: WireFrame[] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const decoded = codec.decodeServer(isBinary ? new Uint8Array(data) : data.toString('utf8'), encoding);
    frames.push(
      decoded.ok
        ? (decoded.frame as unknown as WireFrame)
        : { t: '__undecodable__', detail: decoded.message },
    );
  });
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), at: Date.now() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
  const next = async (match: (frame: WireFrame) => boolean, timeoutMs = 5_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = frames.find(match);
      if (found !== undefined) return found;
      await sleep(10);
    }
    throw new Error(
      `no matching frame within ${timeoutMs} ms; got ${JSON.stringify(frames.map((f) => f.t))}`,
    );
  };
  const send = (frame: Record<string, unknown>) =>
    ws.send(
      encoding === 'json' ? JSON.stringify(frame) : codec.encode(frame as unknown as ServerFrame, 'msgpack'),
    );
  return {
    ws,
    frames,
    send,
    sendRaw: (data) => ws.send(data),
    next,
    request: async (t, d, timeoutMs) => {
      const id = nextId++;
      send(d === undefined ? { t, id } : { t, id, d });
      return next((f) => (f.t === 'ok' || f.t === 'error') && f.id === id, timeoutMs);
    },
    closed,
    close: () => ws.close(),
  };
}

/** Status of a refused upgrade, or 101 when the socket opened. */
export async function upgradeStatus(
  url: string,
  protocols: string[],
  headers: Record<string, string> = {},
): Promise<number> {
  const ws = new WebSocket(url, protocols, { headers });
  return new Promise((resolve) => {
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', () => resolve(0));
  });
}
