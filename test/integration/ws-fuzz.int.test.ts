/**
 * Fuzzing the WebSocket edge with fast-check: 4 000 random frames (random bytes, random and
 * invalid-UTF-8 text, msgpack/JSON of random values, random envelopes with known and unknown `t`,
 * random `id` and `d`, mutated valid frames, deep nesting, frames at and over the 64 KiB limit) sent
 * over authenticated connections that alternate between the uWebSockets.js edge and /ws on the
 * Fastify port, in both encodings, reconnecting whenever the server closes.
 *
 * Every frame is followed by a sentinel `ping` with a known id, and an oracle written from
 * PROTOCOL.md (decode → envelope → type → zod schema of the protocol → handler rules) predicts the
 * outcome: the exact replies (by id, code, payload), or a close with 1009 (oversize) / 1007
 * (invalid UTF-8 text), or, after repeated refused frames, a close 1007 / 1008 matching the last
 * refusal: after 5 to 21 of the connection's own (PROTOCOL.md, Limits: the count goes on across a
 * reconnect, so a lane reconnecting inside it is closed at its fifth refusal; each lane must see
 * that). Nothing else may arrive. Meanwhile a well-behaved client on each transport keeps getting
 * ping replies, /health/live stays 200, and the test process (which runs the node) sees no
 * unhandled rejection or uncaught exception.
 *
 * The node under fuzz raises WS_MAX_MESSAGES_PER_SECOND / WS_MAX_BURST so that rate limiting does not
 * slow the run; a second node at the default limits covers rate limiting with short bursts.
 *
 * PROTOCOL.md documents two deviations of the uWebSockets.js edge (WS_PORT): a frame over
 * 16 × maxFrameBytes, or a text frame that is not UTF-8, drops the TCP connection (1006); the oracle
 * expects exactly that there. One undocumented gateway race is worked around and counted
 * (`freshSocketDrops`, see `openVerifiedPeer`).
 */

import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ClientFrame, ClientFrameType, MAX_REQUEST_ID, ServerFrame } from '../../protocol/src/frames.js';
import { findJsonProblem, MAX_JSON_DEPTH } from '../../protocol/src/json-value.js';
import { findMsgpackProblem } from '../../protocol/src/msgpack-scan.js';
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { NEW_CONNECTION_MIN_STRIKES } from '../../src/gateway/connection.js';
import { runShutdown } from '../../src/platform/shutdown.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  testConfig,
  uniqueRedisPrefix,
} from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';

// ---------------------------------------------------------------------------------------------
// Wire helpers
// ---------------------------------------------------------------------------------------------

type Encoding = 'msgpack' | 'json';
const MAX_FRAME_BYTES = 65_536;
/** PROTOCOL.md, Limits: past this the uWS edge drops the TCP connection instead of closing 1009. */
const UWS_HARD_FRAME_CAP = 16 * MAX_FRAME_BYTES;
/** Request types whose outcome the oracle models in detail (PROTOCOL.md v1 as of this test). */
const MODELLED_TYPES = ['ping', 'auth.refresh', 'presence.subscribe', 'presence.unsubscribe'] as const;
/** Every request type of the protocol; types added later get a looser check (one reply, documented code). */
const KNOWN_TYPES: readonly string[] = Object.values(ClientFrameType);
const ALLOWED_ERROR_CODES = new Set([
  'BAD_FRAME',
  'UNKNOWN_TYPE',
  'VALIDATION_FAILED',
  'RATE_LIMITED',
  'FORBIDDEN',
  'UNAUTHORIZED',
  // Only from request types added after this test was written (not modelled below).
  'NOT_FOUND',
  'CONFLICT',
]);
/** Close codes a client can cause by sending frames (PROTOCOL.md, Close codes and Limits). */
const DOCUMENTED_ABUSE_CLOSES = new Set([1007, 1008, 1009]);
/** PROTOCOL.md, Limits: refused frames answered within 10 s before the next one closes. */
const FRESH_STRIKE_ALLOWANCE = 20;

/** Standard MessagePack as PROTOCOL.md describes it; decode options make ints ≥ 2^32 numbers. */
const packer = new Packr({ useRecords: false });
const recordPacker = new Packr({ useRecords: true });
const unpacker = new Packr({ useRecords: false, int64AsType: 'number', copyBuffers: true });
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

interface Received {
  readonly frame: Record<string, unknown> | undefined;
  /** Why it is not an acceptable server frame, if it is not. */
  readonly problem?: string;
}

interface Peer {
  readonly ws: WebSocket;
  readonly encoding: Encoding;
  readonly url: string;
  readonly received: Received[];
  closed: { code: number; reason: string } | undefined;
  /** An error the client library reported (e.g. a malformed frame from the server). */
  clientError: string | undefined;
  readonly send: (data: string | Uint8Array, binary: boolean) => void;
  readonly sendFrame: (frame: Record<string, unknown>) => void;
  /** Resolves when `done()` holds or the socket closed; rejects after timeoutMs. */
  readonly until: (done: () => boolean, timeoutMs: number, what: string) => Promise<void>;
  readonly close: () => Promise<void>;
}

