/**
 * Bytes ↔ frames for both encodings. Decoding never throws: whatever arrives from the network
 * (garbage, a text frame on a msgpack connection, deeply nested data, an unknown type) becomes a
 * `DecodeFailure` carrying the error code to reply with, so the gateway can answer and count abuse
 * instead of crashing, and the SDK can skip frames of a newer server.
 *
 * MessagePack on the wire is the standard format only (maps, arrays, str, int, float, nil, bool):
 * no msgpackr records, no extensions, so Python's `msgpack` and every other implementation read it.
 */
import { Packr } from 'msgpackr';
import type { z } from 'zod';
import { ErrorCode } from './codes.js';
import {
  ClientFrame,
  ClientFrameType,
  type ErrorReply,
  MAX_REQUEST_ID,
  type RequestId,
  ServerFrame,
  ServerPushType,
} from './frames.js';
import { findJsonProblem, MAX_FRAME_VALUES, MAX_JSON_DEPTH, MAX_WIRE_DEPTH } from './json-value.js';
import { scanMsgpack } from './msgpack-scan.js';
import { Encoding } from './version.js';

/** The error codes decoding can produce; each is the `code` of the `error` reply to send. */
export type FrameErrorCode = Extract<ErrorCode, 'BAD_FRAME' | 'UNKNOWN_TYPE' | 'VALIDATION_FAILED'>;

/** One validation problem; `path` is dotted from the frame root, e.g. `d.userIds.0` (`""` = the frame). */
export interface FieldIssue {
  readonly path: string;
  readonly message: string;
}

/**
 * Why a frame was refused. `id` is the request id when the envelope was readable, so the error
 * reply can fail the right pending request; `errors` lists field problems of VALIDATION_FAILED.
 * Messages are bounded (never echo a large input back).
 */
export interface DecodeFailure {
  readonly ok: false;
  readonly code: FrameErrorCode;
  readonly message: string;
  readonly id?: RequestId;
  readonly errors?: readonly FieldIssue[];
}

/** A decoded and validated frame, or why not. */
export type DecodeResult<F> = { readonly ok: true; readonly frame: F } | DecodeFailure;

/**
 * A received WebSocket message: a string for a text frame, bytes for a binary frame. Decoding
 * finishes synchronously and copies what it keeps, so an ArrayBuffer that the transport reuses
 * after the callback (uWebSockets.js) is safe to pass.
 */
export type WireData = Uint8Array | ArrayBuffer | string;

/** Any frame either side may send. */
export type AnyFrame = ClientFrame | ServerFrame;

/** Encoder and decoders sharing one msgpack instance; see `createCodec`. */
export interface Codec {
  /** msgpack → bytes for a binary frame; json → a string for a text frame. Keys whose value is undefined are left out in both. */
  encode(frame: AnyFrame, encoding: typeof Encoding.MSGPACK): Uint8Array;
  encode(frame: AnyFrame, encoding: typeof Encoding.JSON): string;
  encode(frame: AnyFrame, encoding: Encoding): Uint8Array | string;
  /** Server side: decodes and validates a client request. Never throws. */
  decodeClient(data: WireData, encoding: Encoding): DecodeResult<ClientFrame>;
  /** Client side (SDK): decodes and validates a server frame; an unknown push type is UNKNOWN_TYPE, to be skipped. Never throws. */
  decodeServer(data: WireData, encoding: Encoding): DecodeResult<ServerFrame>;
}

const MAX_ECHOED_CHARS = 64;
/** Longest path or message of one reported issue (see boundedIssue). */
const MAX_ISSUE_CHARS = 256;
const MAX_REPORTED_ISSUES = 10;
const clientTypes: ReadonlySet<string> = new Set<string>(Object.values(ClientFrameType));
const serverTypes: ReadonlySet<string> = new Set<string>(['ok', 'error', ...Object.values(ServerPushType)]);

/**
 * Creates a codec. Cheap; make one per gateway (or per SDK client) and reuse it: the msgpack
 * instance keeps a growing output buffer. Not a module singleton so tests and several clients in
 * one page share no state.
 */
