/**
 * Room reads on this node: `room.history` pages and the backlog pages of joins with `sinceSeq`, read
 * from the database here, outside the room actor's turn. Inside it, a member flooding history
 * requests held every other member's sends, joins and typing behind the reads (20 sockets within
 * their rate limits timed the room's senders out); outside it, unbounded, 20 sockets re-joining a
 * room with `sinceSeq: 0` forty times a second each made the node read, encode and send hundreds of
 * stored messages per frame and stalled it for everyone for seconds.
 *
 * Bounded three ways, so reads cannot take the database pool from the group commits nor the event
 * loop from everyone else: at most PER_USER database reads of one user at a time on this node
 * (more: RATE_LIMITED, retry shortly); at most CONCURRENCY on the node, the rest waiting in arrival
 * order (more than MAX_WAITING waiting, or a wait longer than MAX_WAIT_MS, as in a database outage:
 * UNAVAILABLE); and a budget of stored messages each user may be sent per second on this node
 * (history and backlogs alike, from the database or from memory: MESSAGES_PER_SECOND, up to
 * MESSAGE_BURST at once — a reconnect after a long absence fills a few full backlogs at once; a
 * spent budget answers RATE_LIMITED with the time until it has room again). A read whose asker is
 * gone by its turn (the socket closed, the join replaced) is skipped.
 */
import type { UserId } from '../../protocol/src/ids.js';
import { AppError } from '../platform/errors.js';
import { RecencyMap } from '../platform/recency-map.js';
import { systemTimers, type Timers } from '../platform/timers.js';

/** Database reads of one user in flight on this node. */
export const ROOM_READS_PER_USER = 4;
/** Database reads in flight on this node (the pool's default is 10 connections). */
export const ROOM_READS_CONCURRENCY = 4;
/** Reads waiting for a slot on this node. */
export const ROOM_READS_MAX_WAITING = 1_000;
/** Longest wait for a slot, about a room request's ask timeout. */
export const ROOM_READS_MAX_WAIT_MS = 5_000;
/** Stored messages one user may be sent per second on this node (history and backlogs). */
export const ROOM_READS_MESSAGES_PER_SECOND = 2_000;
/** ...and at once: two full join backlogs (MAX_BACKLOG each). */
export const ROOM_READS_MESSAGE_BURST = 20_000;
/** Users whose budget this node remembers (least recently used forgotten: a full budget again). */
const BUDGETS_KEPT = 10_000;
/** What a RATE_LIMITED read over the in-flight bound is told to wait. */
const RETRY_AFTER_MS = 200;

export interface RoomReadsOptions {
  readonly perUser?: number;
  readonly concurrency?: number;
  readonly maxWaiting?: number;
  readonly maxWaitMs?: number;
  readonly messagesPerSecond?: number;
  readonly messageBurst?: number;
  readonly timers?: Timers;
  /** Milliseconds on a monotonic clock (default performance.now). */
  readonly now?: () => number;
}

export type RoomReads = ReturnType<typeof createRoomReads>;

export function createRoomReads(options: RoomReadsOptions = {}) {
  const perUser = options.perUser ?? ROOM_READS_PER_USER;
  const concurrency = options.concurrency ?? ROOM_READS_CONCURRENCY;
  const maxWaiting = options.maxWaiting ?? ROOM_READS_MAX_WAITING;
  const maxWaitMs = options.maxWaitMs ?? ROOM_READS_MAX_WAIT_MS;
  const perSecond = options.messagesPerSecond ?? ROOM_READS_MESSAGES_PER_SECOND;
  const burst = options.messageBurst ?? ROOM_READS_MESSAGE_BURST;
  const timers = options.timers ?? systemTimers;
  const now = options.now ?? (() => performance.now());
  const inFlightOf = new Map<UserId, number>();
  /** Message budgets below full (a user absent here has a full one). */
  const budgets = new RecencyMap<UserId, { tokens: number; at: number }>(BUDGETS_KEPT);
  /** Waiting reads in arrival order; `take` hands one the slot of a read that ended. */
  const waiting: { take: () => void }[] = [];
  let running = 0;

  const slot = async () => {
    if (running < concurrency) {
      running += 1;
      return;
    }
    if (waiting.length >= maxWaiting) {
      throw new AppError('UNAVAILABLE', 'too many room reads waiting on this node; retry later');
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
        reject(new AppError('UNAVAILABLE', 'room reads are slow on this node now; retry later'));
      });
      waiting.push(entry);
    });
  };
  const release = () => {
    const next = waiting.shift();
    if (next === undefined) running -= 1;
    else next.take();
  };

  /** The user's budget now (refilled for the time since it was last used). */
  const budgetOf = (userId: UserId) => {
    const budget = budgets.get(userId);
    if (budget === undefined) return burst;
    return Math.min(burst, budget.tokens + ((now() - budget.at) * perSecond) / 1000);
  };
  /** Refuses a user whose budget is spent: the time until it holds one message again. */
  const assertBudget = (userId: UserId) => {
    const tokens = budgetOf(userId);
    if (tokens >= 1) return;
    throw new AppError('RATE_LIMITED', `at most ${perSecond} stored messages per second; retry shortly`, {
      details: { retryAfterMs: Math.max(1, Math.ceil(((1 - tokens) * 1000) / perSecond)) },
    });
  };
  /** Takes messages sent from the user's budget (it may go below zero: the next request waits longer). */
  const spend = (userId: UserId, messages: number) => {
    if (messages <= 0) return;
    budgets.set(userId, { tokens: budgetOf(userId) - messages, at: now() });
  };

  return {
    /**
     * Runs one database read for `userId` within the node's bounds; `count` says how many stored
     * messages its result sends (taken from the user's budget). `wanted`: whether the asker still
     * wants the answer (its socket is open), checked when its turn comes.
     */
    read: async <T>(
      userId: UserId,
      work: () => Promise<T>,
      count: (result: T) => number,
      wanted: () => boolean = () => true,
    ): Promise<T> => {
      assertBudget(userId);
      const mine = inFlightOf.get(userId) ?? 0;
      if (mine >= perUser) {
        throw new AppError('RATE_LIMITED', `at most ${perUser} room reads at a time`, {
          details: { retryAfterMs: RETRY_AFTER_MS },
        });
      }
      inFlightOf.set(userId, mine + 1);
      try {
        await slot();
        let result: T;
        try {
          if (!wanted()) throw new AppError('UNAVAILABLE', 'the connection closed before its room read');
          result = await work();
        } finally {
          release();
        }
        spend(userId, count(result));
        return result;
      } finally {
        const left = (inFlightOf.get(userId) ?? 1) - 1;
        if (left > 0) inFlightOf.set(userId, left);
        else inFlightOf.delete(userId);
      }
    },
    /** Messages sent from memory (a join's recent run): refused when the budget is spent, else taken. */
    spendMessages: (userId: UserId, messages: number) => {
      assertBudget(userId);
      spend(userId, messages);
    },
    /** Reads running and waiting on this node (for tests and metrics). */
    load: () => ({ running, waiting: waiting.length, users: inFlightOf.size }),
  };
}
