/**
 * Every WebSocket frame of protocol v1 as zod schemas: the single source of the TypeScript types,
 * of the runtime validation at the gateway and in the SDK, and of `protocol/schema.json`.
 *
 * Envelope (fixed by SPEC.md §3.2):
 * - client request `{t, id?, d?}`: with `id` the server answers exactly once, with `ok` or `error`;
 * - reply `{t: "ok", id, d?}` or `{t: "error", id?, d: {code, message, details?}}`;
 * - server push `{t, d}`.
 *
 * Client frames are strict (unknown keys are a VALIDATION_FAILED), because a typo in a field name
 * must not be silently ignored by the server. Server frames are open: a client drops unknown keys,
 * so the server may add optional fields without a new protocol version.
 */
import { z } from 'zod';
import { ErrorCode } from './codes.js';
import { BidId, CategoryId, ContractId, JobId, ReviewId, RoomId, UserId, Uuid } from './ids.js';
import { findJsonProblem, stringProblem } from './json-value.js';
import { Iso } from './rest/common.js';
import { Encoding, PROTOCOL_VERSION } from './version.js';

/** Largest request id: ids fit a signed 32-bit integer so every language holds them natively. */
export const MAX_REQUEST_ID = 2 ** 31 - 1;

/**
 * Correlates a request with its one reply. Chosen by the client, unique among its requests still
 * awaiting a reply on this connection (a counter is enough); the server never interprets it.
 */
export const RequestId = z.int().min(0).max(MAX_REQUEST_ID).meta({
  id: 'RequestId',
  description: 'Client-chosen integer 0..2^31-1 echoed in the reply; unique among pending requests.',
});
export type RequestId = z.infer<typeof RequestId>;

/** An instant as whole milliseconds since the Unix epoch (UTC). MessagePack: an integer (int64). */
export const EpochMs = z.int().min(0).describe('Milliseconds since the Unix epoch (UTC), an integer.');
export type EpochMs = z.infer<typeof EpochMs>;

// ---------------------------------------------------------------------------------------------
// Client → server requests
// ---------------------------------------------------------------------------------------------

/** Names of the client request types (`t` of a client frame). Closed per protocol version. */
export const ClientFrameType = {
  PING: 'ping',
  AUTH_REFRESH: 'auth.refresh',
  PRESENCE_SUBSCRIBE: 'presence.subscribe',
  PRESENCE_UNSUBSCRIBE: 'presence.unsubscribe',
  ROOM_JOIN: 'room.join',
  ROOM_LEAVE: 'room.leave',
  ROOM_SEND: 'room.send',
  ROOM_HISTORY: 'room.history',
  ROOM_TYPING: 'room.typing',
  ROOM_READ: 'room.read',
  NOTIFICATIONS_READ: 'notifications.read',
  JOBS_WATCH: 'jobs.watch',
  JOBS_UNWATCH: 'jobs.unwatch',
} as const;
export type ClientFrameType = (typeof ClientFrameType)[keyof typeof ClientFrameType];

/** `ping` carries nothing; `d` may be omitted or `{}`. */
export const PingPayload = z.strictObject({});
export type PingPayload = z.infer<typeof PingPayload>;

/**
 * `auth.refresh`: a fresh access token (from REST `POST /v1/auth/refresh`) for the same user,
 * which moves the connection's expiry to the new token's. Bounded so a client cannot make the
 * server verify megabytes.
 */
export const AuthRefreshPayload = z.strictObject({
  accessToken: z.string().min(1).max(4096).describe('Access JWT of the same user, at most 4096 characters.'),
});
export type AuthRefreshPayload = z.infer<typeof AuthRefreshPayload>;

const PresenceUserIds = z
  .array(UserId)
  .min(1)
  .max(100)
  .describe('1 to 100 user ids (UUIDs); duplicates are ignored.');

/** `presence.subscribe`: start receiving `presence` pushes for these users (contacts only). */
export const PresenceSubscribePayload = z.strictObject({ userIds: PresenceUserIds });
export type PresenceSubscribePayload = z.infer<typeof PresenceSubscribePayload>;

/** `presence.unsubscribe`: stop receiving `presence` pushes for these users; unknown ids are a no-op. */
export const PresenceUnsubscribePayload = z.strictObject({ userIds: PresenceUserIds });
export type PresenceUnsubscribePayload = z.infer<typeof PresenceUnsubscribePayload>;

/**
 * `ping`: with `id`, answered by `ok {serverTime}`; without `id`, by a `pong {serverTime}` push.
 * Application-level liveness for clients whose WebSocket library hides protocol pings.
 */
export const PingFrame = z
  .strictObject({ t: z.literal(ClientFrameType.PING), id: RequestId.optional(), d: PingPayload.optional() })
  .meta({
    id: 'PingFrame',
    description: 'With id: answered by ok {serverTime}. Without id: answered by a pong push.',
  });

/** `auth.refresh`: extends the connection's authentication; answered by `ok {expiresAt}`. */
export const AuthRefreshFrame = z
  .strictObject({
    t: z.literal(ClientFrameType.AUTH_REFRESH),
    id: RequestId.optional(),
    d: AuthRefreshPayload,
  })
  .meta({
    id: 'AuthRefreshFrame',
    description: 'Replaces the access token of the connection; answered by ok {expiresAt}.',
  });