export function createCodec(): Codec {
  // MUST keep useRecords: false. msgpackr's default records extension is unreadable by other
  // MessagePack implementations. variableMapSize: smallest map header (fixmap) as other encoders
  // write. int64AsType: a uint64/int64 from another language (Python packs ints ≥ 2^32 so)
  // decodes as a number, not a BigInt that no schema accepts. copyBuffers: binary values must not
  // point into a transport buffer that is reused after the message callback.
  const packr = new Packr({
    useRecords: false,
    variableMapSize: true,
    int64AsType: 'number',
    copyBuffers: true,
  });
  // MUST decode a map with a key `__proto__` with this one: msgpackr's object decoding renames that
  // key to `__proto_`, and the frame would be validated (and stored) other than sent. Maps keep every
  // key; `mapsToObjects` rebuilds them as null-prototype objects, where `__proto__` is an ordinary
  // key that the JSON-value check then refuses by its path, as on json connections. Only frames the
  // scan flags take this slower path.
  const faithfulPackr = new Packr({
    useRecords: false,
    mapsAsObjects: false,
    int64AsType: 'number',
    copyBuffers: true,
  });

  function encode(frame: AnyFrame, encoding: typeof Encoding.MSGPACK): Uint8Array;
  function encode(frame: AnyFrame, encoding: typeof Encoding.JSON): string;
  function encode(frame: AnyFrame, encoding: Encoding): Uint8Array | string;
  function encode(frame: AnyFrame, encoding: Encoding): Uint8Array | string {
    if (encoding === Encoding.JSON) return JSON.stringify(toWireValue(frame, false));
    return packr.pack(toWireValue(frame, true));
  }

  /**
   * `keepProtoKeys`: decode a msgpack key `__proto__` as such (for validate to refuse), not renamed.
   * `maxValues`: most values the msgpack bytes may hold, checked before they are decoded.
   */
  function decodeValue(
    data: WireData,
    encoding: Encoding,
    maxDepth: number,
    keepProtoKeys: boolean,
    maxValues = Number.POSITIVE_INFINITY,
  ): { ok: true; value: unknown } | DecodeFailure {
    if (encoding === Encoding.JSON) {
      if (typeof data !== 'string') return badFrame('binary frame on a json connection: send text frames');
      // As the msgpack scan counts values before decoding: JSON.parse of 64 KiB holding tens of
      // thousands of them costs ten times this pass (the JSON-value check counts exactly later).
      if (hasCommasOutsideStrings(data, maxValues)) return badFrame(`more than ${maxValues} values`);
      try {
        return { ok: true, value: JSON.parse(data) };
      } catch {
        return badFrame('frame is not valid JSON');
      }
    }
    if (typeof data === 'string') return badFrame('text frame on a msgpack connection: send binary frames');
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    if (bytes.length === 0) return badFrame('empty frame');
    // Checked before msgpackr sees the bytes: it would build BigInts, Dates and records from
    // extension types and recurse once per nesting level.
    const scan = scanMsgpack(bytes, maxDepth, maxValues);
    if (scan.problem !== undefined) return badFrame(scan.problem);
    try {
      return {
        ok: true,
        value:
          scan.protoKey && keepProtoKeys ? mapsToObjects(faithfulPackr.unpack(bytes)) : packr.unpack(bytes),
      };
    } catch {
      // Truncated input, trailing bytes, reserved types and stack overflows from nesting all land here.
      return badFrame('frame is not a single valid MessagePack value');
    }
  }

  return {
    encode,
    decodeClient(data, encoding) {
      // At most MAX_FRAME_VALUES values: what decoding and checking costs grows with them (review 30).
      const decoded = decodeValue(data, encoding, MAX_JSON_DEPTH, true, MAX_FRAME_VALUES);
      if (!decoded.ok) return decoded;
      return validate(decoded.value, clientTypes, ClientFrame, MAX_JSON_DEPTH, false, MAX_FRAME_VALUES);
    },
    decodeServer(data, encoding) {
      // Server frames are read as before, `__proto__` keys allowed (msgpackr renames them): no input
      // can store one any more, and a reader must never choke on data stored earlier.
      const decoded = decodeValue(data, encoding, MAX_WIRE_DEPTH, false);
      if (!decoded.ok) return decoded;
      return validate(decoded.value, serverTypes, ServerFrame, MAX_WIRE_DEPTH, true);
    },
  };
}

/**
 * The `error` reply for a refused frame: its id when one was readable, the field problems of a
 * VALIDATION_FAILED as `details.errors`.
 */
