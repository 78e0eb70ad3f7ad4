/**
 * Joining and leaving rooms on this node: one bus subscription per room with local joiners, and
 * the catch-up of a join (`room.join {sinceSeq}`), read from the store page by page here, outside
 * the room actor's turn, so a long backlog never holds the room's senders.
 *
 * Order of a join, which keeps "every message once, in seq order, no gap between backlog and live":
 * 0. the join is pending in the hub (`beginJoin`, by the handler before it checks membership);
 * 1. the room actor checks membership and answers its last seq (one short turn);
 * 2. the connection is registered in the hub at `sinceSeq`, holding live messages — unless a leave
 *    or a removal of the user came first (see below);
 * 3. the node's bus subscription to the room is made (or found) and awaited: from then on every
 *    message committed later reaches the hub live (a Redis that does not answer fails the join
 *    after the subscriber client's command timeout); a join that waited for a SUBSCRIBE not yet
 *    active asks the database whether the user is still a member (a removal announced before it
 *    reached nobody here, and the actor may have answered from membership it had not reloaded);
 * 4. the backlog after `sinceSeq` is read in pages of BACKLOG_PAGE until a short page, so whatever
 *    was committed before step 3 comes from the database, even past the actor's answer;
 * 5. `finishCatchUp` sends the held live messages after the backlog, dropping seqs already sent.
 * Steps 4 and 5 write in bursts of at most `burstBytes` of encoded frames, each once the socket's
 * buffer is down to `lowWaterBytes` (send-budget.ts): 200 rows of the largest legal messages are
 * megabytes, over the socket's bound, and written at once they closed even a fast reader 1013. A
 * socket whose buffer does not go down at all for DRAIN_STALL_POLLS polls is a slow consumer,
 * closed 1013 as one.
 * A join of the same connection again, a leave or a close ends a catch-up in progress.
 *
 * After the catch-up a connection relies on the bus; a push lost on the way shows as a jump at the
 * next message (clients fill it from history), and the tail of a room that goes quiet after a lost
 * push is found by `sweepTails` (TAIL_SWEEP_MS) and pushed from the database through the hub. A
 * removal announced while this node's bus subscriber was away is found when it is back
 * (`recheckJoiners`, on the bus's `onResubscribed`): the store decides who still gets each room here
 * (a check the database fails is tried again, RECHECK_ATTEMPTS times with a growing delay).
 *
 * A leave, or a `room.member removed` of the user, that arrives before step 2 finds nothing to take
 * out: it cancels the pending join instead, and the join does not register. A leave wins outright:
 * the join is answered `ok` as if it had finished first, and the connection is not in the room. A
 * removal is checked against the store first (the actor may have answered from the membership it
 * had before, its reload queued behind this join; or the user may be a member again): still a
 * member, the join goes on; not one, it fails FORBIDDEN. One that arrives after step 2, while the
 * backlog is read, takes the connection out of the room as usual, and the join then fails FORBIDDEN
 * too (a leave or a later join of the connection there: `ok`, that one stands).
 *
 * The rejoin after a short drop (the SDK's `sinceSeq`) skips step 4's query when it can: each bus
 * subscription keeps the last RECENT_PER_ROOM messages it delivered (at most RECENT_BYTES_PER_ROOM of
 * them), as long as their seqs run
 * without a hole (a hole — a bus message lost or reordered — restarts the run at the newer one).
 * Such a run has no hole from its first seq to its last: it began after the SUBSCRIBE was active and
 * the owner publishes in seq order. It may end short of the room, though: a message published while
 * this node's subscriber reconnected, or dropped by the owner's fan-out queue, reaches the hub only
 * if a later one does (and then restarts the run). So a join whose `sinceSeq + 1` lies inside the
 * run takes the run from memory, and when the run ends below the last seq the actor just answered,
 * reads the rest (after the run's last seq) from the database like step 4; a `sinceSeq` older than
 * the run goes to the database altogether. Messages are immutable, so a copy in memory never goes
 * stale.
 */

