/**
 * The one rule for data that comes from outside (a WebSocket frame, a REST body, a query string)
 * and for data read back from storage before it is sent again: JSON values only — plain objects,
 * arrays, well-formed strings without U+0000, finite numbers, booleans, null — no deeper than a
 * cap. Checked iteratively, so hostile nesting costs a loop, never a stack overflow, and nothing
 * the data names (`toJSON`, `constructor`, a getter) is ever called.
 *
 * Why each rule: a BigInt, a Date or bytes make JSON.stringify or the msgpack encoder throw; a lone
 * UTF-16 surrogate or U+0000 makes PostgreSQL refuse the whole statement (text and jsonb); depth is
 * the recursion every later encoder and JSON.stringify performs. A key `__proto__` (unless
 * `allowProtoKey`) does not survive JavaScript: an assignment `copy[key] = value` (as zod's
 * `z.record` makes its copy) sets the copy's prototype instead of adding a key, and msgpackr renames
 * it to `__proto_`, so the data would be stored other than sent (or not at all); it is refused by
 * its path instead.
 * `constructor`, `prototype`, `toJSON` and the like are ordinary own keys and stay allowed.
 */

/** Deepest nesting of objects and arrays in a frame or body, the frame envelope included. */
export const MAX_JSON_DEPTH = 32;

/**
 * Deepest nesting of a server frame: the envelope and reply wrappers (a history reply holds
 * messages in an array) around the deepest value a client may send. The encoder cuts anything
 * deeper (only data stored before the caps existed) and the SDK accepts up to it.
 */
export const MAX_WIRE_DEPTH = MAX_JSON_DEPTH + 8;

/**
 * Most values one client frame may hold (every object, array and leaf; in MessagePack every map key
 * too). What decoding and checking a frame costs grows with its values, and a 64 KiB frame holds
 * tens of thousands: 60 000 `userIds` or `meta` numbers took 40–130 ms of the node's event loop
 * each before they were refused (review 30). No valid frame comes near: the largest `meta` (4 096
 * characters of JSON) holds ~2 050 values, a `presence.subscribe` 100 ids.
 */
export const MAX_FRAME_VALUES = 4_096;

export interface JsonProblem {
  /** Dotted path from the checked root (`""` = the root), as in VALIDATION_FAILED field errors. */
  readonly path: string;
  readonly message: string;
}

export interface JsonCheckOptions {
  /** Deepest nesting allowed; the root object or array is depth 1. Default MAX_JSON_DEPTH. */
  readonly maxDepth?: number;
  /** Stop after this many values (objects, arrays and leaves) are visited. Default unlimited. */
  readonly maxNodes?: number;
  /**
   * Accept object keys named `__proto__`. Default false: input from outside (client frames, REST
   * input, `room.send` meta) is refused. Only the SDK reading server frames passes true, so that
   * whatever a server sends stays readable (the SDK's msgpack decoder renames the key harmlessly).
   */
  readonly allowProtoKey?: boolean;
}

/** The one object key JavaScript does not keep as a key when assigned (see the module comment). */
export const PROTO_KEY = '__proto__';

/** Why a `__proto__` key is refused. */
export const PROTO_KEY_MESSAGE = 'the key "__proto__" is not allowed';

interface Pending {
  readonly value: unknown;
  /** Index of the parent in the queue (-1 for the root) and the key under it: the path is rebuilt only for a problem. */
  readonly parent: number;
  readonly key: string | number;
  readonly depth: number;
}

const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * The first reason `value` is not a JSON value within the caps, or undefined when it is one.
 * Visits every value once, breadth-first over an explicit queue.
 */
export function findJsonProblem(value: unknown, options: JsonCheckOptions = {}): JsonProblem | undefined {
  const maxDepth = options.maxDepth ?? MAX_JSON_DEPTH;
  const maxNodes = options.maxNodes ?? Number.POSITIVE_INFINITY;
  const allowProtoKey = options.allowProtoKey ?? false;
  const queue: Pending[] = [{ value, parent: -1, key: '', depth: 0 }];
  const pathOf = (index: number, extra?: string): string => {
    const parts: (string | number)[] = extra === undefined ? [] : [extra];
    for (let at = index; at > 0; at = (queue[at] as Pending).parent)
      parts.unshift((queue[at] as Pending).key);
    return parts.join('.');
  };
  const tooMany = (): JsonProblem => ({ path: '', message: `more than ${maxNodes} values` });
  for (let index = 0; index < queue.length; index++) {
    if (index >= maxNodes) return tooMany();
    const item = queue[index] as Pending;
    const problem = leafProblem(item.value);
    if (problem !== undefined) return { path: pathOf(index), message: problem };
    const current = item.value;
    if (typeof current !== 'object' || current === null) continue;
    const depth = item.depth + 1;
    if (depth > maxDepth) return { path: pathOf(index), message: `nested deeper than ${maxDepth} levels` };
    if (Array.isArray(current)) {
      // Counted as found, not only as visited: 60 000 elements are not queued to learn there are too many.
      if (queue.length + current.length > maxNodes) return tooMany();
      for (let i = 0; i < current.length; i++)
        queue.push({ value: current[i], parent: index, key: i, depth });
      continue;
    }
    const keys = Object.keys(current);
    if (queue.length + keys.length > maxNodes) return tooMany();
    for (const key of keys) {
      const keyProblem = stringProblem(key);
      if (keyProblem !== undefined) return { path: pathOf(index, key), message: `key ${keyProblem}` };
      if (key === PROTO_KEY && !allowProtoKey)
        return { path: pathOf(index, key), message: PROTO_KEY_MESSAGE };
      queue.push({ value: (current as Record<string, unknown>)[key], parent: index, key, depth });
    }
  }
  return undefined;
}

/**
 * Why a string cannot be stored: PostgreSQL text and jsonb hold neither U+0000 nor unpaired
 * surrogates (node-pg would send a replacement character for text and jsonb refuses the escape).
 */
export function stringProblem(text: string): string | undefined {
  if (LONE_SURROGATE.test(text)) return 'must be well-formed Unicode (no unpaired surrogate)';
  if (text.includes('\u0000')) return 'must not contain U+0000';
  return undefined;
}

function leafProblem(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return stringProblem(value);
    case 'number':
      return Number.isFinite(value) ? undefined : 'must be a finite number';
    case 'boolean':
      return undefined;
    case 'object': {
      if (value === null || Array.isArray(value)) return undefined;
      const proto: unknown = Object.getPrototypeOf(value);
      return proto === Object.prototype || proto === null
        ? undefined
        : 'must be a JSON value (object, array, string, number, boolean or null)';
    }
    default:
      return 'must be a JSON value (object, array, string, number, boolean or null)';
  }
}
