/**
 * Unread room messages → `messages.unread` (issue 13 §5), without an outbox row per message: the
 * room actor calls this after each committed write with the members' read marks it holds anyway.
 * For every member who has messages of others past their read mark, and whom presence says is
 * offline, it enqueues one delayed `notifications.unread-check` keyed by (room, member, read mark):
 * the key is the unread streak, so the 2nd..nth message of a streak enqueue nothing new (BullMQ
 * keeps the id), and a read starts a new streak. The check decides when it runs.
 *
 * Cost per write: nothing for members with a socket on this node (`isConnectedHere`), already
 * scheduled in this process (a bounded memo) or found online in the last `onlineRecheckMs`, else one
 * pipelined presence read for the batch and one enqueue per offline member. Remembering "online"
 * matters: without it a busy room read presence for every member on every message (100 members ×
 * 250 messages/s = 25 000 Redis reads a second in the fan-out benchmark, a sixth of the node's CPU).
 * Each remembered "online" lasts a random half to whole of `onlineRecheckMs`: members remembered
 * together (every member of every busy room at the first message) would otherwise all be read again
 * in the same fraction of a second, and that burst of presence replies held the event loop for
 * 30–50 ms every `onlineRecheckMs` — the fan-out benchmark's p99. The price is that a member who goes
 * offline during a streak is scheduled by the first message up to `onlineRecheckMs` after they were
 * last seen online, so the reminder may come that much later than UNREAD_EMAIL_AFTER_S. Best effort: a
 * node dying between the commit and the enqueue loses that reminder (the messages themselves are
 * safe); the next message of the streak schedules it again.
 */
import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import type { Logger } from '../../platform/logger.js';
import { type TaskQueue, taskId } from '../../platform/queues/tasks.js';

export interface StoredMessageRef {
  readonly senderId: UserId;
  readonly seq: number;
}

export type OnRoomMessagesStored = (
  roomId: RoomId,
  messages: readonly StoredMessageRef[],
  members: ReadonlyMap<UserId, { readonly lastReadSeq: number }>,
) => void;

/** Streak keys remembered per process (oldest forgotten first). */
const MEMO_SIZE = 20_000;
/** Presence reads + enqueues in flight at once; beyond it a write schedules nothing (logged). */
const MAX_IN_FLIGHT = 256;
/** How long "this member was online" spares a presence read (capped at the reminder delay). */
const ONLINE_RECHECK_MS = 5_000;

export function createUnreadScheduler(deps: {
  readonly tasks: Pick<TaskQueue, 'enqueue'>;
  readonly isOnline: (userIds: readonly string[]) => Promise<boolean[]>;
  /** UNREAD_EMAIL_AFTER_S in ms. */
  readonly delayMs: number;
  readonly log: Logger;
  /** Monotonic milliseconds. */
  readonly now: () => number;
  /** Default: 5 s, at most `delayMs`. */
  readonly onlineRecheckMs?: number;
  /**
   * Whether the user has a socket on this node: online for sure, without asking presence. Default:
   * nobody (every member is read from presence).
   */
  readonly isConnectedHere?: (userId: UserId) => boolean;
  /** Uniform in [0, 1): spreads the "online" memo's expiry. Default Math.random. */
  readonly random?: () => number;
}): OnRoomMessagesStored {
  const isConnectedHere = deps.isConnectedHere ?? (() => false);
  const random = deps.random ?? Math.random;
  const onlineRecheckMs = Math.min(deps.onlineRecheckMs ?? ONLINE_RECHECK_MS, deps.delayMs);
  const scheduled = new Set<string>();
  /**
   * Per room, per member: until when the member counts as online without asking presence again.
   * Nested, not keyed by a joined string: this is looked up for every member on every message.
   */
  const seenOnline = new Map<RoomId, Map<UserId, number>>();
  let seenOnlineSize = 0;
  let inFlight = 0;
  const remember = (key: string) => {
    if (scheduled.size >= MEMO_SIZE) {
      const oldest = scheduled.values().next().value;
      if (oldest !== undefined) scheduled.delete(oldest);
    }
    scheduled.add(key);
  };
  const rememberOnline = (roomId: RoomId, userId: UserId, until: number) => {
    // At the bound everything is forgotten at once (each member costs one presence read again):
    // simpler than an order across rooms, and as bounded.
    if (seenOnlineSize >= MEMO_SIZE) {
      seenOnline.clear();
      seenOnlineSize = 0;
    }
    let ofRoom = seenOnline.get(roomId);
    if (ofRoom === undefined) {
      ofRoom = new Map();
      seenOnline.set(roomId, ofRoom);
    }
    if (!ofRoom.has(userId)) seenOnlineSize += 1;
    ofRoom.set(userId, until);
  };
  const hasUnreadOfOthers = (messages: readonly StoredMessageRef[], userId: UserId, lastReadSeq: number) => {
    for (const message of messages) if (message.senderId !== userId && message.seq > lastReadSeq) return true;
    return false;
  };

  return (roomId, messages, members) => {
    const now = deps.now();
    const candidates: { userId: UserId; readSeq: number; key: string }[] = [];
    const onlineInRoom = seenOnline.get(roomId);
    for (const [userId, { lastReadSeq }] of members) {
      if (!hasUnreadOfOthers(messages, userId, lastReadSeq)) continue;
      if (isConnectedHere(userId)) continue;
      if ((onlineInRoom?.get(userId) ?? Number.NEGATIVE_INFINITY) > now) continue;
      const key = taskId('unread', roomId, userId, String(lastReadSeq));
      if (!scheduled.has(key)) candidates.push({ userId, readSeq: lastReadSeq, key });
    }
    if (candidates.length === 0) return;
    if (inFlight >= MAX_IN_FLIGHT) {
      deps.log.warn({ roomId, members: candidates.length }, 'unread reminders skipped: too many in flight');
      return;
    }
    inFlight += 1;
    void (async () => {
      const online = await deps.isOnline(candidates.map((c) => c.userId));
      const readAt = deps.now();
      for (const [index, candidate] of candidates.entries()) {
        if (online[index] === true)
          rememberOnline(roomId, candidate.userId, readAt + onlineRecheckMs * (0.5 + random() / 2));
        if (online[index] !== false) continue;
        await deps.tasks.enqueue(
          'notifications.unread-check',
          { roomId, userId: candidate.userId, readSeq: candidate.readSeq },
          candidate.key,
          { delayMs: deps.delayMs },
        );
        remember(candidate.key);
      }
    })()
      .catch((error: unknown) => deps.log.warn({ err: error, roomId }, 'unread reminder not scheduled'))
      .finally(() => {
        inFlight -= 1;
      });
  };
}
