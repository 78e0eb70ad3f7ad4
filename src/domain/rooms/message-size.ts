/**
 * What a room message costs in the process's memory, estimated by its shape: bounds on messages
 * kept in memory (a room subscription's recent run, the live messages held for a joiner catching
 * up, the sends waiting for a room's write) must count bytes as well as messages. By count alone
 * one message is not one size: `meta` holds at most 4 096 characters of JSON, but written as
 * `{"a":[{},{},…]}` those are ~1 360 objects, ~90 KB of heap once parsed (a few hundred bytes for
 * a typical message), so 64 messages per subscribed room pinned ~6 MB, and one user joined to their
 * 1 000 rooms could fill a node's heap with ~6 GB by sending 64 such messages to each (review 24).
 *
 * The estimate leans high (V8's sizes on 64-bit with pointer compression are smaller): strings two
 * bytes per UTF-16 unit plus a header, objects and arrays a header plus a slot per entry.
 */

const STRING_HEADER = 16;
const CONTAINER_HEADER = 56;
const SLOT = 16;
/** The envelope of a message besides `body` and `meta` (ids, seq, times): a fixed allowance. */
const MESSAGE_OVERHEAD = 512;

/** Estimated heap bytes of a JSON value (iterative: no recursion on client data). */
export function estimatedValueBytes(value: unknown): number {
  let bytes = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (typeof item === 'string') {
      bytes += STRING_HEADER + 2 * item.length;
    } else if (Array.isArray(item)) {
      bytes += CONTAINER_HEADER + SLOT * item.length;
      for (const element of item) stack.push(element);
    } else if (typeof item === 'object' && item !== null) {
      const keys = Object.keys(item);
      bytes += CONTAINER_HEADER + SLOT * keys.length;
      for (const key of keys) {
        bytes += STRING_HEADER + 2 * key.length;
        stack.push((item as Record<string, unknown>)[key]);
      }
    } else {
      bytes += SLOT;
    }
  }
  return bytes;
}

/** Estimated heap bytes of a room message (or a send waiting to be stored): body, meta and the rest. */
export function estimatedMessageBytes(message: {
  readonly body: string;
  readonly meta?: Record<string, unknown> | null | undefined;
}): number {
  return (
    MESSAGE_OVERHEAD +
    STRING_HEADER +
    2 * message.body.length +
    (message.meta === undefined || message.meta === null ? 0 : estimatedValueBytes(message.meta))
  );
}
