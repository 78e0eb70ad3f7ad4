/**
 * Bytes one reply or one burst of a join's backlog may put on a socket at once. A `room.history`
 * page of 100 messages at the largest legal body and meta, or a 200-row backlog page, encoded to
 * 2.4–7 MB: more than `limits.maxBufferedBytes` (1 MiB), so on a real network (the kernel takes
 * far less than that at once, unlike loopback) even a fast reader was closed 1013 as a slow
 * consumer — and any member could post a few large messages to send every other member of the
 * room into a reconnect loop (each reconnect asked for the same page again).
 *
 * So: a history page is cut, newest first, at SEND_BURST_BYTES of encoded messages (at least one
 * message; PROTOCOL.md: a page may hold fewer than `limit`, and the client pages on from the
 * smallest seq it got), and a join's backlog goes out in bursts of at most SEND_BURST_BYTES, each
 * after the socket's own buffer fell to SEND_LOW_WATER_BYTES. Both are a quarter of the socket's
 * bound at most, so a burst on top of a buffer at the low-water mark stays well under it.
 */
import type { Codec } from '../../protocol/src/codec.js';
import type { RoomMessage } from '../../protocol/src/frames.js';
import type { Encoding } from '../../protocol/src/version.js';

/** Encoded bytes of room messages one reply or backlog burst carries at most (see above). */
export const SEND_BURST_BYTES = 256 * 1024;
/** A join's next backlog burst waits until the socket buffers at most this much. */
export const SEND_LOW_WATER_BYTES = 256 * 1024;

/** The burst and low-water bounds for sockets closed past `maxBufferedBytes`. */
export function sendBudget(maxBufferedBytes: number) {
  const quarter = Math.max(1, Math.floor(maxBufferedBytes / 4));
  return {
    burstBytes: Math.min(SEND_BURST_BYTES, quarter),
    lowWaterBytes: Math.min(SEND_LOW_WATER_BYTES, quarter),
  };
}

/** Bytes on the wire of data encoded by the codec (a JSON string counts in UTF-8). */
export const encodedBytes = (data: Uint8Array | string) =>
  typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.byteLength;

/**
 * The longest prefix of `messages` (a history page, newest first) whose encoded size stays within
 * `budgetBytes`; never empty when `messages` is not (a single message is far below any budget).
 */
export function fitMessages(
  codec: Codec,
  encoding: Encoding,
  messages: readonly RoomMessage[],
  budgetBytes: number,
): RoomMessage[] {
  let bytes = 0;
  for (let i = 0; i < messages.length; i += 1) {
    const message = messages[i] as RoomMessage;
    bytes += encodedBytes(codec.encode({ t: 'room.message', d: message }, encoding));
    if (bytes > budgetBytes && i > 0) return messages.slice(0, i);
  }
  return [...messages];
}