function decodeServerMessage(data: Buffer, isBinary: boolean, encoding: Encoding): Received {
  let value: unknown;
  try {
    if (encoding === 'json') {
      if (isBinary) return { frame: undefined, problem: 'binary frame on a json connection' };
      value = JSON.parse(data.toString('utf8'));
    } else {
      if (!isBinary) return { frame: undefined, problem: 'text frame on a msgpack connection' };
      value = unpacker.unpack(data);
    }
  } catch (error) {
    return { frame: undefined, problem: `undecodable: ${(error as Error).message}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { frame: undefined, problem: `not an object: ${JSON.stringify(value)}` };
  const frame = value as Record<string, unknown>;
  const parsed = ServerFrame.safeParse(frame);
  if (!parsed.success) return { frame, problem: `not a ServerFrame: ${parsed.error.message}` };
  if (frame.t === 'error') {
    const code = (frame.d as { code?: unknown }).code;
    if (typeof code !== 'string' || !ALLOWED_ERROR_CODES.has(code))
      return { frame, problem: `error code ${String(code)} is not one fuzzing may cause` };
  }
  return { frame };
}

async function openPeer(url: string, token: string, encoding: Encoding): Promise<Peer> {
  const ws = new WebSocket(url, [
    encoding === 'json' ? 'gigwire.v1.json' : 'gigwire.v1.msgpack',
    `bearer.${token}`,
  ]);
  const received: Received[] = [];
  const wakers = new Set<() => void>();
  const wake = () => {
    for (const waker of wakers) waker();
  };
  const peer: Peer = {
    ws,
    encoding,
    url,
    received,
    closed: undefined,
    clientError: undefined,
    send: (data, binary) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(data, { binary });
    },
    sendFrame: (frame) =>
      peer.send(encoding === 'json' ? JSON.stringify(frame) : packer.pack(frame), encoding === 'msgpack'),
    until: (done, timeoutMs, what) =>
      new Promise<void>((resolveWait, reject) => {
        const check = () => {
          if (done() || peer.closed !== undefined) {
            wakers.delete(check);
            clearTimeout(timer);
            resolveWait();
          }
        };
        const timer = setTimeout(() => {
          wakers.delete(check);
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for ${what} on ${url} (${encoding}); received ${JSON.stringify(
                received.slice(-5).map((r) => r.frame ?? r.problem),
              )}`,
            ),
          );
        }, timeoutMs);
        wakers.add(check);
        check();
      }),
    close: async () => {
      if (peer.closed !== undefined) return;
      const closed = new Promise<void>((done) => ws.once('close', () => done()));
      ws.close(1000);
      await closed;
    },
  };
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    received.push(decodeServerMessage(data, isBinary, encoding));
    wake();
  });
  ws.on('close', (code: number, reason: Buffer) => {
    peer.closed = { code, reason: reason.toString() };
    wake();
  });
  // A client-side protocol error (e.g. an invalid close frame) would show up here; the close follows.
  ws.on('error', (error) => {
    peer.clientError = error.message;
  });
  await new Promise<void>((resolveOpen, reject) => {
    ws.once('open', () => resolveOpen());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
  await peer.until(() => received.length > 0, 5_000, 'hello');
  const hello = received[0];
  if (hello?.problem !== undefined || hello?.frame?.t !== 'hello')
    throw new Error(
      `first frame is not hello: ${JSON.stringify(hello)}; closed ${JSON.stringify(peer.closed)}`,
    );
  if ((hello.frame.d as { encoding?: unknown }).encoding !== encoding)
    throw new Error(
      `hello names encoding ${(hello.frame.d as { encoding?: unknown }).encoding}, expected ${encoding}`,
    );
  return peer;
}

/** Fresh uWS sockets the server dropped (1006, no close frame) right after `hello`; see `openVerifiedPeer`. */
let freshSocketDrops = 0;
const VERIFY_PING_ID = MAX_REQUEST_ID;

/**
 * `openPeer`, then one `ping` round trip to prove the socket is usable. Works around a known
 * gateway bug: src/gateway/uws.ts completes the asynchronous upgrade inside `res.cork()` and sends
 * `hello` from the open handler; uWebSockets' cork() can then misread the reallocated socket as an
 * HTTP response marked "Connection: close" and close the new WebSocket ~1 ms after `hello`
 * (uNetworking/uWebSockets PR #1929, uWebSockets.js issue #1108). Such drops are counted and the
 * connection is retried, so the fuzz run tests frame handling rather than this race.
 */
async function openVerifiedPeer(url: string, token: string, encoding: Encoding): Promise<Peer> {
  for (let attempt = 1; ; attempt++) {
    const peer = await openPeer(url, token, encoding);
    peer.sendFrame({ t: 'ping', id: VERIFY_PING_ID });
    await peer.until(
      () => peer.received.some((r) => r.frame?.id === VERIFY_PING_ID),
      5_000,
      'the verifying ping',
    );
    if (peer.closed === undefined) return peer;
    if (peer.closed.code !== 1006 || attempt >= 5)
      throw new Error(`a fresh socket on ${url} closed ${peer.closed.code} before answering a ping`);
    freshSocketDrops += 1;
  }
}

// ---------------------------------------------------------------------------------------------
// What is sent, and the oracle predicting what must come back
// ---------------------------------------------------------------------------------------------

/** One fuzz input, independent of the connection's encoding until `toWire`. */
type FuzzInput =
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array }
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'invalid-utf8-text'; readonly bytes: Uint8Array }
  | { readonly kind: 'value'; readonly value: unknown; readonly wire: 'native' | 'swapped' | 'records' }
  | {
      readonly kind: 'mutated';
      readonly value: unknown;
      readonly edits: readonly [number, number][];
      readonly cut: number;
    }
  | { readonly kind: 'deep'; readonly depth: number; readonly underD: boolean }
  | { readonly kind: 'padded'; readonly size: number; readonly binary: boolean }
  | { readonly kind: 'oversize'; readonly size: number; readonly binary: boolean };

interface Wire {
  readonly data: string | Uint8Array;
  readonly binary: boolean;
  readonly bytes: Uint8Array;
}

const utf8 = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));

function encodeJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? Number(v) : v)) ?? 'undefined';
}

/** msgpack of any generated value; values msgpackr cannot write (huge BigInts) go through JSON first. */
function pack(value: unknown): Uint8Array {
  try {
    return packer.pack(value);
  } catch {
    return packer.pack(JSON.parse(encodeJson(value)));
  }
}

function toWire(input: FuzzInput, encoding: Encoding): Wire {
  const native = (value: unknown): Wire => {
    if (encoding === 'json') {
      const text = encodeJson(value);
      return { data: text, binary: false, bytes: utf8(text) };
    }
    const bytes = pack(value);
    return { data: bytes, binary: true, bytes };
  };
  switch (input.kind) {
    case 'bytes':
      return { data: input.bytes, binary: true, bytes: input.bytes };
    case 'text':
      return { data: input.text, binary: false, bytes: utf8(input.text) };
    case 'invalid-utf8-text':
      return { data: input.bytes, binary: false, bytes: input.bytes };
    case 'value': {
      if (input.wire === 'native') return native(input.value);
      if (input.wire === 'records') {
        let bytes: Uint8Array;
        try {
          bytes = recordPacker.pack(input.value);
        } catch {
          bytes = pack(input.value);
        }
        return { data: bytes, binary: true, bytes };
      }
      // The other encoding's frame kind: text on msgpack, binary on json.
      if (encoding === 'json') {
        const bytes = pack(input.value);
        return { data: bytes, binary: true, bytes };
      }
      const text = encodeJson(input.value);
      return { data: text, binary: false, bytes: utf8(text) };
    }
    case 'mutated': {
      const bytes = new Uint8Array(native(input.value).bytes);
      for (const [at, byte] of input.edits) if (bytes.length > 0) bytes[at % bytes.length] = byte;
      const cut = bytes.subarray(0, Math.max(0, bytes.length - input.cut));
      return { data: cut, binary: encoding === 'msgpack', bytes: cut };
    }
    case 'deep': {
      if (encoding === 'json') {
        // JSON.parse is not recursive in V8: any depth that fits the frame (here ≤ 32 700) decodes.
        const depth = Math.min(input.depth, 32_700);
        const nested = `${'['.repeat(depth)}${']'.repeat(depth)}`;
        const text = input.underD ? `{"t":"ping","id":7,"d":{"x":${nested}}}` : nested;
        return { data: text, binary: false, bytes: utf8(text) };
      }
      const nested = Buffer.alloc(input.depth + 1, 0x91); // [[[…[nil]…]]]
      nested[input.depth] = 0xc0;
      // {"t": "ping", "id": 7, "d": {"x": <nested>}}
      const envelope = Buffer.from([
        0x83, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa2, 0x69, 0x64, 0x07, 0xa1, 0x64, 0x81, 0xa1, 0x78,
      ]);
      const bytes = new Uint8Array(input.underD ? Buffer.concat([envelope, nested]) : nested);
      return { data: bytes, binary: true, bytes };
    }
    case 'padded':
    case 'oversize': {
      // A frame of exactly `size` bytes: an envelope with a padding field (over the limit or at it).
      const head = encoding === 'json' || !input.binary ? '{"t":"ping","id":9,"d":{"pad":"' : '';
      const tail = head === '' ? '' : '"}}';
      const text = head + 'x'.repeat(Math.max(0, input.size - head.length - tail.length)) + tail;
      const bytes = utf8(text);
      return { data: input.binary ? bytes : text, binary: input.binary, bytes };
    }
  }
}