export function errorReplyFor(failure: DecodeFailure): ErrorReply {
  return {
    t: 'error',
    ...(failure.id === undefined ? {} : { id: failure.id }),
    d: {
      code: failure.code,
      message: failure.message,
      ...(failure.errors === undefined ? {} : { details: { errors: failure.errors } }),
    },
  };
}

function validate<F>(
  value: unknown,
  knownTypes: ReadonlySet<string>,
  schema: z.ZodType<F>,
  maxDepth: number,
  allowProtoKey: boolean,
  maxValues = Number.POSITIVE_INFINITY,
): DecodeResult<F> {
  if (!isPlainObject(value)) return badFrame('frame is not an envelope object {t, id?, d?}');
  const rawId = value.id;
  if (rawId !== undefined && !isRequestId(rawId)) {
    return badFrame(`id must be an integer from 0 to ${MAX_REQUEST_ID}`);
  }
  const id = rawId;
  const t = value.t;
  if (typeof t !== 'string') return withId(badFrame('t must be a string naming the frame type'), id);
  if (!knownTypes.has(t))
    return withId(failure(ErrorCode.UNKNOWN_TYPE, `unknown frame type ${quote(t)}`), id);
  // `d` is a map by contract. A MessagePack timestamp (Date) or bin (Uint8Array) has no own keys and
  // would pass zod's strictObject as `{}`: refuse it here.
  if (value.d !== undefined && !isPlainObject(value.d)) {
    return withId(
      {
        ok: false,
        code: ErrorCode.VALIDATION_FAILED,
        message: `invalid ${quote(t)} frame: d: must be a map`,
        errors: [{ path: 'd', message: 'must be a map' }],
      },
      id,
    );
  }
  // Every value of a frame is plain JSON within the depth cap before any schema (or anything that
  // recurses) looks at it: no bytes, no non-finite numbers, no unpaired surrogate or U+0000.
  const found = findJsonProblem(value, { maxDepth, allowProtoKey, maxNodes: maxValues });
  if (found !== undefined) {
    const problem = boundedIssue(found);
    return withId(
      {
        ok: false,
        code: ErrorCode.VALIDATION_FAILED,
        message: `invalid ${quote(t)} frame: ${problem.path === '' ? 'frame' : problem.path}: ${problem.message}`,
        errors: [problem],
      },
      id,
    );
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, frame: parsed.data };
  const errors = parsed.error.issues
    .slice(0, MAX_REPORTED_ISSUES)
    .map((issue) => boundedIssue({ path: issue.path.map(String).join('.'), message: issue.message }));
  const first = errors[0];
  const summary =
    first === undefined ? 'invalid' : `${first.path === '' ? 'frame' : first.path}: ${first.message}`;
  return withId(
    {
      ok: false,
      code: ErrorCode.VALIDATION_FAILED,
      message: `invalid ${quote(t)} frame: ${summary}`,
      errors,
    },
    id,
  );
}

/**
 * A value decoded with maps as Maps, rebuilt with null-prototype objects (string keys only: the
 * scan refuses others), so that a key `__proto__` is an own key. Nesting is within the scan's cap.
 */
function mapsToObjects(value: unknown): unknown {
  if (value instanceof Map) {
    const out: Record<string, unknown> = Object.create(null);
    for (const [key, item] of value) out[key as string] = mapsToObjects(item);
    return out;
  }
  if (Array.isArray(value)) return value.map(mapsToObjects);
  return value;
}

/**
 * Whether JSON text holds at least `count` commas outside its strings: then it holds more than
 * `count` values (each comma separates two elements or members of one array or object, which is a
 * value too). One pass over the characters, no allocation.
 */
function hasCommasOutsideStrings(text: string, count: number): boolean {
  if (text.length <= count) return false;
  let commas = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === 0x5c) i += 1;
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) {
      inString = true;
    } else if (code === 0x2c) {
      commas += 1;
      if (commas >= count) return true;
    }
  }
  return false;
}