/** `presence.subscribe`: answered by `ok {presence}` with the current state of each user. */
export const PresenceSubscribeFrame = z
  .strictObject({
    t: z.literal(ClientFrameType.PRESENCE_SUBSCRIBE),
    id: RequestId.optional(),
    d: PresenceSubscribePayload,
  })
  .meta({
    id: 'PresenceSubscribeFrame',
    description: 'Subscribes to presence of contacts; answered by ok {presence: PresenceState[]}.',
  });

/** `presence.unsubscribe`: answered by `ok` without `d`. */
export const PresenceUnsubscribeFrame = z
  .strictObject({
    t: z.literal(ClientFrameType.PRESENCE_UNSUBSCRIBE),
    id: RequestId.optional(),
    d: PresenceUnsubscribePayload,
  })
  .meta({ id: 'PresenceUnsubscribeFrame', description: 'Ends presence subscriptions; answered by ok.' });

/**
 * A position in a room's sequence: a message's seq, or 0 before the first message (a `lastSeq` or
 * read mark of an empty room, a `sinceSeq` that replays from the start).
 */
export const Seq = z
  .int()
  .min(0)
  .max(Number.MAX_SAFE_INTEGER)
  .describe('Position in the per-room message sequence: a message seq, or 0 before the first.');

/** A stored room message's sequence number: 1 for the first message of a room, no gaps. */
export const MessageSeq = z
  .int()
  .min(1)
  .max(Number.MAX_SAFE_INTEGER)
  .describe('Per-room message number, from 1, without gaps.');

/**
 * Largest message body, in Unicode code points (what zod 4's `.max` counts, as JSON Schema's
 * `maxLength` and Python's `len` do): an emoji outside the Basic Multilingual Plane counts 1, though
 * it is 2 in JavaScript's `length`. PROTOCOL.md says the same.
 */
export const MAX_BODY_CHARS = 4096;
/** Largest `meta` object, measured as its JSON text with numbers written out in full (storedJsonLength). */
export const MAX_META_CHARS = 4096;

/** Deepest nesting inside `meta` (the meta object itself is level 1). */
export const MAX_META_DEPTH = 16;

/**
 * Characters of a number written out in full, without an exponent: how PostgreSQL writes a jsonb
 * number (a `numeric`) back, e.g. 1e308 as a 1 and 308 zeros, 1.5e-7 as 0.00000015. JavaScript
 * writes a number with an exponent only at or above 1e21 and below 1e-6.
 */
export function plainNumberLength(value: number): number {
  const text = String(value);
  const at = text.indexOf('e');
  if (at === -1) return text.length;
  const sign = text.startsWith('-') ? 1 : 0;
  // The mantissa has one digit before its point (d or d.ddd).
  const digits = text.slice(sign, at).replace('.', '').length;
  const exponent = Number(text.slice(at + 1));
  return exponent >= 0 ? sign + Math.max(digits, exponent + 1) : sign + 2 + (-exponent - 1) + digits;
}

/**
 * Length of a JSON value (already checked: plain, finite, within the depth cap) as compact JSON,
 * each number counted as written out in full (`plainNumberLength`): as the database gives it back.
 * Measured as JSON.stringify alone, `meta` of ~580 numbers 1e308 passed the bound and came back
 * from every read as ~180 KB of digits per message (review 30).
 */
export function storedJsonLength(value: unknown): number {
  let length = JSON.stringify(value).length;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (typeof item === 'number') {
      // JSON writes a finite number as String does; only one with an exponent is longer stored.
      const text = String(item);
      if (text.includes('e')) length += plainNumberLength(item) - text.length;
    } else if (Array.isArray(item)) {
      for (const element of item) stack.push(element);
    } else if (typeof item === 'object' && item !== null) {
      for (const key of Object.keys(item)) stack.push((item as Record<string, unknown>)[key]);
    }
  }
  return length;
}

/** Whether `meta` (checked plain JSON) is over MAX_META_CHARS as stored (`storedJsonLength`). */
function metaTooLong(meta: Record<string, unknown>): boolean {
  const json = JSON.stringify(meta);
  if (json.length > MAX_META_CHARS) return true;
  // Only a number with an exponent (JSON writes it `<digit>e±…`) is longer stored than sent.
  return /\de[+-]/.test(json) && storedJsonLength(meta) > MAX_META_CHARS;
}

const RoomMeta = z
  .record(z.string(), z.unknown())
  // Checked iteratively before anything recurses into it; only then measured as JSON text.
  .superRefine((meta, ctx) => {
    const problem = findJsonProblem(meta, { maxDepth: MAX_META_DEPTH });
    if (problem !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: problem.message,
        path: problem.path === '' ? [] : problem.path.split('.'),
      });
    } else if (metaTooLong(meta)) {
      ctx.addIssue({
        code: 'custom',
        message: `meta must be at most ${MAX_META_CHARS} characters of JSON (a number counts as its digits written out in full: 1e21 counts 22)`,
      });
    }
  })
  .describe(
    `Optional JSON object attached to a message: at most ${MAX_META_CHARS} characters as JSON, ${MAX_META_DEPTH} levels deep, well-formed strings without U+0000.`,
  );