interface ExpectedReply {
  /** `any`: ok or error (a request type the oracle does not model). */
  readonly t: 'ok' | 'error' | 'any';
  readonly id: number | undefined;
  readonly code?: string;
  /** Extra check of the reply's `d`; returns a problem or undefined. */
  readonly check?: (d: unknown) => string | undefined;
}

type Expectation =
  | { readonly kind: 'close'; readonly codes: readonly number[] }
  | {
      readonly kind: 'replies';
      readonly replies: readonly ExpectedReply[];
      readonly pong: boolean;
      /** The close code the frame counts towards when refused (repeated refusals close). */
      readonly strike: 1007 | 1008 | undefined;
      /** A request type the oracle does not model, sent without id: an error without id may follow. */
      readonly idlessErrorAllowed?: boolean;
    };

interface OracleContext {
  readonly ownToken: string;
  readonly otherUserToken: string;
  readonly contacts: ReadonlySet<string>;
}

const isRequestId = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_REQUEST_ID;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const refused = (
  code: 'BAD_FRAME' | 'UNKNOWN_TYPE' | 'VALIDATION_FAILED',
  id: number | undefined,
): Expectation => ({
  kind: 'replies',
  replies: [
    {
      t: 'error',
      id,
      code,
      check:
        code === 'VALIDATION_FAILED'
          ? (d) => {
              const errors = (d as { details?: { errors?: unknown } }).details?.errors;
              return Array.isArray(errors) &&
                errors.length > 0 &&
                errors.every((e) => typeof e?.path === 'string' && typeof e?.message === 'string')
                ? undefined
                : `VALIDATION_FAILED without details.errors: ${JSON.stringify(d)}`;
            }
          : undefined,
    },
  ],
  pong: false,
  strike: code === 'BAD_FRAME' ? 1007 : 1008,
});

/** What PROTOCOL.md says the server answers to `wire` on a connection of `encoding`. */
function predict(
  wire: Wire,
  encoding: Encoding,
  context: OracleContext,
  transport: 'uws' | 'fastify-ws',
): Expectation {
  // Oversize: 1009 without reply; documented deviation: the uWS edge drops (1006) past its hard cap.
  if (wire.bytes.length > MAX_FRAME_BYTES)
    return {
      kind: 'close',
      codes: [transport === 'uws' && wire.bytes.length > UWS_HARD_FRAME_CAP ? 1006 : 1009],
    };
  if (!wire.binary) {
    try {
      strictUtf8.decode(wire.bytes);
    } catch {
      // RFC 6455 §8.1: a text frame that is not UTF-8 fails the connection with 1007; documented
      // deviation: the uWS edge drops the TCP connection (1006).
      return { kind: 'close', codes: [transport === 'uws' ? 1006 : 1007] };
    }
  }
  if (wire.binary !== (encoding === 'msgpack')) return refused('BAD_FRAME', undefined);
  let value: unknown;
  if (encoding === 'json') {
    try {
      value = JSON.parse(Buffer.from(wire.bytes).toString('utf8'));
    } catch {
      return refused('BAD_FRAME', undefined);
    }
  } else {
    if (wire.bytes.length === 0) return refused('BAD_FRAME', undefined);
    // PROTOCOL.md: standard MessagePack only (no extension types, string map keys), nested at most
    // MAX_JSON_DEPTH levels: anything else is refused before the envelope is read.
    if (findMsgpackProblem(wire.bytes, MAX_JSON_DEPTH) !== undefined) return refused('BAD_FRAME', undefined);
    try {
      // As each transport hands it over: uWS an ArrayBuffer (a plain Uint8Array), ws a Buffer.
      value = unpacker.unpack(transport === 'uws' ? new Uint8Array(wire.bytes) : Buffer.from(wire.bytes));
    } catch {
      return refused('BAD_FRAME', undefined);
    }
  }
  if (!isPlainObject(value)) return refused('BAD_FRAME', undefined);
  const rawId = value.id;
  if (rawId !== undefined && !isRequestId(rawId)) return refused('BAD_FRAME', undefined);
  const id = rawId;
  if (typeof value.t !== 'string') return refused('BAD_FRAME', id);
  if (!(KNOWN_TYPES as readonly string[]).includes(value.t)) return refused('UNKNOWN_TYPE', id);
  // PROTOCOL.md, Envelope: `d` is a map/object (a bin, a timestamp, an array or null is not).
  if (value.d !== undefined && !isPlainObject(value.d)) return refused('VALIDATION_FAILED', id);
  // PROTOCOL.md: every value is plain JSON (finite numbers, well-formed strings without U+0000), nested at most MAX_JSON_DEPTH.
  if (findJsonProblem(value) !== undefined) return refused('VALIDATION_FAILED', id);
  const parsed = ClientFrame.safeParse(value);
  if (!parsed.success) return refused('VALIDATION_FAILED', id);
  return predictValid(parsed.data, id, context);
}

/** The outcome of a frame that passed validation, by the handler rules of PROTOCOL.md. */
function predictValid(frame: ClientFrame, id: number | undefined, context: OracleContext): Expectation {
  const ok = (check?: (d: unknown) => string | undefined): Expectation => ({
    kind: 'replies',
    replies: id === undefined ? [] : [{ t: 'ok', id, check }],
    pong: false,
    strike: undefined,
  });
  const error = (code: string, check?: (d: unknown) => string | undefined): Expectation => ({
    kind: 'replies',
    replies: [{ t: 'error', id, code, check }],
    pong: false,
    strike: undefined,
  });
  const integerField = (field: string) => (d: unknown) =>
    Number.isInteger((d as Record<string, unknown> | undefined)?.[field])
      ? undefined
      : `reply without integer ${field}: ${JSON.stringify(d)}`;
  switch (frame.t) {
    case 'ping':
      return id === undefined
        ? { kind: 'replies', replies: [], pong: true, strike: undefined }
        : ok(integerField('serverTime'));
    case 'presence.unsubscribe':
      return ok((d) => (d === undefined ? undefined : `unsubscribe reply with d: ${JSON.stringify(d)}`));
    case 'presence.subscribe': {
      const distinct = [...new Set(frame.d.userIds)];
      const refusedIds = distinct.filter((userId) => !context.contacts.has(userId));
      if (refusedIds.length > 0) {
        return error('FORBIDDEN', (d) => {
          const got = (d as { details?: { userIds?: unknown } }).details?.userIds;
          return Array.isArray(got) && [...got].sort().join() === [...refusedIds].sort().join()
            ? undefined
            : `FORBIDDEN details.userIds ${JSON.stringify(got)}, expected ${JSON.stringify(refusedIds)}`;
        });
      }
      return ok((d) => {
        const presence = (d as { presence?: unknown } | undefined)?.presence;
        return Array.isArray(presence) &&
          presence.length === distinct.length &&
          distinct.every((userId) => presence.some((p) => p?.userId === userId))
          ? undefined
          : `subscribe reply ${JSON.stringify(d)} does not cover ${JSON.stringify(distinct)}`;
      });
    }
    case 'auth.refresh':
      if (frame.d.accessToken === context.ownToken) return ok(integerField('expiresAt'));
      if (frame.d.accessToken === context.otherUserToken) return error('FORBIDDEN');
      return error('UNAUTHORIZED');
    default:
      return {
        kind: 'replies',
        replies: id === undefined ? [] : [{ t: 'any', id }],
        pong: false,
        strike: undefined,
        idlessErrorAllowed: id === undefined,
      };
  }
}

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