import { type Codec, createCodec } from '../../protocol/src/codec.js';
import { CloseCode } from '../../protocol/src/codes.js';
import type { RoomMessage } from '../../protocol/src/frames.js';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import { Encoding } from '../../protocol/src/version.js';
import type { RoomCommand } from '../actors/room/room-actor.js';
import type { RoomStore } from '../actors/room/room-store.js';
import type { ActorRef } from '../actors/runtime/index.js';
import { estimatedMessageBytes } from '../domain/rooms/message-size.js';
import { roomTopic, toRoomMessage } from '../domain/rooms/service.js';
import type { Bus } from '../platform/bus/bus.js';
import { AppError, isAppError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { type CancelTimer, systemTimers, type Timers } from '../platform/timers.js';
import type { Connection } from './connection.js';
import type { Hub, PendingJoin } from './hub.js';
import type { RoomReads } from './room-reads.js';
import { fitMessages, SEND_BURST_BYTES, SEND_LOW_WATER_BYTES } from './send-budget.js';

/** Rows per backlog read. */
export const BACKLOG_PAGE = 200;
/** Most messages one join replays (PROTOCOL.md, "Room limits"); further behind sees a jump. */
export const MAX_BACKLOG = 10_000;
/**
 * Recent messages kept per subscribed room for rejoins (a few seconds of a busy room: a 3 s drop
 * at 20 messages/s); only rooms with local joiners have one.
 */
export const RECENT_PER_ROOM = 64;
/**
 * ...and at most this many bytes of them (estimated heap, domain/rooms/message-size.ts): 64 typical
 * messages fit, a few large ones do. By count alone a run of 64 messages with the largest `meta`
 * pinned ~6 MB per room with local joiners, and one user joined to their 1 000 rooms could fill a
 * node's heap by sending 64 of them to each (review 24). A shorter run only sends more rejoins to
 * the database.
 */
export const RECENT_BYTES_PER_ROOM = 128 * 1024;
/**
 * How often the rooms with local joiners are compared with their last stored seq. A push lost on
 * the way (Redis down or restarting, this node's subscriber reconnecting, the owner's fan-out queue
 * full, the owner gone between commit and publish) is normally noticed by receivers at the next
 * message (the gap rule); the last messages of a room that then goes quiet would be missed until
 * someone writes again. A sweep finds such a tail and pushes it from the database.
 */
export const TAIL_SWEEP_MS = 5_000;
/** Rooms whose missing tail one sweep reads at most (one page each; the rest next time). */
const TAIL_SWEEP_READS = 100;
/**
 * Attempts of the members check after the bus came back (`recheckJoiners`): the database may be
 * down at that moment too (one outage taking Redis and PostgreSQL, or a failover of both). Tried
 * again after RECHECK_RETRY_MS, doubling up to RECHECK_RETRY_MAX_MS: about four minutes in all.
 */
export const RECHECK_ATTEMPTS = 12;
export const RECHECK_RETRY_MS = 1_000;
const RECHECK_RETRY_MAX_MS = 30_000;
/** How often a join waiting to write its next backlog burst looks at the socket's buffer. */
export const DRAIN_POLL_MS = 20;
/** Polls in a row without the buffer going down after which the reader is a slow consumer (10 s). */
export const DRAIN_STALL_POLLS = 500;

/** A join waiting for its connection's socket to drain (see `drained`). */
interface DrainWaiter {
  readonly wanted: () => boolean;
  readonly resolve: (drained: boolean) => void;
}

/** The waiting joins of one connection and their shared poll: the buffer last seen, polls without progress. */
interface DrainWatch {
  readonly waiters: DrainWaiter[];
  buffered: number;
  still: number;
  cancel: CancelTimer;
}

/**
 * The newest messages a room's bus subscription delivered, with consecutive seqs: at most
 * `capacity` of them and at most `maxBytes` (estimated heap), the oldest dropped first (a single
 * message over `maxBytes` leaves the run empty until the next one).
 */
export class RecentMessages {
  private readonly ring: (RoomMessage | undefined)[];
  /** Estimated bytes of each held message, by the same slot. */
  private readonly sizes: number[];
  /** Seq of the oldest message held; `first > last` while empty. */
  private first = 1;
  /** Seq of the newest message ever added (a run never restarts below it). */
  private last = 0;
  /** Estimated bytes of the messages held (first..last). */
  private bytes = 0;

  constructor(
    private readonly capacity: number,
    private readonly maxBytes: number = RECENT_BYTES_PER_ROOM,
  ) {
    this.ring = new Array(capacity);
    this.sizes = new Array(capacity).fill(0);
  }

  add(message: RoomMessage): void {
    const seq = message.seq;
    // A late or repeated seq: those after it were delivered already (emptied runs included).
    if (seq <= this.last) return;
    // The first, or a hole (lost or reordered): the run starts again here.
    if (this.first > this.last || seq !== this.last + 1) {
      // The old run's messages go (they would stay pinned in their slots otherwise).
      while (this.first <= this.last) this.dropOldest();
      this.first = seq;
      this.bytes = 0;
    }
    // Full: the oldest goes first (the new message takes its slot).
    if (seq - this.first >= this.capacity) this.dropOldest();
    this.last = seq;
    const size = estimatedMessageBytes(message);
    this.ring[seq % this.capacity] = message;
    this.sizes[seq % this.capacity] = size;
    this.bytes += size;
    while (this.bytes > this.maxBytes && this.first <= this.last) this.dropOldest();
  }

  private dropOldest(): void {
    const slot = this.first % this.capacity;
    this.bytes -= this.sizes[slot] ?? 0;
    this.ring[slot] = undefined;
    this.sizes[slot] = 0;
    this.first += 1;
  }

  /** Every held message after `sinceSeq`, or undefined when the run does not reach back to `sinceSeq + 1`. */
  after(sinceSeq: number): RoomMessage[] | undefined {
    if (this.first > this.last || this.first > sinceSeq + 1) return undefined;
    const out: RoomMessage[] = [];
    for (let seq = Math.max(sinceSeq + 1, this.first); seq <= this.last; seq += 1) {
      const message = this.ring[seq % this.capacity];
      if (message === undefined || message.seq !== seq) return undefined;
      out.push(message);
    }
    return out;
  }
}

export function createRoomJoins(deps: {
  readonly hub: Hub;
  readonly bus: Bus;
  readonly store: RoomStore;
  /** The node's bounds on room reads and each user's message budget (room-reads.ts). */
  readonly reads: RoomReads;
  readonly log: Logger;
  readonly room: (roomId: RoomId) => ActorRef<RoomCommand>;
  readonly connectionsOf: (userId: UserId) => Iterable<Connection>;
  /** Whether the user is a member now, read from the database (not from any cache). */
  readonly isMember: (userId: UserId, roomId: RoomId) => Promise<boolean>;
  /** Encoded bytes of one backlog burst (default SEND_BURST_BYTES; see send-budget.ts). */
  readonly burstBytes?: number;
  /** The next burst waits until the socket buffers at most this (default SEND_LOW_WATER_BYTES). */
  readonly lowWaterBytes?: number;
  readonly timers?: Timers;
  /** Measures the tail sweep's pushes (default a codec of its own). */
  readonly codec?: Codec;
}) {
  const { hub, bus, store, log } = deps;
  const burstBytes = deps.burstBytes ?? SEND_BURST_BYTES;
  const lowWaterBytes = deps.lowWaterBytes ?? SEND_LOW_WATER_BYTES;
  const timers = deps.timers ?? systemTimers;
  const codec = deps.codec ?? createCodec();
  const subscriptions = new Map<RoomId, Promise<() => Promise<void>>>();
  /** What each current subscription delivered lately (an old subscription's callback keeps its own). */
  const recents = new Map<RoomId, RecentMessages>();
  /**
   * The highest seq each subscribed room is known to have reached here: pushed from the bus (or by a
   * sweep), or the last seq its first join learned (the subscription was new: nothing local missed
   * anything before it).
   */
  const heard = new Map<RoomId, number>();
  /** Rooms a sweep found behind the store, with what had been heard then (read at the next sweep). */
  const behind = new Map<RoomId, number>();
  const hear = (roomId: RoomId, seq: number) => {
    if (seq > (heard.get(roomId) ?? 0)) heard.set(roomId, seq);
  };
  /** Subscriptions whose SUBSCRIBE is active: every message and removal published since reaches them. */
  const activeSubscriptions = new WeakSet<Promise<() => Promise<void>>>();
  const logUnsubscribeFailure = (error: unknown) =>
    log.warn({ err: error }, 'leaving a room bus subscription failed');

  const ensureSubscription = (roomId: RoomId) => {
    let subscription = subscriptions.get(roomId);
    if (subscription === undefined) {
      const recent = new RecentMessages(RECENT_PER_ROOM);
      const made = bus.subscribe(roomTopic(roomId), ({ frame, userOnly }) => {
        if (frame.t === 'room.member') {
          const named = [...deps.connectionsOf(frame.d.userId)];
          // A change announced again (`userOnly`: a POST of a member, a DELETE of a non-member) is
          // told to the named user's own joined connections alone: the members heard of it the
          // first time, or it never happened (somebody never in the room, a member of long standing).
          if (userOnly === true) {
            const joined = new Set(hub.joinersOf(roomId));
            for (const connection of named) if (joined.has(connection)) connection.sendFrame(frame);
          } else {
            // Every joined connection hears of it, a removed user's own included (the last push of
            // the room they get): told nothing, their client would hold a room that went silent.
            hub.pushToRoom(roomId, frame);
          }
          if (frame.d.change === 'removed') {
            for (const connection of named) leave(roomId, connection, 'removed').catch(logUnsubscribeFailure);
          }
          return;
        }
        if (frame.t === 'room.message') {
          recent.add(frame.d);
          // Only while this is the room's subscription: a message reaching one being dropped must
          // not bring the room back into the sweeps.
          if (subscriptions.get(roomId) === made) hear(roomId, frame.d.seq);
        }
        hub.pushToRoom(roomId, frame);
      });
      // A failed SUBSCRIBE is forgotten, so the next join tries again instead of failing forever.
      made.catch(() => {
        if (subscriptions.get(roomId) === made) {
          subscriptions.delete(roomId);
          recents.delete(roomId);
          heard.delete(roomId);
          behind.delete(roomId);
        }
      });
      made.then(
        () => activeSubscriptions.add(made),
        () => undefined,
      );
      subscription = made;
      subscriptions.set(roomId, subscription);
      recents.set(roomId, recent);
    }
    return subscription;
  };

  const dropSubscriptionIfUnused = async (roomId: RoomId) => {
    if (hub.hasRoom(roomId)) return;
    const subscription = subscriptions.get(roomId);
    subscriptions.delete(roomId);
    recents.delete(roomId);
    heard.delete(roomId);
    behind.delete(roomId);
    // A SUBSCRIBE that failed left nothing to undo.
    const unsubscribe = await subscription?.catch(() => undefined);
    if (unsubscribe !== undefined) await unsubscribe();
  };

  /** `room.leave`, or the user's removal from the room: either also cancels a pending join. */
  const leave = async (roomId: RoomId, connection: Connection, why: 'left' | 'removed' = 'left') => {
    hub.leaveRoom(roomId, connection, why);
    await dropSubscriptionIfUnused(roomId);
  };

  const unavailable = (cause: unknown) =>
    new AppError('UNAVAILABLE', 'the room cannot be joined right now; try again', { cause });

  /**
   * A join cancelled by a removal of its user: the store (where the removal was committed before it
   * was announced) decides, under a new pending join, so a leave meanwhile still wins. Returns the
   * join to go on with (cancelled: answered like any cancelled join); throws FORBIDDEN when the user
   * is not a member, or was removed once more during the check (the client may simply join again).
   * A later join of the connection, begun after the removal, checks membership itself: this one
   * yields to it.
   */
  const confirmAfterRemoval = async (
    roomId: RoomId,
    connection: Connection,
    join: PendingJoin,
  ): Promise<PendingJoin> => {
    if (join.cancelled !== 'removed' || hub.hasPendingJoin(roomId, connection)) return join;
    const again = hub.beginJoin(roomId, connection);
    let member: boolean;
    try {
      member = await deps.isMember(connection.userId, roomId);
    } catch (error) {
      hub.endJoin(roomId, connection, again);
      log.warn({ err: error, roomId }, 'room membership re-check failed; join refused');
      throw unavailable(error);
    }
    if (member && again.cancelled === undefined) return again;
    hub.endJoin(roomId, connection, again);
    if (!member || again.cancelled === 'removed')
      throw new AppError('FORBIDDEN', 'not a member of this room');
    return again;
  };

  /** Undoes a join that could not finish, unless a later join of the connection replaced it. */
  const abandon = async (roomId: RoomId, connection: Connection, token: object) => {
    hub.dropJoin(roomId, connection, token);
    await dropSubscriptionIfUnused(roomId).catch(logUnsubscribeFailure);
  };

  const isOpen = (connection: Connection) =>
    connection.isOpen && hub.connectionById(connection.id) === connection;

  /**
   * The joins of each connection waiting for its socket to drain, with the one poll they share
   * (before review 29, each waiting join polled on a timer of its own: a user joining hundreds of
   * rooms while backed up made as many timers, most for joins with nothing left to send).
   */
  const drainWatches = new Map<Connection, DrainWatch>();

  /** Ends a connection's drain watch: its timer is cancelled, each waiter answered by `answer`. */
  const endDrainWatch = (connection: Connection, watch: DrainWatch, answer: (w: DrainWaiter) => boolean) => {
    watch.cancel();
    if (drainWatches.get(connection) === watch) drainWatches.delete(connection);
    for (const waiter of watch.waiters.splice(0)) waiter.resolve(answer(waiter));
  };

  /** One poll of a connection's buffer for all its waiting joins. */
  const pollDrain = (connection: Connection, watch: DrainWatch) => {
    const now = connection.bufferedAmount;
    watch.still = now < watch.buffered ? 0 : watch.still + 1;
    watch.buffered = now;
    // Drained (a closed connection buffers 0: its joins are not wanted any more and stop here).
    if (now <= lowWaterBytes) {
      endDrainWatch(connection, watch, (waiter) => waiter.wanted());
      return;
    }
    if (watch.still >= DRAIN_STALL_POLLS) {
      log.info({ connId: connection.id, userId: connection.userId, buffered: now }, 'slow consumer closed');
      connection.close(CloseCode.TRY_AGAIN_LATER, 'slow consumer');
      endDrainWatch(connection, watch, () => false);
      return;
    }
    // Joins no longer catching up (left, replaced) stop waiting now.
    const waiters = watch.waiters.splice(0);
    for (const waiter of waiters) {
      if (waiter.wanted()) watch.waiters.push(waiter);
      else waiter.resolve(false);
    }
    if (watch.waiters.length === 0) {
      drainWatches.delete(connection);
      return;
    }
    watch.cancel = timers.schedule(DRAIN_POLL_MS, () => pollDrain(connection, watch));
  };

  /**
   * Waits until the connection's socket buffers at most `lowWaterBytes`. False when `wanted` turns
   * false meanwhile, or when the buffer did not go down for DRAIN_STALL_POLLS polls: that reader
   * is a slow consumer and is closed 1013, as one whose buffer passed the bound would be. All the
   * waiting joins of a connection share one poll (`drainWatches`).
   */
  const drained = async (connection: Connection, wanted: () => boolean): Promise<boolean> => {
    const buffered = connection.bufferedAmount;
    if (buffered <= lowWaterBytes) return wanted();
    return new Promise<boolean>((resolve) => {
      const watch = drainWatches.get(connection);
      if (watch !== undefined) {
        watch.waiters.push({ wanted, resolve });
        return;
      }
      const fresh: DrainWatch = { waiters: [{ wanted, resolve }], buffered, still: 0, cancel: () => {} };
      drainWatches.set(connection, fresh);
      fresh.cancel = timers.schedule(DRAIN_POLL_MS, () => pollDrain(connection, fresh));
    });
  };

  /**
   * Once this node's bus subscriber is back from a drop (Redis restarted, a network blip): a
   * `room.member removed` published meanwhile never reached it, and nothing else takes the removed
   * user's sockets out of the room here (the tail sweep looks only at rooms that missed a message),
   * so they went on receiving every later message of a room they had left. The store decides who
   * still gets each room here (one query for them all); a removed joiner is told as the announcement
   * would have told it.
   */
  const recheckJoiners = async () => {
    const joins = [...subscriptions.keys()].flatMap((roomId) =>
      hub.joinersOf(roomId).map((connection) => ({ roomId, connection })),
    );
    const members = await Promise.all(
      joins.map(({ roomId, connection }) => deps.isMember(connection.userId, roomId)),
    );
    for (const [i, { roomId, connection }] of joins.entries()) {
      if (members[i] !== false || !hub.joinersOf(roomId).includes(connection)) continue;
      connection.sendFrame({ t: 'room.member', d: { roomId, userId: connection.userId, change: 'removed' } });
      await leave(roomId, connection, 'removed');
    }
  };
  /**
   * A check the database failed is tried again, a bounded number of times (before, it was given up
   * at once: a removed user's sockets went on receiving the room until they left it). A new drop
   * of the bus starts over; shutdown ends it.
   */
  let recheckRetry: (() => void) | undefined;
  /** Counts the bus's comebacks: only the latest one's check is tried again. */
  let comebacks = 0;
  let closing = false;
  const recheck = (attempt: number, comeback: number) => {
    recheckRetry = undefined;
    recheckJoiners().catch((error: unknown) => {
      const retry = attempt < RECHECK_ATTEMPTS && !closing && comeback === comebacks;
      log.warn({ err: error, attempt, retry }, 'room members check after the bus came back failed');
      if (!retry) return;
      const delay = Math.min(RECHECK_RETRY_MS * 2 ** (attempt - 1), RECHECK_RETRY_MAX_MS);
      recheckRetry = timers.schedule(delay, () => recheck(attempt + 1, comeback));
    });
  };
  const stopRechecks = bus.onResubscribed?.(() => {
    comebacks += 1;
    recheckRetry?.();
    recheck(1, comebacks);
  });

  return {
    leave,

    /**
     * `pending`: the join as begun by the caller before its own checks (`hub.beginJoin`); begun
     * here when absent.
     */
    join: async (
      connection: Connection,
      roomId: RoomId,
      sinceSeq: number | undefined,
      pending?: PendingJoin,
    ): Promise<{ lastSeq: number }> => {
      let join = pending ?? hub.beginJoin(roomId, connection);
      let lastSeq: number;
      try {
        ({ lastSeq } = await deps
          .room(roomId)
          .ask<{ lastSeq: number }>((reply) => ({ type: 'join', userId: connection.userId, reply })));
        join = await confirmAfterRemoval(roomId, connection, join);
      } catch (error) {
        hub.endJoin(roomId, connection, join);
        throw error;
      }
      // Closed meanwhile: a closed connection must not keep the room (or its subscription) here.
      if (!isOpen(connection)) {
        hub.endJoin(roomId, connection, join);
        return { lastSeq };
      }
      const since = Math.min(sinceSeq ?? lastSeq, lastSeq);
      // Undefined: a leave came first (it stands: ok, not joined, as if this join had finished
      // before it), or a later join of the connection does the work.
      const token = hub.joinRoom(roomId, connection, since, join);
      if (token === undefined) return { lastSeq };
      const subscription = ensureSubscription(roomId);
      if (!heard.has(roomId)) heard.set(roomId, lastSeq);
      // A removal announced before this node's SUBSCRIBE was active never reaches it, and the
      // actor may have answered from membership it had not reloaded yet: such a join asks the
      // database once more (one query per event-loop turn for all of them) once it is subscribed.
      const subscribedBefore = activeSubscriptions.has(subscription);
      let member = true;
      try {
        await subscription;
        if (!subscribedBefore) member = await deps.isMember(connection.userId, roomId);
      } catch (error) {
        log.warn({ err: error, roomId }, 'room bus subscription failed; join refused');
        await abandon(roomId, connection, token);
        throw unavailable(error);
      }
      if (!member) {
        await abandon(roomId, connection, token);
        throw new AppError('FORBIDDEN', 'not a member of this room');
      }
      let after = since;
      let delivered = 0;
      // A short drop: the backlog starts with what this node's subscription delivered lately.
      const recent = recents.get(roomId)?.after(since);
      // A connection the server is closing (a slow consumer, an expired token) stays in the hub
      // until its transport reports the close (up to 2 s on the HTTP port): its backlog stops now,
      // instead of reading and encoding up to MAX_BACKLOG messages nobody will be sent.
      const stillJoined = () => connection.isOpen && hub.isJoinedAs(roomId, connection, token);
      /**
       * The answer of a join taken out of the room while it caught up: `ok` when a leave or a later
       * join of the connection did it (that one stands), FORBIDDEN when its user was removed from
       * the room (PROTOCOL.md: a join still unanswered at a removal does not end up in the room,
       * and says so; answered `ok`, the client would hold a room that stays silent).
       */
      const outOfRoom = (): { lastSeq: number } => {
        if (hub.wasRemoved(token)) throw new AppError('FORBIDDEN', 'not a member of this room');
        return { lastSeq };
      };
      /**
       * Writes backlog messages in bursts of at most `burstBytes`, each once the socket drained to
       * the low-water mark. False when the join stopped catching up meanwhile (see `stillJoined`).
       */
      const deliver = async (messages: readonly RoomMessage[]): Promise<boolean> => {
        let from = 0;
        while (from < messages.length) {
          if (!(await drained(connection, stillJoined))) return false;
          from += hub.deliverBacklog(roomId, connection, messages.slice(from), burstBytes);
        }
        return true;
      };
      /** Writes the live messages held meanwhile (in bursts likewise), then goes live. */
      const finish = async (): Promise<{ lastSeq: number }> => {
        do {
          if (!(await drained(connection, stillJoined))) return outOfRoom();
        } while (!hub.deliverHeld(roomId, connection, burstBytes));
        // Nothing held any more, and nothing awaited since: the rest comes live.
        hub.finishCatchUp(roomId, connection);
        return { lastSeq };
      };
      /** A backlog refused (budget spent, reads bounded, database down): the join is undone. */
      const refuse = async (error: unknown): Promise<never> => {
        await abandon(roomId, connection, token);
        if (isAppError(error)) throw error;
        log.warn({ err: error, roomId }, 'room backlog read failed; join refused');
        throw unavailable(error);
      };
      if (recent !== undefined) {
        if (!stillJoined()) return outOfRoom();
        try {
          deps.reads.spendMessages(connection.userId, recent.length);
        } catch (error) {
          return refuse(error);
        }
        if (!(await deliver(recent))) return outOfRoom();
        after = recent.at(-1)?.seq ?? since;
        delivered = recent.length;
        // The run reaches the actor's last seq: anything newer comes live (held until now).
        if (after >= lastSeq) return finish();
        // The run ends short of it (a publish lost on the way here): the rest from the database.
      }
      while (delivered < MAX_BACKLOG) {
        if (!stillJoined()) return outOfRoom();
        const limit = Math.min(BACKLOG_PAGE, MAX_BACKLOG - delivered);
        let page: Awaited<ReturnType<RoomStore['messagesAfter']>>;
        try {
          page = await deps.reads.read(
            connection.userId,
            () => store.messagesAfter(roomId, after, limit),
            (rows) => rows.length,
            stillJoined,
          );
        } catch (error) {
          // Replaced by a later join (or a leave) while it waited: that one stands.
          if (!stillJoined()) return outOfRoom();
          return refuse(error);
        }
        if (!(await deliver(page.map(toRoomMessage)))) return outOfRoom();
        delivered += page.length;
        const last = page.at(-1);
        if (page.length < limit || last === undefined) break;
        after = last.seq;
      }
      if (!stillJoined()) return outOfRoom();
      return finish();
    },

    /**
     * One sweep (every TAIL_SWEEP_MS, gateway): one query for the last seq of every subscribed room;
     * a room still behind it at the next sweep with nothing heard meanwhile lost its push (a late
     * one would have arrived) and gets what it misses pushed from the database, as if from the bus —
     * the hub sends each connection only seqs above its own, so nobody gets one twice. Never throws.
     */
    sweepTails: async (): Promise<number> => {
      for (const roomId of heard.keys()) {
        if (subscriptions.has(roomId)) continue;
        heard.delete(roomId);
        behind.delete(roomId);
      }
      const roomIds = [...heard.keys()];
      if (roomIds.length === 0) return 0;
      let pushed = 0;
      try {
        const stored = await store.lastSeqs(roomIds);
        let reads = 0;
        for (const roomId of roomIds) {
          const seen = heard.get(roomId);
          const last = stored.get(roomId);
          if (seen === undefined || last === undefined || last <= seen) {
            behind.delete(roomId);
            continue;
          }
          if (behind.get(roomId) !== seen) {
            behind.set(roomId, seen);
            continue;
          }
          if (reads >= TAIL_SWEEP_READS) continue;
          reads += 1;
          behind.delete(roomId);
          // The outage that lost the push may have lost a removal's announcement too: the store
          // decides who still gets the room (one query for them all).
          const joiners = hub.joinersOf(roomId);
          const members = await Promise.all(
            joiners.map((connection) => deps.isMember(connection.userId, roomId)),
          );
          for (const [i, connection] of joiners.entries()) {
            if (members[i] !== false) continue;
            // Told as the announcement would have told it (the last push of the room it gets).
            connection.sendFrame({
              t: 'room.member',
              d: { roomId, userId: connection.userId, change: 'removed' },
            });
            await leave(roomId, connection, 'removed');
          }
          const read = (await store.messagesAfter(roomId, seen, BACKLOG_PAGE)).map(toRoomMessage);
          // One burst of bytes to each joiner at most (send-budget.ts): the rest at the next sweep.
          const page = read.slice(
            0,
            Math.min(
              fitMessages(codec, Encoding.JSON, read, burstBytes).length,
              fitMessages(codec, Encoding.MSGPACK, read, burstBytes).length,
            ),
          );
          // Left meanwhile: nothing to push to.
          if (!subscriptions.has(roomId)) continue;
          for (const message of page) {
            recents.get(roomId)?.add(message);
            hear(roomId, message.seq);
            hub.pushToRoom(roomId, { t: 'room.message', d: message });
          }
          pushed += page.length;
          const lastPushed = page.at(-1)?.seq;
          if (page.length < read.length && lastPushed !== undefined) behind.set(roomId, lastPushed);
          log.info(
            { roomId, from: seen + 1, messages: page.length },
            'pushed a room tail whose push was lost',
          );
        }
      } catch (error) {
        log.warn({ err: error }, 'room tail sweep failed; the next one tries again');
      }
      return pushed;
    },

    /** After the hub forgot a closed connection: drop the subscriptions nobody here needs now. */
    dropUnused: (roomIds: readonly RoomId[]) => {
      for (const roomId of roomIds) dropSubscriptionIfUnused(roomId).catch(logUnsubscribeFailure);
    },

    /** A connection closed: its joins waiting for its socket to drain stop now (and their poll). */
    closed: (connection: Connection) => {
      const watch = drainWatches.get(connection);
      if (watch !== undefined) endDrainWatch(connection, watch, () => false);
    },

    /** Shutdown: leaves every room subscription of this node. */
    closeAll: async () => {
      closing = true;
      stopRechecks?.();
      recheckRetry?.();
      for (const subscription of subscriptions.values()) {
        await (await subscription.catch(() => async () => undefined))();
      }
      subscriptions.clear();
    },
  };
}