/** A string PostgreSQL can store: well-formed Unicode (no unpaired surrogate), no U+0000. */
export const StorableText = z.string().superRefine((text, ctx) => {
  const problem = stringProblem(text);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

/** `room.join`: start receiving the room's messages; with sinceSeq, first every message after it. */
export const RoomJoinPayload = z.strictObject({
  roomId: RoomId,
  sinceSeq: Seq.optional().describe(
    'Last seq this client has; every later message is pushed first, in order.',
  ),
});
export const RoomLeavePayload = z.strictObject({ roomId: RoomId });
/**
 * What the platform's own room messages (a job room's contract events) carry and clients do not
 * send: `meta.system` (clients show a message with a string `meta.system` as a system line) and a
 * `clientMsgId` starting with `system.`. The platform writes those messages itself, without this
 * schema; a client `room.send` with either is a VALIDATION_FAILED, so no member can forge one.
 */
export const RESERVED_META_KEY = 'system';
/** See RESERVED_META_KEY. */
export const RESERVED_CLIENT_MSG_ID_PREFIX = 'system.';

/** `room.send`: acknowledged with its seq only once the message is durable. */
export const RoomSendPayload = z.strictObject({
  roomId: RoomId,
  clientMsgId: z
    .string()
    .min(1)
    .max(64)
    .refine((id) => !id.startsWith(RESERVED_CLIENT_MSG_ID_PREFIX), {
      error: `must not start with "${RESERVED_CLIENT_MSG_ID_PREFIX}" (reserved for the platform's messages)`,
    })
    .describe(
      `Chosen by the client, unique per sender and room: resending it returns the first seq and stores nothing new. Must not start with "${RESERVED_CLIENT_MSG_ID_PREFIX}" (reserved for the platform's messages).`,
    ),
  body: StorableText.max(MAX_BODY_CHARS),
  meta: RoomMeta.superRefine((meta, ctx) => {
    if (Object.hasOwn(meta, RESERVED_META_KEY))
      ctx.addIssue({
        code: 'custom',
        path: [RESERVED_META_KEY],
        message: `the key "${RESERVED_META_KEY}" is reserved for the platform's messages`,
      });
  })
    .describe(
      `Optional JSON object attached to a message: at most ${MAX_META_CHARS} characters as JSON, ${MAX_META_DEPTH} levels deep, well-formed strings without U+0000, no key "__proto__" at any level; the top-level key "${RESERVED_META_KEY}" is reserved for the platform's messages.`,
    )
    .optional(),
});
export const RoomHistoryPayload = z.strictObject({
  roomId: RoomId,
  beforeSeq: Seq.optional().describe('Only messages with a smaller seq; omit for the newest.'),
  limit: z.int().min(1).max(100).default(50),
});
export const RoomTypingPayload = z.strictObject({ roomId: RoomId });
export const RoomReadPayload = z.strictObject({ roomId: RoomId, seq: Seq });

const roomFrame = <T extends string, P extends z.ZodType>(
  t: T,
  payload: P,
  id: string,
  description: string,
) => z.strictObject({ t: z.literal(t), id: RequestId.optional(), d: payload }).meta({ id, description });

export const RoomJoinFrame = roomFrame(
  ClientFrameType.ROOM_JOIN,
  RoomJoinPayload,
  'RoomJoinFrame',
  'Joins a room (members only); answered by ok {lastSeq}.',
);
export const RoomLeaveFrame = roomFrame(
  ClientFrameType.ROOM_LEAVE,
  RoomLeavePayload,
  'RoomLeaveFrame',
  'Stops receiving a room on this connection; answered by ok.',
);
export const RoomSendFrame = roomFrame(
  ClientFrameType.ROOM_SEND,
  RoomSendPayload,
  'RoomSendFrame',
  'Sends a message; answered by ok {seq, sentAt} once durable.',
);
export const RoomHistoryFrame = roomFrame(
  ClientFrameType.ROOM_HISTORY,
  RoomHistoryPayload,
  'RoomHistoryFrame',
  'Reads stored messages, newest first; answered by ok {messages}.',
);
export const RoomTypingFrame = roomFrame(
  ClientFrameType.ROOM_TYPING,
  RoomTypingPayload,
  'RoomTypingFrame',
  'Tells the other members you are typing (ephemeral, throttled).',
);
export const RoomReadFrame = roomFrame(
  ClientFrameType.ROOM_READ,
  RoomReadPayload,
  'RoomReadFrame',
  'Marks messages up to seq as read; answered by ok {seq}.',
);

/** Most notification ids one `notifications.read` may name. */
export const MAX_NOTIFICATION_READ_IDS = 100;

/**
 * `notifications.read`: marks your notifications read — `{ids}` (unknown and others' ids are
 * ignored), `{all: true, upTo}` (the notification `upTo`, the newest one you listed, and every one
 * older by (createdAt, id): newer ones stay unread; an `upTo` that is not yours marks nothing) or
 * `{all: true}` (everything, including what you have not seen). Your other sockets get a
 * `notifications.read` push.
 */
export const NotificationsReadPayload = z.union([
  z.strictObject({
    ids: z
      .array(Uuid)
      .min(1)
      .max(MAX_NOTIFICATION_READ_IDS)
      .describe(`1 to ${MAX_NOTIFICATION_READ_IDS} notification ids.`),
  }),
  z.strictObject({
    all: z
      .literal(true)
      .describe(
        'Every notification of yours (with upTo: up to that one), including unseen ones without upTo.',
      ),
    upTo: Uuid.optional().describe(
      'The newest notification you listed: it and older ones are marked read, newer ones stay unread.',
    ),
  }),
]);
export type NotificationsReadPayload = z.infer<typeof NotificationsReadPayload>;

export const NotificationsReadFrame = z
  .strictObject({
    t: z.literal(ClientFrameType.NOTIFICATIONS_READ),
    id: RequestId.optional(),
    d: NotificationsReadPayload,
  })
  .meta({
    id: 'NotificationsReadFrame',
    description:
      'Marks notifications read ({ids}, {all: true, upTo} or {all: true}); answered by ok {updated, unreadCount}.',
  });

/** Most skills a `jobs.watch` filter may name (as many as a job may ask for). */
export const MAX_WATCH_SKILLS = 30;

/**
 * `jobs.watch`: a live job board on this connection. Every job posted afterwards that matches is
 * pushed as `job.posted`: its category equals `categoryId` (when set) and it asks for at least one
 * of `skills` (when any are given; compared trimmed, lower case, inner whitespace collapsed, as
 * REST stores skills). One watch per connection: a new one replaces it; it ends with the connection.
 */
export const JobsWatchPayload = z.strictObject({
  categoryId: CategoryId.optional().describe('Only jobs of this category; absent: every category.'),
  skills: z
    // Not blank: normalisation drops a blank skill, and a filter left without skills means "any",
    // so `["  "]` would widen the watch to every job instead of narrowing it.
    .array(
      z
        .string()
        .min(1)
        .max(50)
        .regex(/\S/u, { error: 'must not be blank (whitespace only)' })
        // No job can ask for a skill with a comma (REST refuses one: lists of skills are
        // comma-separated), so a watch naming one would silently never match (review 23).
        .regex(/^[^,]*$/u, { error: 'must not contain a comma (a list of skills is comma-separated)' }),
    )
    .max(MAX_WATCH_SKILLS)
    .optional()
    .describe(
      `Up to ${MAX_WATCH_SKILLS} skills of 1 to 50 characters, each with a character other than whitespace and no comma; a job matches when it asks for at least one. Absent or empty: any skills.`,
    ),
});
export type JobsWatchPayload = z.infer<typeof JobsWatchPayload>;

export const JobsWatchFrame = z
  .strictObject({ t: z.literal(ClientFrameType.JOBS_WATCH), id: RequestId.optional(), d: JobsWatchPayload })
  .meta({
    id: 'JobsWatchFrame',
    description: "Watches new jobs matching a filter (replaces the connection's watch); answered by ok.",
  });

/** `jobs.unwatch`: ends the connection's job watch (a no-op without one); `d` may be omitted or `{}`. */
export const JobsUnwatchFrame = z
  .strictObject({
    t: z.literal(ClientFrameType.JOBS_UNWATCH),
    id: RequestId.optional(),
    d: z.strictObject({}).optional(),
  })
  .meta({ id: 'JobsUnwatchFrame', description: "Ends the connection's job watch; answered by ok." });

/**
 * Any frame a client may send, discriminated on `t`. The gateway validates every inbound frame
 * with this (after the codec has decoded it); inside the server the type is trusted.
 */
export const ClientFrame = z
  .discriminatedUnion('t', [
    PingFrame,
    AuthRefreshFrame,
    PresenceSubscribeFrame,
    PresenceUnsubscribeFrame,
    RoomJoinFrame,
    RoomLeaveFrame,
    RoomSendFrame,
    RoomHistoryFrame,
    RoomTypingFrame,
    RoomReadFrame,
    NotificationsReadFrame,
    JobsWatchFrame,
    JobsUnwatchFrame,
  ])
  .describe('A client-to-server request: {t, id?, d?}.');
export type ClientFrame = z.infer<typeof ClientFrame>;

/** The client frame of one type, e.g. `ClientFrameOf<'ping'>`, for exhaustive handler tables. */
export type ClientFrameOf<T extends ClientFrameType> = Extract<ClientFrame, { t: T }>;

// ---------------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------------

/** `d` of the `ok` reply to `ping`: the server clock, for estimating offset and round trip. */
export const PingResult = z.object({ serverTime: EpochMs }).meta({
  id: 'PingResult',
  description: 'd of the ok reply to ping.',
});
export type PingResult = z.infer<typeof PingResult>;

/** `d` of the `ok` reply to `auth.refresh`: when the connection will be closed 4001 unless refreshed again. */
export const AuthRefreshResult = z
  .object({
    expiresAt: EpochMs.describe(
      'Expiry of the new token (its exp claim) in ms since the Unix epoch; refresh again before it.',
    ),
  })
  .meta({ id: 'AuthRefreshResult', description: 'd of the ok reply to auth.refresh.' });
export type AuthRefreshResult = z.infer<typeof AuthRefreshResult>;

/** Presence of a user: online while at least one of their connections is open on any node. */
export const PresenceStatus = {
  ONLINE: 'online',
  OFFLINE: 'offline',
} as const;
export type PresenceStatus = (typeof PresenceStatus)[keyof typeof PresenceStatus];

/**
 * Whether a user has at least one open connection anywhere. `lastSeenAt` is null while online and
 * for a user never seen; when offline it is the moment their last connection closed.
 */
export const PresenceState = z
  .object({
    userId: UserId,
    status: z.enum(PresenceStatus),
    lastSeenAt: Iso.nullable().describe('RFC 3339 UTC time the user went offline; null while online.'),
  })
  .meta({ id: 'PresenceState', description: 'Presence of one user.' });
export type PresenceState = z.infer<typeof PresenceState>;

/** `d` of the `ok` reply to `presence.subscribe`: the state of every subscribed user right now. */
export const PresenceSubscribeResult = z.object({ presence: z.array(PresenceState) }).meta({
  id: 'PresenceSubscribeResult',
  description: 'd of the ok reply to presence.subscribe: current state of each requested user.',
});
export type PresenceSubscribeResult = z.infer<typeof PresenceSubscribeResult>;

/** A stored room message, as pushed (`room.message`) and as listed by `room.history`. */
export const RoomMessage = z
  .object({
    roomId: RoomId,
    seq: MessageSeq,
    senderId: UserId,
    clientMsgId: z.string(),
    body: z.string(),
    meta: z.record(z.string(), z.unknown()).optional(),
    sentAt: Iso,
  })
  .meta({ id: 'RoomMessage', description: 'A durable message of a room.' });
export type RoomMessage = z.infer<typeof RoomMessage>;

export const RoomJoinResult = z
  .object({ lastSeq: Seq })
  .meta({ id: 'RoomJoinResult', description: 'Highest seq of the room when joined.' });
export const RoomSendResult = z
  .object({ seq: MessageSeq, sentAt: Iso })
  .meta({ id: 'RoomSendResult', description: 'Seq and time of the durable message.' });
export const RoomHistoryResult = z
  .object({ messages: z.array(RoomMessage) })
  .meta({ id: 'RoomHistoryResult', description: 'Messages newest first.' });
export const RoomReadResult = z
  .object({ seq: Seq })
  .meta({ id: 'RoomReadResult', description: 'Your read mark after the request.' });
export const NotificationsReadResult = z
  .object({
    updated: z.int().min(0).describe('Notifications that were unread and are read now.'),
    unreadCount: z.int().min(0).describe('Your unread notifications after the request.'),
  })
  .meta({ id: 'NotificationsReadResult', description: 'd of the ok reply to notifications.read.' });

/**
 * The schema of the `ok` payload of each request type, so the SDK can validate and type a reply
 * from the request it sent. `undefined`: the reply has no `d`.
 */
export const ReplyPayloads = {
  [ClientFrameType.PING]: PingResult,
  [ClientFrameType.AUTH_REFRESH]: AuthRefreshResult,
  [ClientFrameType.PRESENCE_SUBSCRIBE]: PresenceSubscribeResult,
  [ClientFrameType.PRESENCE_UNSUBSCRIBE]: z.undefined(),
  [ClientFrameType.ROOM_JOIN]: RoomJoinResult,
  [ClientFrameType.ROOM_LEAVE]: z.undefined(),
  [ClientFrameType.ROOM_SEND]: RoomSendResult,
  [ClientFrameType.ROOM_HISTORY]: RoomHistoryResult,
  [ClientFrameType.ROOM_TYPING]: z.undefined(),
  [ClientFrameType.ROOM_READ]: RoomReadResult,
  [ClientFrameType.NOTIFICATIONS_READ]: NotificationsReadResult,
  [ClientFrameType.JOBS_WATCH]: z.undefined(),
  [ClientFrameType.JOBS_UNWATCH]: z.undefined(),
} as const satisfies Record<ClientFrameType, z.ZodType>;
/** The `ok` payload type of a request type, e.g. `ReplyPayload<'ping'>` is `{serverTime}`. */
export type ReplyPayload<T extends ClientFrameType> = z.infer<(typeof ReplyPayloads)[T]>;

/**
 * Success reply to a request that carried an `id`. `d` is the type's result (see ReplyPayloads),
 * absent for types without one. Typed `unknown` here because only the request says which it is.
 */
export const OkReply = z
  .object({
    t: z.literal('ok'),
    id: RequestId,
    d: z.unknown().optional().describe('The result; its shape depends on the request type.'),
  })
  .meta({ id: 'OkReply', description: 'Success reply to the request with the same id.' });
export type OkReply = z.infer<typeof OkReply>;

/**
 * `d` of an `error` reply. A code this client does not know decodes as INTERNAL, as PROTOCOL.md
 * requires, so a newer server never makes an older client drop the reply.
 */
export const ErrorPayload = z.object({
  code: z
    .enum(ErrorCode)
    .catch(ErrorCode.INTERNAL)
    .describe('Stable error code (PROTOCOL.md); treat a code you do not know as INTERNAL.'),
  message: z.string().describe('Human-readable, for logs; do not branch on it.'),
  details: z
    .record(z.string(), z.unknown())
    .optional()
    .describe('Machine-readable extras, e.g. errors [{path, message}] with VALIDATION_FAILED.'),
});
export type ErrorPayload = z.infer<typeof ErrorPayload>;

/**
 * Failure reply. Carries the request's `id` when one could be read from the bad frame; without
 * it the error concerns a frame whose id was unreadable (or absent), and no pending request
 * should be failed by it.
 */
export const ErrorReply = z
  .object({ t: z.literal('error'), id: RequestId.optional(), d: ErrorPayload })
  .meta({ id: 'ErrorReply', description: 'Failure reply; id absent when the bad frame had no readable id.' });
export type ErrorReply = z.infer<typeof ErrorReply>;

// ---------------------------------------------------------------------------------------------
// Server → client pushes
// ---------------------------------------------------------------------------------------------

/** Names of the server push types (`t` of a push). New ones may appear: clients ignore unknown ones. */
export const ServerPushType = {
  HELLO: 'hello',
  PRESENCE: 'presence',
  NOTIFICATION: 'notification',
  PONG: 'pong',
  ROOM_MESSAGE: 'room.message',
  ROOM_TYPING: 'room.typing',
  ROOM_READ: 'room.read',
  ROOM_MEMBER: 'room.member',
  WALLET: 'wallet',
  NOTIFICATIONS_READ: 'notifications.read',
  MARKET: 'market',
  JOB_POSTED: 'job.posted',
} as const;
export type ServerPushType = (typeof ServerPushType)[keyof typeof ServerPushType];

/** Limits of this connection, announced so clients can stay within them instead of discovering them. */
export const HelloLimits = z.object({
  maxFrameBytes: z
    .int()
    .positive()
    .describe('Largest inbound frame in bytes; a larger one closes with 1009.'),
  maxMessagesPerSecond: z
    .int()
    .positive()
    .describe('Sustained inbound frames per second; beyond it frames get RATE_LIMITED errors.'),
  maxBurst: z.int().positive().describe('Frames that may be sent at once above the sustained rate.'),
  maxBufferedBytes: z
    .int()
    .positive()
    .describe('Server-side send buffer in bytes; a client reading slower than that is closed 1013.'),
});
export type HelloLimits = z.infer<typeof HelloLimits>;

/** `hello`: the first frame on every connection; requests may be sent before it arrives. */
export const HelloPayload = z.object({
  connectionId: z.string().min(1).describe('Opaque id of this connection; quote it when reporting problems.'),
  userId: UserId,
  serverTime: EpochMs,
  heartbeatMs: z
    .int()
    .positive()
    .describe(
      'Interval of the server WebSocket pings in ms; silence for about twice that ends the connection.',
    ),
  // An integer in JSON Schema too (zod types a numeric literal as "number").
  protocolVersion: z.literal(PROTOCOL_VERSION).meta({ type: 'integer' }),
  encoding: z.enum(Encoding),
  limits: HelloLimits,
});
export type HelloPayload = z.infer<typeof HelloPayload>;

/** `notification`: a personal notification, pushed to every connection of its user. */
export const NotificationPayload = z.object({
  id: z.string().min(1).describe('Stable id; the same notification may be pushed again after a reconnect.'),
  kind: z
    .string()
    .min(1)
    .describe('Dotted category, e.g. bid.received; clients ignore kinds they do not know.'),
  title: z.string(),
  body: z.string(),
  data: z.record(z.string(), z.unknown()).optional().describe('Kind-specific fields (ids to deep-link to).'),
  createdAt: Iso,
});
export type NotificationPayload = z.infer<typeof NotificationPayload>;

/**
 * `wallet`: the user's balance after it changed (a transfer in or out, a top-up or withdrawal settled,
 * an escrow move), pushed to every connection of the user. Carries the whole balance, so a missed
 * or repeated push is harmless: the latest one is the truth (REST `GET /v1/wallet` on reconnect).
 */
export const WalletPayload = z.object({
  currency: z.string().describe('ISO 4217 code; amounts are its minor units.'),
  available: z.int().min(0).describe('posted − pending: what can be spent now.'),
  pending: z.int().min(0).describe('Reserved by withdrawals in flight.'),
  parked: z
    .int()
    .min(0)
    .optional()
    .describe(
      'Received while the balance was at its limit (2^53 − 1), credited by itself once there is room; as GET /v1/wallet. Absent only from nodes older than this field.',
    ),
});
export type WalletPayload = z.infer<typeof WalletPayload>;

/**
 * Types of `market` pushes known to this protocol version; `contract.<event>` is one per contract
 * transition (`contract.accept`, `contract.deliver`, …). More may appear: clients ignore types they
 * do not know.
 */
export const MarketEventType = {
  BID_PLACED: 'bid.placed',
  BID_ACCEPTED: 'bid.accepted',
  BID_REJECTED: 'bid.rejected',
  BID_WITHDRAWN: 'bid.withdrawn',
  JOB_CLOSED: 'job.closed',
  REVIEW_PUBLISHED: 'review.published',
} as const;
export type MarketEventType = (typeof MarketEventType)[keyof typeof MarketEventType];

/**
 * `market`: something happened to a job, bid, contract or review you are a party to. Ids and
 * states only, never text: read the thing over REST for the rest. At most once: a push missed
 * while offline is not repeated (REST is the truth; re-read it after a reconnect).
 */
export const MarketEventPayload = z.object({
  id: z.string().min(1).describe('Stable id of the event; the same id is never pushed twice on purpose.'),
  type: z
    .string()
    .min(1)
    .describe(
      'bid.placed | bid.accepted | bid.rejected | bid.withdrawn | job.closed | contract.<event> | review.published; ignore types you do not know.',
    ),
  jobId: JobId.optional(),
  bidId: BidId.optional(),
  contractId: ContractId.optional(),
  reviewId: ReviewId.optional(),
  state: z
    .string()
    .optional()
    .describe("State of the thing after the event (a bid's, job's or contract's status)."),
  version: z.int().min(0).optional().describe("The contract's version after a contract event."),
  at: Iso.describe('When the change was committed.'),
});
export type MarketEventPayload = z.infer<typeof MarketEventPayload>;

/**
 * `job.posted`: a new open job matching this connection's `jobs.watch` filter: the summary a job
 * board lists (the description and bids are read over REST).
 */
export const JobPostedPayload = z.object({
  id: JobId,
  title: z.string(),
  categoryId: CategoryId,
  skills: z.array(z.string()).describe('Lower case, as stored.'),
  budget: z.object({
    kind: z.string().describe('fixed | hourly (ignore a kind you do not know).'),
    amount: z.int().min(0).describe('Minor units of currency.'),
    currency: z.string(),
  }),
  remote: z.boolean(),
  location: z.string().nullable(),
  hirerId: UserId,
  createdAt: Iso,
});
export type JobPostedPayload = z.infer<typeof JobPostedPayload>;

/** `pong`: answer to a `ping` sent without `id`. */
export const PongPayload = z.object({ serverTime: EpochMs });
export type PongPayload = z.infer<typeof PongPayload>;

/** `{t: 'hello', d: HelloPayload}`. */
export const HelloFrame = z
  .object({ t: z.literal(ServerPushType.HELLO), d: HelloPayload })
  .meta({ id: 'HelloFrame', description: 'First frame of every connection.' });
/** `{t: 'presence', d: PresenceState}`: one push per online/offline transition of a subscribed user. */
export const PresenceFrame = z
  .object({ t: z.literal(ServerPushType.PRESENCE), d: PresenceState })
  .meta({ id: 'PresenceFrame', description: 'A subscribed user went online or offline.' });
/** `{t: 'notification', d: NotificationPayload}`. */
export const NotificationFrame = z
  .object({ t: z.literal(ServerPushType.NOTIFICATION), d: NotificationPayload })
  .meta({ id: 'NotificationFrame', description: 'A personal notification.' });
/** `{t: 'wallet', d: WalletPayload}`. */
export const WalletFrame = z
  .object({ t: z.literal(ServerPushType.WALLET), d: WalletPayload })
  .meta({ id: 'WalletFrame', description: "The user's wallet balance changed." });
/** `{t: 'market', d: MarketEventPayload}`. */
export const MarketFrame = z.object({ t: z.literal(ServerPushType.MARKET), d: MarketEventPayload }).meta({
  id: 'MarketFrame',
  description: 'A job, bid, contract or review of yours changed (ids and states).',
});
/** `{t: 'job.posted', d: JobPostedPayload}`. */
export const JobPostedFrame = z
  .object({ t: z.literal(ServerPushType.JOB_POSTED), d: JobPostedPayload })
  .meta({ id: 'JobPostedFrame', description: 'A new job matching your jobs.watch filter.' });
/**
 * `notifications.read`: notifications were marked read on another device (or over REST); clear them
 * and set the badge to `unreadCount`. `all` means every notification up to now; with `upTo`, only
 * that one and those older than it (createdAt, then id).
 */
export const NotificationsReadPushPayload = z.object({
  ids: z.array(z.string()).optional().describe('The notifications now read (absent with all).'),
  all: z.boolean().optional().describe('True when every notification was marked read.'),
  upTo: z
    .string()
    .optional()
    .describe('With all: only this notification and older ones were marked read; newer ones stay unread.'),
  unreadCount: z.int().min(0).describe('Unread notifications left.'),
});
export type NotificationsReadPushPayload = z.infer<typeof NotificationsReadPushPayload>;
/** `{t: 'notifications.read', d: NotificationsReadPushPayload}`. */
export const NotificationsReadPushFrame = z
  .object({ t: z.literal(ServerPushType.NOTIFICATIONS_READ), d: NotificationsReadPushPayload })
  .meta({ id: 'NotificationsReadPushFrame', description: 'Notifications were read on another device.' });
/** `{t: 'pong', d: PongPayload}`. */
export const PongFrame = z
  .object({ t: z.literal(ServerPushType.PONG), d: PongPayload })
  .meta({ id: 'PongFrame', description: 'Answer to a ping sent without id.' });

/** `{t: 'room.message', d: RoomMessage}`: to every joined connection of every member, the sender's other ones included. */
export const RoomMessageFrame = z
  .object({ t: z.literal(ServerPushType.ROOM_MESSAGE), d: RoomMessage })
  .meta({ id: 'RoomMessageFrame', description: 'A new durable message; receivers see a room in seq order.' });
/** `{t: 'room.typing', d: {roomId, userId}}`: ephemeral, to the other joined members. */
export const RoomTypingPushFrame = z
  .object({ t: z.literal(ServerPushType.ROOM_TYPING), d: z.object({ roomId: RoomId, userId: UserId }) })
  .meta({ id: 'RoomTypingPushFrame', description: 'A member is typing (ephemeral).' });
/** `{t: 'room.read', d: {roomId, userId, seq}}`: a member's read mark moved. */
export const RoomReadPushFrame = z
  .object({
    t: z.literal(ServerPushType.ROOM_READ),
    d: z.object({ roomId: RoomId, userId: UserId, seq: MessageSeq }),
  })
  .meta({ id: 'RoomReadPushFrame', description: "A member's read mark moved." });
/** `{t: 'room.member', d: {roomId, userId, change}}`: a member joined or left the room (membership, not sockets). */
export const RoomMemberFrame = z
  .object({
    t: z.literal(ServerPushType.ROOM_MEMBER),
    d: z.object({ roomId: RoomId, userId: UserId, change: z.enum(['added', 'removed']) }),
  })
  .meta({ id: 'RoomMemberFrame', description: 'Room membership changed.' });

const pushFrames = [
  HelloFrame,
  PresenceFrame,
  NotificationFrame,
  PongFrame,
  RoomMessageFrame,
  RoomTypingPushFrame,
  RoomReadPushFrame,
  RoomMemberFrame,
  WalletFrame,
  NotificationsReadPushFrame,
  MarketFrame,
  JobPostedFrame,
] as const;

/** Any server push (a frame that is not a reply), discriminated on `t`. */
export const ServerPush = z.discriminatedUnion('t', pushFrames);
export type ServerPush = z.infer<typeof ServerPush>;

/** The push of one type, e.g. `ServerPushOf<'presence'>`. */
export type ServerPushOf<T extends ServerPushType> = Extract<ServerPush, { t: T }>;

/** Any frame the server may send: a reply or a push. The SDK validates inbound frames with it. */
export const ServerFrame = z
  .discriminatedUnion('t', [OkReply, ErrorReply, ...pushFrames])
  .describe('A server-to-client frame: a reply {t: ok|error, id?, d?} or a push {t, d}.');
export type ServerFrame = z.infer<typeof ServerFrame>;

// ---------------------------------------------------------------------------------------------
// JSON Schema
// ---------------------------------------------------------------------------------------------

type JsonSchema = z.core.JSONSchema.BaseSchema;

/** The document written to `protocol/schema.json`. */
export interface ProtocolJsonSchema {
  readonly $schema: string;
  readonly title: string;
  readonly description: string;
  readonly $defs: Readonly<Record<string, JsonSchema>>;
  readonly anyOf: readonly JsonSchema[];
}

/**
 * JSON Schema (draft 2020-12) of every frame, for clients in other languages: `$defs.ClientFrame`,
 * `$defs.ServerFrame`, the `ok` results and every named part. Describes the wire (zod's input
 * side): strict client objects carry `additionalProperties: false`, server objects stay open.
 * Pure and deterministic, so a test can compare it with the committed file.
 */
export function buildProtocolSchema(): ProtocolJsonSchema {
  const roots: Readonly<Record<string, z.ZodType>> = {
    ClientFrame,
    ServerFrame,
    PingResult,
    AuthRefreshResult,
    PresenceSubscribeResult,
    RoomJoinResult,
    RoomSendResult,
    RoomHistoryResult,
    RoomReadResult,
  };
  const rootBodies: Record<string, JsonSchema> = {};
  const shared: Record<string, JsonSchema> = {};
  for (const [name, schema] of Object.entries(roots)) {
    const {
      $schema: _schema,
      $defs,
      ...body
    } = z.toJSONSchema(schema, {
      target: 'draft-2020-12',
      io: 'input',
      // A caught enum shows its fallback as `default`, which in JSON Schema means "value when
      // absent": wrong for a required field, so it is dropped.
      override: ({ zodSchema, jsonSchema }) => {
        if (zodSchema._zod.def.type === 'catch') delete jsonSchema.default;
      },
    });
    // A root that has an id of its own comes back as a $ref to its entry in $defs.
    if (body.$ref !== `#/$defs/${name}`) rootBodies[name] = body;
    for (const [id, def] of Object.entries($defs ?? {})) {
      const known = shared[id];
      if (known !== undefined && JSON.stringify(known) !== JSON.stringify(def)) {
        throw new Error(`two different schemas share the JSON Schema id ${id}`);
      }
      shared[id] = def;
    }
  }
  const byName = ([a]: [string, JsonSchema], [b]: [string, JsonSchema]) => (a < b ? -1 : a > b ? 1 : 0);
  // The two entry points first, then every named part alphabetically, for readable diffs.
  const defs: Record<string, JsonSchema> = {
    ...rootBodies,
    ...Object.fromEntries(Object.entries(shared).sort(byName)),
  };
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: `gigwire WebSocket protocol v${PROTOCOL_VERSION}`,
    description:
      'Frames of the gigwire WebSocket protocol (protocol/PROTOCOL.md). Encoded as MessagePack maps in ' +
      'binary frames (subprotocol gigwire.v1.msgpack) or JSON objects in text frames (gigwire.v1.json). ' +
      'Generated from protocol/src/frames.ts; do not edit.',
    $defs: defs,
    anyOf: [{ $ref: '#/$defs/ClientFrame' }, { $ref: '#/$defs/ServerFrame' }],
  };
}