interface Pools {
  readonly contactIds: readonly string[];
  readonly strangerIds: readonly string[];
  readonly tokens: readonly string[];
}

function fuzzInputArbitrary(pools: Pools): fc.Arbitrary<FuzzInput> {
  const anyValue = fc.anything({
    maxDepth: 3,
    maxKeys: 5,
    withBigInt: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withTypedArray: true,
    withNullPrototype: true,
    withBoxedValues: true,
  });
  const jsonish = fc.jsonValue({ maxDepth: 3 });
  const validId = fc.integer({ min: 0, max: 999_999_999 });
  const invalidId = fc.oneof(
    fc.constantFrom(-1, MAX_REQUEST_ID + 1, 2 ** 53, 1.5, -0.5, '1', null, true, [], {}),
    fc.double(),
    fc.string({ maxLength: 5 }),
  );
  const userId = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...pools.contactIds) },
    { weight: 2, arbitrary: fc.constantFrom(...pools.strangerIds) },
    { weight: 2, arbitrary: fc.uuid() },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 1, arbitrary: fc.uuid().map((u) => u.toUpperCase()) },
  );
  const userIds = fc.oneof(
    { weight: 4, arbitrary: fc.array(userId, { minLength: 1, maxLength: 4 }) },
    { weight: 1, arbitrary: fc.array(userId, { minLength: 0, maxLength: 120 }) },
  );
  const accessToken = fc.oneof(
    fc.constantFrom(...pools.tokens),
    fc.string({ maxLength: 60 }),
    fc.constantFrom('', 'x'.repeat(4097), 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'),
  );
  const payload = (t: string): fc.Arbitrary<unknown> => {
    const shaped =
      t === 'auth.refresh'
        ? fc.record({ accessToken })
        : t === 'presence.subscribe' || t === 'presence.unsubscribe'
          ? fc.record({ userIds })
          : t === 'ping'
            ? fc.constant({})
            : fc.dictionary(fc.string({ maxLength: 8 }), jsonish, { maxKeys: 3 });
    return fc.oneof(
      { weight: 6, arbitrary: shaped },
      { weight: 1, arbitrary: shaped.map((d) => ({ ...(d as object), extra: 1 })) },
      { weight: 2, arbitrary: anyValue },
      { weight: 1, arbitrary: fc.constantFrom(null, [], 'd', 0) },
    );
  };
  const typeName = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...MODELLED_TYPES) },
    { weight: 1, arbitrary: fc.constantFrom(...KNOWN_TYPES) },
    { weight: 2, arbitrary: fc.string({ maxLength: 24 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        'ok',
        'error',
        'hello',
        'pong',
        'presence',
        'PING',
        'ping ',
        '__proto__',
        'constructor',
      ),
    },
    { weight: 1, arbitrary: anyValue },
  );
  const envelope = typeName.chain((t) =>
    fc
      .record(
        {
          t: fc.constant(t),
          id: fc.oneof({ weight: 5, arbitrary: validId }, { weight: 1, arbitrary: invalidId }),
          d: payload(typeof t === 'string' ? t : ''),
          extra: fc.tuple(fc.constantFrom('x', 'ID', 'type', '__proto__', 'constructor'), jsonish),
        },
        { requiredKeys: [] },
      )
      .map((parts) => {
        const frame: Record<string, unknown> = {};
        if ('t' in parts) frame.t = parts.t;
        if ('id' in parts) frame.id = parts.id;
        if ('d' in parts) frame.d = parts.d;
        if (parts.extra !== undefined)
          Object.defineProperty(frame, parts.extra[0], {
            value: parts.extra[1],
            enumerable: true,
            writable: true,
            configurable: true,
          });
        return frame;
      }),
  );
  const value = fc.oneof({ weight: 9, arbitrary: envelope }, { weight: 1, arbitrary: anyValue });
  const validFrame = fc.oneof(
    fc.record({ t: fc.constant('ping'), id: validId }),
    fc.record({ t: fc.constant('presence.subscribe'), id: validId, d: fc.record({ userIds }) }),
    fc.record({ t: fc.constant('auth.refresh'), id: validId, d: fc.record({ accessToken }) }),
  );
  return fc.oneof(
    {
      weight: 8,
      arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ kind: 'bytes' as const, bytes })),
    },
    {
      weight: 6,
      arbitrary: fc
        .string({ unit: 'binary', maxLength: 200 })
        .map((text) => ({ kind: 'text' as const, text })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.uint8Array({ maxLength: 64 }), fc.constantFrom(0xff, 0xc0, 0xed, 0xf8), fc.nat())
        .map(([bytes, bad, at]) => {
          const out = new Uint8Array(bytes.length + 1);
          const cut = bytes.length === 0 ? 0 : at % bytes.length;
          out.set(bytes.subarray(0, cut), 0);
          out[cut] = bad;
          out.set(bytes.subarray(cut), cut + 1);
          return { kind: 'invalid-utf8-text' as const, bytes: out };
        }),
    },
    {
      weight: 40,
      arbitrary: fc
        .tuple(
          value,
          fc.constantFrom('native', 'native', 'native', 'native', 'native', 'native', 'swapped', 'records'),
        )
        .map(([v, wire]) => ({
          kind: 'value' as const,
          value: v,
          wire: wire as 'native' | 'swapped' | 'records',
        })),
    },
    {
      weight: 6,
      arbitrary: fc
        .tuple(
          validFrame,
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }),
          fc.integer({ min: 0, max: 3 }),
        )
        .map(([v, edits, cut]) => ({ kind: 'mutated' as const, value: v, edits, cut })),
    },
    {
      weight: 1,
      arbitrary: fc
        // Shallow enough to decode anywhere, or far too deep for any stack (msgpack); nesting close
        // to the stack limit decodes or not depending on where the decoder runs, so it is avoided.
        .tuple(
          fc.oneof(fc.integer({ min: 100, max: 500 }), fc.integer({ min: 50_000, max: 65_000 })),
          fc.boolean(),
        )
        .map(([depth, underD]) => ({ kind: 'deep' as const, depth, underD })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.integer({ min: MAX_FRAME_BYTES - 64, max: MAX_FRAME_BYTES }), fc.boolean())
        .map(([size, binary]) => ({ kind: 'padded' as const, size, binary })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.oneof(
            { weight: 9, arbitrary: fc.integer({ min: MAX_FRAME_BYTES + 1, max: 3 * MAX_FRAME_BYTES }) },
            {
              weight: 1,
              arbitrary: fc.integer({ min: UWS_HARD_FRAME_CAP + 1, max: UWS_HARD_FRAME_CAP + 4_096 }),
            },
          ),
          fc.boolean(),
        )
        .map(([size, binary]) => ({ kind: 'oversize' as const, size, binary })),
    },
  );
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/**
 * 4 000 in the suite (it was 10 000, then 6 000: ~20 s of CPU more, on a CI run that must stay
 * inside 15 minutes; and since review 30b a lane reconnecting inside the node's count of refused
 * frames is closed at its third refusal, so each frame costs about a third of a reconnect more:
 * 4 000 take the time 6 000 took). `FUZZ_FRAMES=<n>` sends more. Fixed seeds by default so CI is
 * repeatable (fewer frames are the first ones of the same sequence); `FUZZ_SEED=<n>` explores other
 * inputs (a failure prints the seed and the counterexample to replay).
 */
