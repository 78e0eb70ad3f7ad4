/**
 * Unread room messages → `messages.unread` (issue 13 §5), without an outbox row per message: the
 * room actor calls this after each committed write with the members' read marks it holds anyway.
 * For every member who has messages of others past their read mark, and whom presence says is
 * offline, it enqueues one delayed `notifications.unread-check` keyed by (room, member, read mark):
 * the key is the unread streak, so the 2nd..nth message of a streak enqueue nothing new (BullMQ
 * keeps the id), and a read starts a new streak. The check decides when it runs.
 *
 * Cost per write: nothing for members already scheduled in this process (a bounded memo), else one
 * pipelined presence read for the batch and one enqueue per offline member. Best effort: a node
 * dying between the commit and the enqueue loses that reminder (the messages themselves are safe);
 * the next message of the streak schedules it again.
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

export function createUnreadScheduler(deps: {
  readonly tasks: Pick<TaskQueue, 'enqueue'>;
  readonly isOnline: (userIds: readonly string[]) => Promise<boolean[]>;
  /** UNREAD_EMAIL_AFTER_S in ms. */
  readonly delayMs: number;
  readonly log: Logger;
}): OnRoomMessagesStored {
  const scheduled = new Set<string>();
  let inFlight = 0;
  const remember = (key: string) => {
    if (scheduled.size >= MEMO_SIZE) {
      const oldest = scheduled.values().next().value;
      if (oldest !== undefined) scheduled.delete(oldest);
    }
    scheduled.add(key);
  };

  return (roomId, messages, members) => {
    const candidates: { userId: UserId; readSeq: number; key: string }[] = [];
    for (const [userId, member] of members) {
      if (!messages.some((m) => m.senderId !== userId && m.seq > member.lastReadSeq)) continue;
      const key = taskId('unread', roomId, userId, String(member.lastReadSeq));
      if (!scheduled.has(key)) candidates.push({ userId, readSeq: member.lastReadSeq, key });
    }
    if (candidates.length === 0) return;
    if (inFlight >= MAX_IN_FLIGHT) {
      deps.log.warn({ roomId, members: candidates.length }, 'unread reminders skipped: too many in flight');
      return;
    }
    inFlight += 1;
    void (async () => {
      const online = await deps.isOnline(candidates.map((c) => c.userId));
      for (const [index, candidate] of candidates.entries()) {
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
