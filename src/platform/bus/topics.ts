/**
 * The bus catalogue: every topic gigwire nodes talk on, each with its name and the zod schema of
 * its payload, in this one module. `Bus.publish` and `Bus.subscribe` take these Topic objects, so
 * a publisher cannot send a payload of the wrong shape and a subscriber receives it typed: the
 * Redis bus parses each message with the topic's schema once, where it arrives from Redis, and a
 * process's own subscribers get the published object itself.
 *
 * Payloads cross process boundaries and versions of gigwire during a rolling deploy: add optional
 * fields, never rename or repurpose one.
 */
import { z } from 'zod';
import {
  JobPostedPayload,
  MarketEventPayload,
  NotificationPayload,
  NotificationsReadPushPayload,
  PresenceState,
  ServerFrame,
} from '../../../protocol/src/frames.js';
import { RoomId, SessionId, UserId } from '../../../protocol/src/ids.js';

/** A named channel and the shape of what travels on it. */
export interface Topic<P> {
  readonly name: string;
  readonly payload: z.ZodType<P>;
}

const topic = <P>(name: string, payload: z.ZodType<P>): Topic<P> => ({ name, payload });

/** One topic per key (a room, a node), all with the same payload; topics are made on demand. */
const family =
  <P>(prefix: string, suffix: string, payload: z.ZodType<P>) =>
  (key: string): Topic<P> => ({ name: `${prefix}.${key}${suffix}`, payload });

/** A user's presence changed (online/offline): watchers on every node are told. */
export const PRESENCE_TOPIC = topic('presence', PresenceState);

/**
 * Presence transitions of one batch on one node (the sockets that opened and closed while its
 * previous batch was in Redis), in the order they happened: one publish per batch, not per user.
 * Nodes still listen on PRESENCE_TOPIC, which older nodes publish to during a rolling deploy.
 */
export const PRESENCE_BATCH_TOPIC = topic('presence.batch', z.object({ states: z.array(PresenceState) }));

/** Sessions were revoked (logout, password change, lock, refresh-token reuse). No sessionId: all of the user's. */
export const SessionsRevokedPayload = z.object({
  userId: UserId,
  sessionId: SessionId.optional(),
  reason: z.string(),
});
export type SessionsRevokedPayload = z.infer<typeof SessionsRevokedPayload>;
export const SESSIONS_REVOKED_TOPIC = topic('auth.sessions-revoked', SessionsRevokedPayload);
/** The `reason` of an admin's lock (all sessions): gateways also end every presence watch of the user. */
export const ACCOUNT_LOCKED_REASON = 'locked';

/** A room's membership changed: caches of it are dropped and its owner's actor reloads it. */
export const ROOM_MEMBERSHIP_TOPIC = topic('rooms.membership', z.object({ roomId: RoomId }));

/** Frames of one room (messages, typing, read marks, membership), for the nodes with joined sockets. */
export const RoomFramePayload = z.object({
  frame: ServerFrame,
  /**
   * A `room.member` change announced again (a POST of a member, a DELETE of a non-member: the retry
   * of one whose first announcement failed): only the named user's own joined connections are told
   * (and, for a removal, taken out); the room's members are not (they would hear of a change of
   * somebody who may never have been in, or who has been a member all along).
   */
  userOnly: z.literal(true).optional(),
});
export type RoomFramePayload = z.infer<typeof RoomFramePayload>;
export const roomTopic = family('room', '', RoomFramePayload);

/** One user removed another from their contacts: presence between them stops both ways. */
export const CONTACT_REMOVED_TOPIC = topic(
  'contacts.removed',
  z.object({ userId: UserId, contactId: UserId }),
);

/** Balances changed (committed): each node pushes a fresh `wallet` to the users' sockets it holds. */
export const WALLET_CHANGED_TOPIC = topic('wallet.changed', z.object({ userIds: z.array(UserId) }));

/** A stored notification for one user, pushed to every socket of theirs. */
export const NOTIFICATIONS_TOPIC = topic(
  'notifications',
  z.object({ userId: UserId, notification: NotificationPayload }),
);

/** Notifications were marked read: the user's other sockets clear their badge. */
export const NOTIFICATIONS_READ_TOPIC = topic(
  'notifications.read',
  NotificationsReadPushPayload.extend({ userId: UserId, exceptConnectionId: z.string().optional() }),
);

/** A `market` push for the named users. */
export const MARKET_EVENT_TOPIC = topic(
  'market.event',
  z.object({ userIds: z.array(UserId), event: MarketEventPayload }),
);

/** A job was posted: job boards (`jobs.watch`) on every node match it. */
export const JOB_POSTED_TOPIC = topic('market.job-posted', z.object({ job: JobPostedPayload }));

/** A request to an actor hosted on one node (src/actors/runtime/remote.ts); `message` is parsed by its kind. */
export const ActorRequest = z.object({
  from: z.string().min(1),
  corr: z.string().min(1),
  kind: z.string().min(1),
  id: z.string().min(1),
  message: z.unknown(),
});
export type ActorRequest = z.infer<typeof ActorRequest>;
export const actorRequestsTopic = family('node', '.requests', ActorRequest);

/**
 * The answer to an ActorRequest, sent to the asking node: a value or an error with a stable code.
 * The code is any text here, not this version's list: a node of a newer version may answer with a
 * code added since (a rolling deploy), and a reply refused by the schema would be dropped whole,
 * leaving its asker to time out. The asker maps a code it does not know (remote.ts).
 */
export const ActorReply = z.union([
  z.object({ corr: z.string(), ok: z.literal(true), value: z.unknown() }),
  z.object({
    corr: z.string(),
    ok: z.literal(false),
    error: z.object({
      code: z.string().min(1),
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  }),
]);
export type ActorReply = z.infer<typeof ActorReply>;
export const actorRepliesTopic = family('node', '.replies', ActorReply);
