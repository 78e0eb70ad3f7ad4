/**
 * A REST history page (GET /v1/rooms/:id/messages) cut by bytes as well as by count, as the
 * WebSocket cuts its `room.history` replies: a page of `limit` messages at the largest legal body
 * and meta is several MB of JSON, which a phone on a poor network downloads again after every
 * timeout. Newest first; the cut keeps at least one message, so paging always moves on.
 */
import type { RoomMessage } from '../../../protocol/src/frames.js';

export interface HistoryPage {
  readonly data: RoomMessage[];
  /** The `beforeSeq` of the next (older) page; null when this page holds the oldest message. */
  readonly nextBeforeSeq: number | null;
}

/** Bytes of one message as the page's JSON carries it (the comma between items not counted). */
const jsonBytes = (message: RoomMessage) => Buffer.byteLength(JSON.stringify(message), 'utf8');

/**
 * `rows`: up to `limit + 1` messages newest first (the extra one only tells whether older ones
 * exist). Keeps the longest prefix of at most `limit` messages within `maxBytes` (never empty while
 * `rows` is not).
 */
export function cutHistoryPage(rows: readonly RoomMessage[], limit: number, maxBytes: number): HistoryPage {
  const data: RoomMessage[] = [];
  let bytes = 0;
  for (const message of rows.slice(0, limit)) {
    bytes += jsonBytes(message);
    if (bytes > maxBytes && data.length > 0) break;
    data.push(message);
  }
  const last = data.at(-1);
  return { data, nextBeforeSeq: last !== undefined && data.length < rows.length ? last.seq : null };
}
