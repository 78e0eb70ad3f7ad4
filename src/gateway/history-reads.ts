/**
 * `room.history` on this node: read from the database here, outside the room actor's turn. Inside
 * it, a member flooding history requests held every other member's sends, joins and typing behind
 * the reads (20 sockets within their rate limits timed the room's senders out). Bounded twice, so
 * reads cannot take the database pool from the group commits either: at most PER_USER reads of one
 * user at a time on this node (more: RATE_LIMITED, retry shortly), and at most CONCURRENCY on the
 * node, the rest waiting in arrival order (more than MAX_WAITING waiting, or a wait longer than
 * MAX_WAIT_MS, as in a database outage: UNAVAILABLE). A read whose asker is gone by its turn (the
 * socket closed) is skipped.
 */
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import { AppError } from '../platform/errors.js';
import { systemTimers, type Timers } from '../platform/timers.js';

/** History reads of one user in flight on this node. */
export const HISTORY_READS_PER_USER = 4;
/** History reads in flight on this node (the pool's default is 10 connections). */
export const HISTORY_READS_CONCURRENCY = 4;
/** History reads waiting for a slot on this node. */
export const HISTORY_READS_MAX_WAITING = 1_000;
/** Longest wait for a slot, about a room request's ask timeout. */
export const HISTORY_READS_MAX_WAIT_MS = 5_000;
/** What a RATE_LIMITED history request is told to wait. */
const RETRY_AFTER_MS = 200;

export function createHistoryReads<Page>(deps: {
  readonly read: (roomId: RoomId, beforeSeq: number | undefined, limit: number) => Promise<Page>;
  readonly perUser?: number;
  readonly concurrency?: number;
  readonly maxWaiting?: number;
  readonly maxWaitMs?: number;
  readonly timers?: Timers;
}) {
  const perUser = deps.perUser ?? HISTORY_READS_PER_USER;
  const concurrency = deps.concurrency ?? HISTORY_READS_CONCURRENCY;
  const maxWaiting = deps.maxWaiting ?? HISTORY_READS_MAX_WAITING;
  const maxWaitMs = deps.maxWaitMs ?? HISTORY_READS_MAX_WAIT_MS;
  const timers = deps.timers ?? systemTimers;
  const inFlightOf = new Map<UserId, number>();
  /** Waiting reads in arrival order; `take` hands one the slot of a read that ended. */
  const waiting: { take: () => void }[] = [];
  let running = 0;

  const slot = async () => {
    if (running < concurrency) {
      running += 1;
      return;
    }
    if (waiting.length >= maxWaiting) {
      throw new AppError('UNAVAILABLE', 'too many history reads waiting on this node; retry later');
    }
    // The slot is handed over by `release` (running stays counted), or the wait gives up.
    await new Promise<void>((resolve, reject) => {
      const entry = {
        take: () => {
          cancel();
          resolve();
        },
      };
      const cancel = timers.schedule(maxWaitMs, () => {
        const index = waiting.indexOf(entry);
        if (index >= 0) waiting.splice(index, 1);
        reject(new AppError('UNAVAILABLE', 'history reads are slow on this node now; retry later'));
      });
      waiting.push(entry);
    });
  };
  const release = () => {
    const next = waiting.shift();
    if (next === undefined) running -= 1;
    else next.take();
  };

  return {
    read: async (
      userId: UserId,
      roomId: RoomId,
      beforeSeq: number | undefined,
      limit: number,
      /** Whether the asker still wants the answer (its socket is open): checked when its turn comes. */
      wanted: () => boolean = () => true,
    ) => {
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
          if (!wanted()) throw new AppError('UNAVAILABLE', 'the connection closed before its history read');
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