function isRequestId(value: unknown): value is RequestId {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_REQUEST_ID;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function failure(code: FrameErrorCode, message: string): DecodeFailure {
  return { ok: false, code, message };
}

function badFrame(message: string): DecodeFailure {
  return failure(ErrorCode.BAD_FRAME, message);
}

function withId(result: DecodeFailure, id: RequestId | undefined): DecodeFailure {
  return id === undefined ? result : { ...result, id };
}

/**
 * An issue as reported back, each part at most MAX_ISSUE_CHARS: zod names every unknown key in one
 * message and a path carries the client's keys, so a 64 KiB frame of unknown keys was answered with
 * its keys twice over (message and details), several times its size: a burst of them filled the
 * send buffer and closed the socket 1013 as a slow consumer.
 */
function boundedIssue(issue: FieldIssue): FieldIssue {
  return { path: truncate(issue.path, MAX_ISSUE_CHARS), message: truncate(issue.message, MAX_ISSUE_CHARS) };
}

/** At most `max` UTF-16 code units and an ellipsis, never splitting a surrogate pair. */
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  const end = code >= 0xd800 && code <= 0xdbff ? max - 1 : max;
  return `${text.slice(0, end)}…`;
}

function quote(text: string): string {
  return JSON.stringify(text.length > MAX_ECHOED_CHARS ? `${text.slice(0, MAX_ECHOED_CHARS)}…` : text);
}

const INT32_MIN = -0x8000_0000;
const UINT32_MAX = 0xffff_ffff;
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const LONE_SURROGATES = /[\uD800-\uDFFF]/gu;
/**
 * A string as a frame may carry it (PROTOCOL.md: server frames follow the client's rules): unpaired
 * surrogates and U+0000 become U+FFFD. Stored data holds neither, but a refusal's message and
 * `details.errors[].path` name the client's own keys: a key with U+0000 was echoed raw, and every
 * reader holding the server to those rules (the SDK) dropped the reply as unreadable (BAD_REPLY)
 * instead of reading its VALIDATION_FAILED.
 */
function sendableString(value: string): string {
  const paired = LONE_SURROGATE.test(value) ? value.replace(LONE_SURROGATES, '\uFFFD') : value;
  return paired.includes('\u0000') ? paired.replaceAll('\u0000', '\uFFFD') : paired;
}

/**
 * Makes a frame safe to encode and mean the same in both encodings, whatever a stored value holds
 * (it may predate today's input rules): copies plain objects and arrays only, never calls anything
 * the data names (a key `toJSON` or `constructor` is just a key), turns unpaired surrogates and
 * U+0000 into U+FFFD (clients refuse them, see sendableString), and cuts nesting at MAX_WIRE_DEPTH.
 * For msgpack (`forMsgpack`):
 * - objects become Maps, so the encoder never consults an own `constructor` key of user data;
 * - integers beyond 32 bits (timestamps in ms) become BigInt, which msgpackr writes as int64;
 *   as plain numbers it would write float64, and Python would read `1767225600000.0`;
 * - a Date becomes its ISO string (msgpackr would write a timestamp extension).
 * Undefined object values are left out and undefined in arrays becomes null, as JSON.stringify does.
 */
function toWireValue(value: unknown, forMsgpack: boolean, depth = 0): unknown {
  switch (typeof value) {
    case 'string':
      return sendableString(value);
    case 'number':
      if (!Number.isFinite(value)) return null;
      return forMsgpack && Number.isSafeInteger(value) && (value > UINT32_MAX || value < INT32_MIN)
        ? BigInt(value)
        : value;
    case 'boolean':
      return value;
    case 'object':
      break;
    default:
      return null;
  }
  if (value === null) return null;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  // Depth of the container being built is depth + 1: keep it within what decoders accept.
  if (depth + 1 > MAX_WIRE_DEPTH) return null;
  if (Array.isArray(value)) {
    const out: unknown[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      out[i] = item === undefined ? null : toWireValue(item, forMsgpack, depth + 1);
    }
    return out;
  }
  if (!isPlainObject(value)) return null;
  if (forMsgpack) {
    const out = new Map<string, unknown>();
    for (const key of Object.keys(value)) {
      const item = value[key];
      if (item !== undefined) out.set(toWireValue(key, false) as string, toWireValue(item, true, depth + 1));
    }
    return out;
  }
  // Null prototype: a key named __proto__ stays an ordinary key.
  const out: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(value)) {
    const item = value[key];
    if (item !== undefined) out[toWireValue(key, false) as string] = toWireValue(item, false, depth + 1);
  }
  return out;
}