const FUZZ_FRAMES = Number(process.env.FUZZ_FRAMES ?? 4_000);
const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261122);
const LANES = 2;
const REPLY_TIMEOUT_MS = 5_000;
/** Sentinel ping ids live above every id the generators produce for a valid request. */
const SENTINEL_BASE = 1_000_000_000;

interface LaneStats {
  frames: number;
  connections: number;
  /** By close code. */
  readonly closes: Map<string, number>;
  /** By `t`, and by code for errors. */
  readonly replies: Map<string, number>;
  /** Closes 1007/1008 after fewer refusals of the connection's own than a fresh count allows (the carried count). */
  carriedCloses: number;
  /** Time spent opening connections (for the runtime budget). */
  connectMs: number;
}

/**
 * One fuzzing lane: a user whose connection alternates between transports and encodings on each
 * reconnect; each input is checked against the oracle before the next is sent.
 */
function createLane(options: {
  readonly urls: readonly string[];
  readonly uwsUrl: string;
  readonly user: Registered;
  readonly context: OracleContext;
}) {
  const stats: LaneStats = {
    frames: 0,
    connections: 0,
    closes: new Map(),
    replies: new Map(),
    carriedCloses: 0,
    connectMs: 0,
  };
  let peer: Peer | undefined;
  let sentinel = SENTINEL_BASE;
  let strikes = 0;
  let firstStrikeAt = 0;
  const count = (map: Map<string, number>, key: string | number) =>
    map.set(String(key), (map.get(String(key)) ?? 0) + 1);

  const connect = async (): Promise<Peer> => {
    if (peer !== undefined && peer.closed === undefined) return peer;
    const n = stats.connections++;
    const url = options.urls[n % options.urls.length] as string;
    const encoding: Encoding = Math.floor(n / options.urls.length) % 2 === 0 ? 'msgpack' : 'json';
    const startedAt = Date.now();
    peer = await openVerifiedPeer(url, options.user.accessToken, encoding);
    stats.connectMs += Date.now() - startedAt;
    // The refusals of this connection: the node's count goes on from the lane's earlier ones.
    strikes = 0;
    return peer;
  };

  const runOne = async (input: FuzzInput): Promise<void> => {
    const current = await connect();
    stats.frames += 1;
    const wire = toWire(input, current.encoding);
    const transport = current.url === options.uwsUrl ? 'uws' : 'fastify-ws';
    const expected = predict(wire, current.encoding, options.context, transport);
    const where = `${current.url} (${current.encoding}), input ${input.kind}`;
    const mark = current.received.length;
    current.send(wire.data, wire.binary);

    if (expected.kind === 'close') {
      await current.until(() => false, REPLY_TIMEOUT_MS, `close ${expected.codes.join('/')}`);
      const after = current.received.slice(mark);
      if (after.length > 0)
        throw new Error(`${where}: expected a close without reply, got ${JSON.stringify(after)}`);
      const code = current.closed?.code;
      if (code === undefined || !expected.codes.includes(code))
        throw new Error(
          `${where}: expected close ${expected.codes.join('/')}, got ${code} ${current.closed?.reason}`,
        );
      count(stats.closes, code);
      return;
    }

    const sentinelId = sentinel++;
    current.sendFrame({ t: 'ping', id: sentinelId });
    const matched = new Set<number>();
    const matches = (reply: ExpectedReply, received: Received) => {
      const f = received.frame;
      if (f === undefined || f.id !== reply.id) return false;
      if (reply.t === 'any' ? f.t !== 'ok' && f.t !== 'error' : f.t !== reply.t) return false;
      return reply.code === undefined || (f.d as { code?: unknown }).code === reply.code;
    };
    const settled = () => {
      const after = current.received.slice(mark);
      const gotSentinel = after.some((r) => r.frame?.t === 'ok' && r.frame.id === sentinelId);
      const gotReplies = expected.replies.every((reply) => after.some((r) => matches(reply, r)));
      const gotPong = !expected.pong || after.some((r) => r.frame?.t === 'pong');
      return gotSentinel && gotReplies && gotPong;
    };
    await current.until(
      settled,
      REPLY_TIMEOUT_MS,
      `the replies to ${JSON.stringify(expected.replies)} and sentinel ${sentinelId}`,
    );

    const after = current.received.slice(mark);
    for (const [index, received] of after.entries()) {
      if (received.problem !== undefined)
        throw new Error(
          `${where}: unacceptable server frame: ${received.problem} ${JSON.stringify(received.frame)}`,
        );
      const frame = received.frame as Record<string, unknown>;
      if (frame.t === 'ok' && frame.id === sentinelId) continue;
      if (frame.t === 'error') count(stats.replies, (frame.d as { code: string }).code);
      else count(stats.replies, String(frame.t));
      if (frame.t === 'presence') continue;
      const reply = expected.replies.find((r) => matches(r, received));
      if (reply !== undefined && !matched.has(index)) {
        matched.add(index);
        const problem = reply.check?.(frame.d);
        if (problem !== undefined) throw new Error(`${where}: ${problem}`);
        continue;
      }
      if (frame.t === 'pong' && expected.pong) continue;
      if (frame.t === 'error' && frame.id === undefined && expected.idlessErrorAllowed) continue;
      throw new Error(
        `${where}: unexpected ${JSON.stringify(frame)}; expected ${JSON.stringify(expected)} for ${describeInput(input, wire)}`,
      );
    }

    if (expected.strike !== undefined) {
      const now = Date.now();
      if (strikes === 0 || now - firstStrikeAt > 10_000) {
        strikes = 0;
        firstStrikeAt = now;
      }
      strikes += 1;
    }
    if (current.closed !== undefined) {
      const { code, reason } = current.closed;
      count(stats.closes, code);
      if (!DOCUMENTED_ABUSE_CLOSES.has(code))
        throw new Error(
          `${where}: closed with undocumented ${code} ${reason} (client error: ${current.clientError}) after ${JSON.stringify(after.map((r) => r.frame ?? r.problem))} for ${describeInput(input, wire)}`,
        );
      if (expected.strike === undefined)
        throw new Error(
          `${where}: closed ${code} (${reason}) after an acceptable frame ${describeInput(input, wire)}`,
        );
      if (code !== expected.strike)
        throw new Error(
          `${where}: closed ${code} (${reason}); a refusal of this kind closes with ${expected.strike}`,
        );
      if (!expected.replies.every((reply) => after.some((r) => matches(reply, r))))
        throw new Error(`${where}: closed ${code} before answering the refused frame`);
      // At least 3 of its own before the close, whatever the count carried from earlier connections.
      if (strikes < NEW_CONNECTION_MIN_STRIKES)
        throw new Error(`${where}: closed ${code} after only ${strikes} refused frames`);
      if (strikes <= FRESH_STRIKE_ALLOWANCE) stats.carriedCloses += 1;
    } else if (strikes > 40 && Date.now() - firstStrikeAt < 8_000) {
      // The node closes at the 21st refusal within its own 10-second window, which starts at the
      // first refusal after the last one ended: 8 seconds of ours can straddle two of its windows
      // and hold 20 + 20 refusals without a close. The 41st cannot fit.
      throw new Error(`${where}: ${strikes} refused frames within seconds and the connection is still open`);
    }
  };

  return { stats, runOne, close: async () => peer?.close() };
}

