/**
 * A structural check of MessagePack bytes before they are decoded: standard MessagePack only, as
 * PROTOCOL.md promises. Refuses strings that are not valid UTF-8, every extension type (msgpackr would otherwise build a BigInt, a
 * Date, a record or a structure from them), the never-used byte 0xc1, map keys that are not
 * strings, nesting deeper than the cap, truncated input and trailing bytes. Iterative and
 * allocation-free, so a 64 KiB frame of nested arrays costs one pass, never a stack overflow.
 * It also notes a map key `__proto__`, which msgpackr's object decoding renames (see scanMsgpack).
 */

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** True when bytes[start, end) is valid UTF-8; ASCII (the common case) is checked without decoding. */
function isUtf8(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    if ((bytes[i] as number) >= 0x80) {
      try {
        strictUtf8.decode(bytes.subarray(i, end));
        return true;
      } catch {
        return false;
      }
    }
  }
  return true;
}

/** What scanMsgpack found. */
export interface MsgpackScan {
  /** Why the bytes are refused (a BAD_FRAME), or undefined when they are one standard MessagePack value. */
  readonly problem: string | undefined;
  /**
   * Some map has the key `__proto__`. msgpackr, decoding maps to objects, silently renames that key
   * to `__proto_` (so that it cannot set a prototype): the information is lost after decoding, so
   * the caller must decode such bytes another way to refuse the key by its path.
   */
  readonly protoKey: boolean;
}

const CLEAN: MsgpackScan = Object.freeze({ problem: undefined, protoKey: false });
const WITH_PROTO_KEY: MsgpackScan = Object.freeze({ problem: undefined, protoKey: true });
/** "__proto__" in UTF-8 (ASCII): the only bytes of that key, as overlong UTF-8 is refused. */
const PROTO_KEY_BYTES = Uint8Array.from('__proto__', (c) => c.charCodeAt(0));

const refuse = (problem: string): MsgpackScan => ({ problem, protoKey: false });

/** True when bytes[start, start + 9) spell `__proto__`. */
function isProtoKey(bytes: Uint8Array, start: number): boolean {
  for (let i = 0; i < PROTO_KEY_BYTES.length; i++) if (bytes[start + i] !== PROTO_KEY_BYTES[i]) return false;
  return true;
}

/** Why the bytes are refused, or undefined when they are one standard MessagePack value. */
export function findMsgpackProblem(
  bytes: Uint8Array,
  maxDepth: number,
  maxValues = Number.POSITIVE_INFINITY,
): string | undefined {
  return scanMsgpack(bytes, maxDepth, maxValues).problem;
}

/**
 * The structural check, and whether a map key `__proto__` occurs. `maxValues`: most values (map
 * keys, values and array elements, containers included) the bytes may hold (MAX_FRAME_VALUES for
 * client frames: what decoding costs grows with them).
 */
export function scanMsgpack(
  bytes: Uint8Array,
  maxDepth: number,
  maxValues = Number.POSITIVE_INFINITY,
): MsgpackScan {
  // For each open container: items still to read, and for maps whether the next item is a key
  // (maps count 2 items per entry; a key is read when the count is even).
  const remaining: number[] = [];
  const isMap: boolean[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  let values = 0;
  let protoKey = false;
  const need = (count: number) => offset + count <= bytes.length;

  while (values === 0 || remaining.length > 0) {
    if (offset >= bytes.length) return refuse('truncated MessagePack value');
    const depth = remaining.length;
    const top = depth - 1;
    const expectingKey = depth > 0 && isMap[top] === true && (remaining[top] as number) % 2 === 0;
    const byte = bytes[offset] as number;
    offset += 1;
    values += 1;
    if (values > maxValues) return refuse(`more than ${maxValues} values`);

    let skip = 0; // payload bytes after the header
    let container: { count: number; map: boolean } | undefined;
    let isString = false;
    if (byte <= 0x7f || byte >= 0xe0) {
      // fixint
    } else if (byte <= 0x8f) {
      container = { count: (byte & 0x0f) * 2, map: true };
    } else if (byte <= 0x9f) {
      container = { count: byte & 0x0f, map: false };
    } else if (byte <= 0xbf) {
      isString = true;
      skip = byte & 0x1f;
    } else {
      switch (byte) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
          break;
        case 0xc4: // bin 8/16/32: decoded, then refused by the JSON-value check with its path
        case 0xd9: // str 8
          if (!need(1)) return refuse('truncated MessagePack value');
          skip = view.getUint8(offset);
          offset += 1;
          isString = byte === 0xd9;
          break;
        case 0xc5:
        case 0xda:
          if (!need(2)) return refuse('truncated MessagePack value');
          skip = view.getUint16(offset);
          offset += 2;
          isString = byte === 0xda;
          break;
        case 0xc6:
        case 0xdb:
          if (!need(4)) return refuse('truncated MessagePack value');
          skip = view.getUint32(offset);
          offset += 4;
          isString = byte === 0xdb;
          break;
        case 0xca: // float 32
          skip = 4;
          break;
        case 0xcb: // float 64
          skip = 8;
          break;
        case 0xcc: // uint 8
        case 0xd0: // int 8
          skip = 1;
          break;
        case 0xcd:
        case 0xd1:
          skip = 2;
          break;
        case 0xce:
        case 0xd2:
          skip = 4;
          break;
        case 0xcf:
        case 0xd3:
          skip = 8;
          break;
        case 0xdc:
        case 0xde:
          if (!need(2)) return refuse('truncated MessagePack value');
          container = { count: view.getUint16(offset) * (byte === 0xde ? 2 : 1), map: byte === 0xde };
          offset += 2;
          break;
        case 0xdd:
        case 0xdf:
          if (!need(4)) return refuse('truncated MessagePack value');
          container = { count: view.getUint32(offset) * (byte === 0xdf ? 2 : 1), map: byte === 0xdf };
          offset += 4;
          break;
        case 0xc1:
          return refuse('byte 0xc1 is never used in MessagePack');
        default:
          // 0xc7–0xc9 ext 8/16/32, 0xd4–0xd8 fixext: extension types are not part of the protocol.
          return refuse('MessagePack extension types are not accepted (standard MessagePack only)');
      }
    }
    if (expectingKey && !isString) return refuse('MessagePack map keys must be strings');
    if (!need(skip)) return refuse('truncated MessagePack value');
    // RFC 6455 fails a text frame that is not UTF-8; a msgpack str is held to the same rule rather
    // than stored with replacement characters (or, from CESU-8, unpaired surrogates).
    if (isString && !isUtf8(bytes, offset, offset + skip))
      return refuse('MessagePack str is not valid UTF-8');
    if (expectingKey && skip === PROTO_KEY_BYTES.length && isProtoKey(bytes, offset)) protoKey = true;
    offset += skip;

    if (depth > 0) remaining[top] = (remaining[top] as number) - 1;
    if (container !== undefined && container.count > 0) {
      if (depth + 1 > maxDepth) return refuse(`nested deeper than ${maxDepth} levels`);
      remaining.push(container.count);
      isMap.push(container.map);
    } else if (container !== undefined && depth + 1 > maxDepth) {
      return refuse(`nested deeper than ${maxDepth} levels`);
    }
    // Close every container that is now complete.
    while (remaining.length > 0 && remaining[remaining.length - 1] === 0) {
      remaining.pop();
      isMap.pop();
    }
  }
  if (offset !== bytes.length) return refuse('trailing bytes after the MessagePack value');
  return protoKey ? WITH_PROTO_KEY : CLEAN;
}
