/** Rooms over REST: create, list (with unread counts), get, group membership, history. */
import { z } from 'zod';
import { RoomMessage, Seq } from '../frames.js';
import { RoomId, UserId } from '../ids.js';
import { Iso, queryInt } from './common.js';
import { singleLineText } from './text.js';

export const CreateRoomRequest = z
  .strictObject({
    kind: z.enum(['direct', 'group']),
    memberIds: z
      .array(UserId)
      .min(1)
      .max(500)
      .describe(
        'The other members (your own id and duplicates are ignored): a direct room names exactly one, a group at least one.',
      ),
    title: singleLineText({ min: 1, max: 120 })
      .optional()
      .describe('Groups only: a direct room has no title (400 VALIDATION_FAILED naming `body.title`).'),
  })
  // Refused, not dropped: a client that sends one would otherwise believe the room has it.
  .refine((request) => request.kind !== 'direct' || request.title === undefined, {
    path: ['title'],
    error: 'a direct room has no title',
  })
  .meta({ id: 'CreateRoomRequest' });

export const Room = z
  .object({
    id: RoomId,
    kind: z.enum(['direct', 'group', 'job']),
    title: z.string().nullable(),
    createdBy: UserId.nullable(),
    memberIds: z.array(UserId),
    lastSeq: Seq,
    createdAt: Iso,
  })
  .meta({ id: 'Room' });

export const RoomSummary = z
  .object({
    id: RoomId,
    kind: z.enum(['direct', 'group', 'job']),
    title: z.string().nullable(),
    lastSeq: Seq,
    lastReadSeq: Seq,
    unread: z.int().min(0),
    lastMessage: RoomMessage.nullable(),
  })
  .meta({ id: 'RoomSummary' });
/**
 * Bytes of JSON room summaries one GET /v1/rooms page carries at most (at least one room). Each
 * summary holds its room's last message, up to ~37 KB at the largest legal body and meta: a page of
 * 500 of them was ~18 MB, which anyone sharing rooms with a user could arrange by posting one large
 * message in each. Ordinary summaries (~0.5-2 KB) fill a page of 500 well within it.
 */
export const ROOM_LIST_PAGE_MAX_BYTES = 1024 * 1024;

export const RoomList = z
  .object({
    data: z
      .array(RoomSummary)
      .describe(
        `At most \`limit\` rooms and at most ${ROOM_LIST_PAGE_MAX_BYTES / 1024 / 1024} MiB of them as JSON (at least one): a page may hold fewer than \`limit\` and still not be the last; follow \`nextCursor\`.`,
      ),
    nextCursor: z
      .string()
      .nullable()
      .describe('Pass back as `cursor` for the next page; null on the last page.'),
  })
  .meta({ id: 'RoomList' });

/** GET /v1/rooms: newest membership first, `limit` rooms per page (default and most: 500). */
export const RoomListQuery = z.strictObject({
  cursor: z.string().max(200).optional().describe('`nextCursor` of the previous page.'),
  limit: queryInt(1, 500, 500),
});

export const RoomParams = z.strictObject({ id: RoomId });
export const RoomMemberParams = z.strictObject({ id: RoomId, userId: UserId });
export const RoomHistoryQuery = z.strictObject({
  // Bounded: a larger number reached PostgreSQL's bigint and failed there (500, not 400).
  beforeSeq: queryInt(1, Number.MAX_SAFE_INTEGER).optional(),
  limit: queryInt(1, 100, 50),
});
/**
 * Bytes of JSON-encoded messages one GET /v1/rooms/:id/messages page carries at most (at least one
 * message): the WebSocket's `room.history` budget. A page of `limit` messages at the largest legal
 * body and meta is several MB; it is cut, newest first, at this size instead.
 */
export const HISTORY_PAGE_MAX_BYTES = 256 * 1024;

export const MessageList = z
  .object({
    data: z
      .array(RoomMessage)
      .describe(
        `Newest first. At most \`limit\` messages and at most ${HISTORY_PAGE_MAX_BYTES / 1024} KiB of them as JSON (always at least one while older ones exist): a page may hold fewer than \`limit\` and still not be the last.`,
      ),
    nextBeforeSeq: z
      .int()
      .min(1)
      .nullable()
      .describe(
        'Pass as `beforeSeq` for the next (older) page; null when this page reaches the oldest message.',
      ),
  })
  .meta({ id: 'MessageList' });