function describeInput(input: FuzzInput, wire: Wire): string {
  const preview = Buffer.from(wire.bytes.subarray(0, 120)).toString(wire.binary ? 'hex' : 'utf8');
  return `${input.kind} ${wire.binary ? 'binary' : 'text'} ${wire.bytes.length} B: ${preview}`;
}

/** A client that follows the protocol: pings with ids every `everyMs`, each must be answered within 2 s. */
function startWellBehaved(peer: Peer, everyMs: number) {
  const result = { sent: 0, answered: 0, maxRttMs: 0, failures: [] as string[] };
  let id = 1;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const requestId = id++;
      const sentAt = Date.now();
      const mark = peer.received.length;
      peer.sendFrame({ t: 'ping', id: requestId });
      result.sent += 1;
      try {
        await peer.until(
          () => peer.received.slice(mark).some((r) => r.frame?.id === requestId),
          2_000,
          `ping ${requestId}`,
        );
        const reply = peer.received.slice(mark).find((r) => r.frame?.id === requestId);
        if (reply?.frame?.t !== 'ok')
          result.failures.push(`ping ${requestId}: ${JSON.stringify(reply ?? peer.closed)}`);
        else result.answered += 1;
        result.maxRttMs = Math.max(result.maxRttMs, Date.now() - sentAt);
      } catch (error) {
        result.failures.push((error as Error).message);
      }
      if (peer.closed !== undefined) {
        result.failures.push(`well-behaved socket closed: ${JSON.stringify(peer.closed)}`);
        return;
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    result,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

async function startTestNode(
  env: Record<string, string>,
  logs: ReturnType<typeof captureLogs>,
  db: TestDatabase,
) {
  return startNode(
    testConfig({
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: uniqueRedisPrefix(),
      ...env,
    }),
    logs.log,
    { pid: process.pid },
  );
}

const wsUrlsOf = (node: RunningNode): string[] => {
  if (node.uwsUrl === undefined) throw new Error('no uWebSockets.js listener: no native build loaded');
  return [node.uwsUrl, `${node.baseUrl.replace('http', 'ws')}/ws`];
};

describe('WebSocket fuzzing', () => {
  let db: TestDatabase;
  let node: RunningNode;
  let api: ReturnType<typeof httpClient>;
  const logs = captureLogs();
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort().join();

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
    db = await createMigratedDatabase();
    node = await startTestNode(
      { NODE_ID: 'fuzz-node', WS_MAX_MESSAGES_PER_SECOND: '100000', WS_MAX_BURST: '100000' },
      logs,
      db,
    );
    api = httpClient(node.baseUrl);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
    if (node !== undefined) await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    await db?.drop();
  });

  it(`answers ${FUZZ_FRAMES} random frames only as documented, and stays healthy for everyone else`, async () => {
    const urls = wsUrlsOf(node);
    const wellBehavedUser = await registerUser(api);
    const offlineContact = await registerUser(api);
    const stranger = await registerUser(api);
    const fuzzers = await Promise.all(Array.from({ length: LANES }, () => registerUser(api)));
    for (const fuzzer of fuzzers) {
      for (const contact of [wellBehavedUser, offlineContact]) {
        expect((await api.post(`/v1/me/contacts/${contact.id}`, undefined, fuzzer.accessToken)).status).toBe(
          204,
        );
        // Presence is for mutual contacts: the contact adds the fuzzer back.
        expect((await api.post(`/v1/me/contacts/${fuzzer.id}`, undefined, contact.accessToken)).status).toBe(
          204,
        );
      }
    }

    const pools = (user: Registered): Pools => ({
      contactIds: [wellBehavedUser.id, offlineContact.id],
      strangerIds: [stranger.id, user.id],
      tokens: [user.accessToken, wellBehavedUser.accessToken],
    });
    // Building the arbitraries takes most of a second (the node shares this event loop): before the clock starts.
    const arbitraries = fuzzers.map((user) => fuzzInputArbitrary(pools(user)));

    // Well-behaved clients on both transports, and /health/live, watched for the whole run.
    const calm = await Promise.all(
      urls.map(async (url, i) =>
        startWellBehaved(
          await openVerifiedPeer(url, wellBehavedUser.accessToken, i === 0 ? 'msgpack' : 'json'),
          50,
        ),
      ),
    );
    const health: number[] = [];
    let watchingHealth = true;
    const healthLoop = (async () => {
      while (watchingHealth) {
        health.push((await fetch(`${node.baseUrl}/health/live`)).status);
        await new Promise((r) => setTimeout(r, 250));
      }
    })();

    const lanes = fuzzers.map((user) =>
      createLane({
        urls,
        uwsUrl: urls[0] as string,
        user,
        context: {
          ownToken: user.accessToken,
          otherUserToken: wellBehavedUser.accessToken,
          contacts: new Set([wellBehavedUser.id, offlineContact.id]),
        },
      }),
    );
    const started = Date.now();
    try {
      await Promise.all(
        lanes.map((lane, i) =>
          fc.assert(
            fc.asyncProperty(arbitraries[i] as fc.Arbitrary<FuzzInput>, (input) => lane.runOne(input)),
            { numRuns: FUZZ_FRAMES / LANES, endOnFailure: true, seed: FUZZ_SEED + i },
          ),
        ),
      );
    } finally {
      watchingHealth = false;
      await healthLoop;
      for (const c of calm) await c.stop();
      for (const lane of lanes) await lane.close();
    }
    const elapsedMs = Date.now() - started;

    const summary = lanes.map((lane) => ({
      frames: lane.stats.frames,
      connections: lane.stats.connections,
      closes: Object.fromEntries(lane.stats.closes),
      replies: Object.fromEntries(lane.stats.replies),
      carriedCloses: lane.stats.carriedCloses,
      connectMs: lane.stats.connectMs,
    }));
    console.log(
      JSON.stringify({
        elapsedMs,
        freshSocketDrops,
        lanes: summary,
        wellBehaved: calm.map((c) => c.result),
        healthChecks: health.length,
      }),
    );

    expect(lanes.reduce((sum, lane) => sum + lane.stats.frames, 0)).toBeGreaterThanOrEqual(FUZZ_FRAMES);
    for (const lane of lanes) {
      // Every kind of outcome was exercised, so the oracle was not trivially satisfied.
      expect([...lane.stats.closes.keys()]).toEqual(expect.arrayContaining(['1007', '1008', '1009']));
      // Reconnecting did not start the count of refused frames again.
      expect(lane.stats.carriedCloses).toBeGreaterThan(0);
      expect([...lane.stats.replies.keys()]).toEqual(
        expect.arrayContaining([
          'ok',
          'BAD_FRAME',
          'UNKNOWN_TYPE',
          'VALIDATION_FAILED',
          'FORBIDDEN',
          'UNAUTHORIZED',
        ]),
      );
    }
    for (const c of calm) {
      expect(c.result.failures).toEqual([]);
      expect(c.result.answered).toBeGreaterThan(10);
    }
    expect(health.length).toBeGreaterThan(0);
    expect(health.every((status) => status === 200)).toBe(true);
    expect((await fetch(`${node.baseUrl}/health/live`)).status).toBe(200);
    expect(unhandled).toEqual([]);
    // `__proto__` and `constructor` keys in frames polluted nothing.
    expect(Object.getOwnPropertyNames(Object.prototype).sort().join()).toBe(prototypeKeys);
    expect(logs.lines().filter((line) => line.msg === 'request handler failed')).toEqual([]);
  }, 120_000);

  /** A frame of exactly maxFrameBytes gets a reply; one byte more closes 1009 without reply (both encodings). */
  const checkFrameLimit = async (url: string) => {
    const user = await registerUser(api);
    const outcomes: unknown[] = [];
    for (const encoding of ['msgpack', 'json'] as const) {
      const peer = await openVerifiedPeer(url, user.accessToken, encoding);
      const binary = encoding === 'msgpack';
      const at = toWire({ kind: 'padded', size: MAX_FRAME_BYTES, binary }, encoding);
      expect(at.bytes.length).toBe(MAX_FRAME_BYTES);
      let mark = peer.received.length;
      peer.send(at.data, at.binary);
      await peer.until(() => peer.received.length > mark, REPLY_TIMEOUT_MS, 'a reply to a 64 KiB frame');
      expect(peer.closed).toBeUndefined();
      expect(peer.received[mark]?.frame).toMatchObject({
        t: 'error',
        d: { code: binary ? 'BAD_FRAME' : 'VALIDATION_FAILED' },
      });
      mark = peer.received.length;
      const over = toWire({ kind: 'oversize', size: MAX_FRAME_BYTES + 1, binary }, encoding);
      peer.send(over.data, over.binary);
      await peer.until(() => false, REPLY_TIMEOUT_MS, 'close 1009');
      outcomes.push({ encoding, closed: peer.closed?.code, repliesAfter: peer.received.length - mark });
    }
    expect(outcomes).toEqual([
      { encoding: 'msgpack', closed: 1009, repliesAfter: 0 },
      { encoding: 'json', closed: 1009, repliesAfter: 0 },
    ]);
  };

  it.each([0, 1])(
    'accepts a frame of exactly maxFrameBytes and closes one byte more with 1009 (transport %i)',
    async (transport) => {
      await checkFrameLimit(wsUrlsOf(node)[transport] as string);
    },
  );

  /** Sends one frame on a fresh connection and returns the close code (no reply may come first). */
  const closeCodeAfter = async (url: string, encoding: Encoding, data: Uint8Array, binary: boolean) => {
    const user = await registerUser(api);
    const peer = await openVerifiedPeer(url, user.accessToken, encoding);
    const mark = peer.received.length;
    peer.send(data, binary);
    await peer.until(() => false, REPLY_TIMEOUT_MS, 'a close');
    expect(peer.received.slice(mark)).toEqual([]);
    return peer.closed?.code;
  };

  it('a frame over 16 × maxFrameBytes: 1009 on the HTTP port, 1006 (documented drop) on the uWS edge', async () => {
    const [uws, http] = wsUrlsOf(node) as [string, string];
    const huge = new Uint8Array(UWS_HARD_FRAME_CAP + 1);
    expect(await closeCodeAfter(http, 'msgpack', huge, true)).toBe(1009);
    expect(await closeCodeAfter(uws, 'msgpack', huge, true)).toBe(1006);
  });

  it('a text frame that is not UTF-8: 1007 on the HTTP port, 1006 (documented drop) on the uWS edge', async () => {
    const [uws, http] = wsUrlsOf(node) as [string, string];
    const notUtf8 = new Uint8Array([0x7b, 0xff, 0x7d]);
    expect(await closeCodeAfter(http, 'json', notUtf8, false)).toBe(1007);
    expect(await closeCodeAfter(uws, 'json', notUtf8, false)).toBe(1006);
  });

  // Found by the fuzz run (a `d` without own keys passed zod's strictObject as `{}`), fixed in f50421a.
  it.each([0, 1])(
    'refuses a ping whose d is a MessagePack timestamp, bin or nil (transport %i)',
    async (transport) => {
      const user = await registerUser(api);
      const peer = await openVerifiedPeer(wsUrlsOf(node)[transport] as string, user.accessToken, 'msgpack');
      const mark = peer.received.length;
      peer.send(packer.pack({ t: 'ping', id: 1, d: new Date(0) }), true);
      peer.send(packer.pack({ t: 'ping', id: 2, d: new Uint8Array(0) }), true);
      peer.send(packer.pack({ t: 'ping', id: 3, d: null }), true);
      await peer.until(() => peer.received.length >= mark + 3, REPLY_TIMEOUT_MS, 'three replies');
      expect(
        peer.received
          .slice(mark)
          .map((r) => [r.frame?.id, r.frame?.t, (r.frame?.d as { code?: string })?.code]),
      ).toEqual([
        // A timestamp is a MessagePack extension: refused before decoding, so no id is readable.
        [undefined, 'error', 'BAD_FRAME'],
        [2, 'error', 'VALIDATION_FAILED'],
        [3, 'error', 'VALIDATION_FAILED'],
      ]);
      await peer.close();
    },
  );

  it('sees no unhandled rejection and /health/live 200 after all of it', async () => {
    expect(unhandled).toEqual([]);
    expect((await fetch(`${node.baseUrl}/health/live`)).status).toBe(200);
  });

  // PROTOCOL.md: "the first of the two in your list wins" (fixed in d09cae6; kept as a regression test).
  it('/ws on the HTTP port: with json offered first, the 101 echoes gigwire.v1.json', async () => {
    const user = await registerUser(api);
    const ws = new WebSocket(`${node.baseUrl.replace('http', 'ws')}/ws`, [
      'gigwire.v1.json',
      'gigwire.v1.msgpack',
      `bearer.${user.accessToken}`,
    ]);
    const first = new Promise<{ data: Buffer; isBinary: boolean }>((resolve, reject) => {
      ws.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary }));
      ws.once('error', reject);
    });
    const hello = await first;
    const echoed = ws.protocol;
    ws.close();
    expect({ echoed, helloIsBinary: hello.isBinary }).toEqual({
      echoed: 'gigwire.v1.json',
      helloIsBinary: false,
    });
  });
});

