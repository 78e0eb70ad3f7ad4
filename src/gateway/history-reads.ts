/**
 * `room.history` on this node: read from the database here, outside the room actor's turn. Inside
 * it, a member flooding history requests held every other member's sends, joins and typing behind
 * the reads (20 sockets within their rate limits timed the room's senders out). Bounded twice, so
 * reads cannot take the database pool from the group commits either: at most PER_USER reads of one
 * user at a time on this node (more: RATE_LIMITED, retry shortly), and at most CONCURRENCY on the
 * node, the rest waiting in arrival order (more than MAX_WAITING waiting: UNAVAILABLE).
 */
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import { AppError } from '../platform/errors.js';

/** History reads of one user in flight on this node. */
export const HISTORY_READS_PER_USER = 4;
/** History reads in flight on this node (the pool's default is 10 connections). */
export const HISTORY_READS_CONCURRENCY = 4;
/** History reads waiting for a slot on this node. */
export const HISTORY_READS_MAX_WAITING = 1_000;
/** What a RATE_LIMITED history request is told to wait. */
const RETRY_AFTER_MS = 200;

export function createHistoryReads<Page>(deps: {
  readonly read: (roomId: RoomId, beforeSeq: number | undefined, limit: number) => Promise<Page>;
  readonly perUser?: number;
  readonly concurrency?: number;
  readonly maxWaiting?: number;
}) {
  const perUser = deps.perUser ?? HISTORY_READS_PER_USER;
  const concurrency = deps.concurrency ?? HISTORY_READS_CONCURRENCY;
  const maxWaiting = deps.maxWaiting ?? HISTORY_READS_MAX_WAITING;
  const inFlightOf = new Map<UserId, number>();
  const waiting: (() => void)[] = [];
  let running = 0;

  const slot = async () => {
    if (running < concurrency) {
      running += 1;
      return;
    }
    if (waiting.length >= maxWaiting) {
      throw new AppError('UNAVAILABLE', 'too many history reads waiting on this node; retry later');
    }
    // The slot is handed over by `release` (running stays counted).
    await new Promise<void>((resolve) => waiting.push(resolve));
  };
  const release = () => {
    const next = waiting.shift();
    if (next === undefined) running -= 1;
    else next();
  };

  return {
    read: async (userId: UserId, roomId: RoomId, beforeSeq: number | undefined, limit: number) => {
      const mine = inFlightOf.get(userId) ?? 0;
      if (mine >= perUser) {
        throw new AppError('RATE_LIMITED', `at most ${perUser} history reads at a time`, {
          details: { retryAfterMs: RETRY_AFTER_MS },
        });
      }
      inFlightOf.set(userId, mine + 1);
      try {
        await slot();
        try {
          return await deps.read(roomId, beforeSeq, limit);
        } finally {
          release();
        }
      } finally {
        const left = (inFlightOf.get(userId) ?? 1) - 1;
        if (left > 0) inFlightOf.set(userId, left);
        else inFlightOf.delete(userId);
      }
    },
    /** Reads running and waiting on this node (for tests and metrics). */
    load: () => ({ running, waiting: waiting.length, users: inFlightOf.size }),
  };
}