describe('WebSocket rate limiting at the default limits', () => {
  let db: TestDatabase;
  let node: RunningNode;
  let api: ReturnType<typeof httpClient>;
  const logs = captureLogs();

  beforeAll(async () => {
    db = await createMigratedDatabase();
    node = await startTestNode({ NODE_ID: 'rate-node' }, logs, db);
    api = httpClient(node.baseUrl);
  });
  afterAll(async () => {
    if (node !== undefined) await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    await db?.drop();
  });

  it.each([0, 1])('refuses a flood with RATE_LIMITED, then closes 1008 (transport %i)', async (transport) => {
    const user = await registerUser(api);
    const url = wsUrlsOf(node)[transport] as string;
    const peer = await openVerifiedPeer(url, user.accessToken, 'json');
    const hello = peer.received[0]?.frame?.d as {
      limits: { maxMessagesPerSecond: number; maxBurst: number };
    };
    const limits = hello.limits;
    expect(limits).toMatchObject({ maxMessagesPerSecond: 50, maxBurst: 100 });

    // The rest of the burst (the verifying ping took one token) is accepted.
    const burstIds = Array.from({ length: limits.maxBurst - 1 }, (_, i) => i + 1);
    for (const id of burstIds) peer.sendFrame({ t: 'ping', id });
    await peer.until(
      () => burstIds.every((id) => peer.received.some((r) => r.frame?.id === id)),
      REPLY_TIMEOUT_MS,
      'replies to the burst',
    );
    expect(
      peer.received.filter((r) => r.frame?.t === 'ok' && burstIds.includes(r.frame.id as number)).length,
    ).toBe(burstIds.length);

    // Keep sending: RATE_LIMITED errors carrying the request ids, then a 1008 close.
    const floodIds = Array.from({ length: 300 }, (_, i) => 1_000 + i);
    for (const id of floodIds) peer.sendFrame({ t: 'ping', id });
    // The 300 frames' answers and the close after them: longer than one reply's wait (a loaded box
    // took over 5 s to answer them all).
    await peer.until(() => false, 4 * REPLY_TIMEOUT_MS, 'close 1008');
    expect(peer.closed?.code).toBe(1008);
    const flood = peer.received.filter(
      (r) => typeof r.frame?.id === 'number' && (r.frame.id as number) >= 1_000,
    );
    const limited = flood.filter((r) => r.frame?.t === 'error');
    expect(flood.every((r) => r.problem === undefined)).toBe(true);
    expect(limited.length).toBeGreaterThanOrEqual(3);
    for (const r of limited) expect(r.frame?.d).toMatchObject({ code: 'RATE_LIMITED' });
    // Tokens refill at maxMessagesPerSecond: only a few flood frames can have been accepted.
    expect(flood.filter((r) => r.frame?.t === 'ok').length).toBeLessThan(20);
    // Each request got at most one reply.
    expect(new Set(flood.map((r) => r.frame?.id)).size).toBe(flood.length);

    // Not banned: a new connection works at once.
    const again = await openVerifiedPeer(url, user.accessToken, 'msgpack');
    const mark = again.received.length;
    again.sendFrame({ t: 'ping', id: 1 });
    await again.until(() => again.received.length > mark, REPLY_TIMEOUT_MS, 'ping reply');
    expect(again.received[mark]?.frame).toMatchObject({ t: 'ok', id: 1 });
    await again.close();
  });

  // Found missing by this test file, fixed in f50421a.
  it('gives RATE_LIMITED errors details.retryAfterMs as PROTOCOL.md documents', async () => {
    const user = await registerUser(api);
    const peer = await openVerifiedPeer(wsUrlsOf(node)[0] as string, user.accessToken, 'json');
    for (let id = 1; id <= 110; id++) peer.sendFrame({ t: 'ping', id });
    await peer.until(
      () => peer.received.some((r) => r.frame?.t === 'error'),
      REPLY_TIMEOUT_MS,
      'RATE_LIMITED',
    );
    const limited = peer.received.find((r) => r.frame?.t === 'error');
    expect(limited?.frame?.d).toMatchObject({ code: 'RATE_LIMITED' });
    const refusal = limited?.frame?.d as { details?: { retryAfterMs?: unknown } } | undefined;
    const retryAfterMs = refusal?.details?.retryAfterMs;
    expect(
      // At 50 frames per second a token comes back within 20 ms.
      Number.isInteger(retryAfterMs) && (retryAfterMs as number) > 0 && (retryAfterMs as number) <= 20,
      JSON.stringify(limited?.frame),
    ).toBe(true);
    await peer.close();
  });

  it('a paced client at the sustained rate is never limited', async () => {
    const user = await registerUser(api);
    const peer = await openVerifiedPeer(wsUrlsOf(node)[1] as string, user.accessToken, 'msgpack');
    // 150 pings over ~2 s: the verifying one and 99 at once (the burst), then 50 more at 40/s,
    // below the sustained 50/s.
    const mark = peer.received.length;
    for (let id = 1; id <= 99; id++) peer.sendFrame({ t: 'ping', id });
    for (let id = 100; id <= 149; id++) {
      await new Promise((r) => setTimeout(r, 25));
      peer.sendFrame({ t: 'ping', id });
    }
    await peer.until(() => peer.received.length - mark >= 149, REPLY_TIMEOUT_MS, 'replies');
    const replies = peer.received.slice(mark);
    expect(replies.filter((r) => r.frame?.t === 'error')).toEqual([]);
    expect(replies.length).toBe(149);
    expect(peer.closed).toBeUndefined();
    await peer.close();
  });
});
