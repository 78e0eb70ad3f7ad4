/**
 * RoomActor: one per room, the single writer of its messages. It checks membership, numbers
 * messages with a gap-free seq, makes them durable with group commit (sends arriving while a write
 * is in flight go into the next single multi-row INSERT) and acknowledges each send only after its
 * batch committed. A batch is first written as new in one statement (one round trip); only when
 * that meets a unique violation is it written again in a transaction that looks up stored sends
 * first, so resends from an earlier life of the actor keep their seq and leave no gap. Resends of a
 * clientMsgId get their first seq and store nothing. The (room_id, seq) primary key fences a stale
 * writer: a conflicting batch reloads the last seq and is numbered again.
 *
 * Every write also checks, in the same statement, that each sender is still a member: a removal
 * whose announcement this actor missed stores nothing of the batch; the actor reads the members
 * again, refuses the removed senders FORBIDDEN and writes the rest again (review 21c).
 *
 * A batch the database refuses for any other reason than a duplicate (a value Postgres cannot
 * store, a constraint) is split in halves and written again until the refused send stands alone:
 * only its sender gets VALIDATION_FAILED, everyone else's message is stored and acknowledged. A
 * failure of the database itself (connection, timeout, a read-only database, a lock timeout) fails
 * the batch with UNAVAILABLE instead (room.state.ts classifyWriteFailure).
 *
 * Sends wait behind the write in flight in a bounded queue: beyond it a send is refused
 * RATE_LIMITED, as a full mailbox refuses it, and a send whose asker stopped waiting is not written.
 * A read the database fails (history, a read mark, a member reload) fails that request alone and
 * never restarts the activation; a stop (restart after a bug, passivation, shutdown) answers the
 * sends still queued UNAVAILABLE, so their senders resend instead of waiting for a timeout.
 *
 * What a committed batch causes does not depend on this activation: the write's own continuation
 * enqueues the new messages' fan-out and answers the senders, then tells the actor (whichever
 * activation is alive by then) to move its state on. So a restart between commit and `flushed`
 * neither loses a push nor an ack. Fan-out goes through a bounded queue onto the bus, never awaited
 * in a turn: acks depend on the PostgreSQL commit only, and a stalled Redis cannot hold the room.
 * Pushes go out in seq order only. Rows a checked rewrite finds stored (a commit whose outcome was
 * lost, then resent or rewritten) are pushed too when above every seq pushed so far; below it they
 * are old resends, or a gap receivers saw already and fill from history.
 *
 * Joins do not read the backlog here: the actor answers membership and its last seq, and the
 * gateway pages the backlog straight from the store, outside this actor's turn.
 *
 * One writer across nodes (issue 14): an activation first takes the room over in the store (a new
 * fencing epoch) and writes every batch with that epoch, so once another node has taken the room,
 * this one cannot commit anything. A fenced write, or placement telling it the room is no longer
 * this node's (`isOwner`, the `handoff` command), makes the activation step down: what it has not
 * written fails with the retryable ROOM_MOVED error, which the room router resends to the new owner.
 */

import { Counter, Histogram, type Registry } from 'prom-client';
import type { RoomMessage, ServerFrame } from '../../../protocol/src/frames.js';
import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import { estimatedMessageBytes } from '../../domain/rooms/message-size.js';
import { toRoomMessage } from '../../domain/rooms/service.js';
import { type RoomFramePayload, roomTopic, type Topic } from '../../platform/bus/topics.js';
import { AppError, isAppError } from '../../platform/errors.js';
import type { ActorKind, Reply } from '../runtime/types.js';
import {
  applyRead,
  applyTyping,
  classifyWriteFailure,
  isMember,
  type PendingSend,
  planBatch,
  type RoomState,
  sendKey,
  splitBatch,
} from './room.state.js';
import type { RoomStore } from './room-store.js';

export type RoomCommand =
  | {
      /** Membership check and the room's last seq; the gateway then delivers the backlog itself. */
      readonly type: 'join';
      readonly userId: UserId;
      readonly reply: Reply<{ lastSeq: number }>;
    }
  | {
      readonly type: 'send';
      readonly send: PendingSend;
      readonly reply: Reply<{ seq: number; sentAt: string }>;
    }
  | { readonly type: 'typing'; readonly userId: UserId; readonly reply: Reply<undefined> }
  | {
      readonly type: 'read';
      readonly userId: UserId;
      readonly seq: number;
      readonly reply: Reply<{ seq: number }>;
    }
  | {
      readonly type: 'reload-members';
      /** Announce members found gone (a retried refresh); the bus's reloads do not (loadMembers). */
      readonly announce?: boolean;
    }
  | {
      /** Placement moved the room to another node: step down (unwritten sends fail ROOM_MOVED). */
      readonly type: 'handoff';
    }
  | {
      /** A write committed (its senders are answered and its fan-out enqueued already). */
      readonly type: 'flushed';
      /** The activation that started the write: only its own write clears its `flushing`. */
      readonly writer: object;
      readonly stored: readonly RoomMessage[];
      readonly lastSeq: number;
    }
  | {
      readonly type: 'flush-failed';
      readonly writer: object;
      readonly fragment: Fragment;
      readonly error: unknown;
    };

interface Waiting {
  readonly send: PendingSend;
  readonly reply: Reply<{ seq: number; sentAt: string }>;
  /** When the send reached the actor (deps.now), for gigwire_room_send_seconds. */
  readonly receivedAt: number;
}

/** Sends written together, and how: `checked` looks up stored sends first (after a duplicate). */
interface Fragment {
  readonly batch: readonly Waiting[];
  readonly attempts: number;
  readonly checked: boolean;
}

export const ROOM_ACTOR = 'room';

/** Why a room request is refused by a node that is not (or no longer) the room's owner. */
export const ROOM_MOVED = 'ROOM_MOVED';

/** Retryable: the room is (now) owned by another node; resend there (the same clientMsgId). */
export const roomMovedError = () =>
  new AppError('UNAVAILABLE', 'the room moved to another node; resend', {
    details: { reason: ROOM_MOVED, retryable: true },
  });

export const isRoomMoved = (error: unknown): boolean =>
  isAppError(error) && error.code === 'UNAVAILABLE' && error.details?.reason === ROOM_MOVED;
/** Largest batch per INSERT; more waits for the next one. */
const MAX_BATCH = 500;
/**
 * Default bound of the sends waiting behind a room's write in flight (the mailbox's own capacity):
 * each send leaves the mailbox at once, so without it a stalled database would grow this queue
 * without limit. Beyond it a send is refused RATE_LIMITED, as by a full mailbox.
 */
const MAX_QUEUED_SENDS = 8_192;
/**
 * Estimated bytes (domain/rooms/message-size.ts) of the sends accepted by all the rooms of a node
 * and not answered yet; beyond it a send is refused RATE_LIMITED, as by a full room queue. By count
 * alone (8 192 per room) one send is not one size: a `meta` of 4 096 characters can be ~90 KB of
 * heap once parsed, so a flood of such sends outrunning the database queued ~750 MB per room, and a
 * few rooms took a node past its heap (review 24). About 2 500 of the largest sends, or hundreds of
 * thousands of typical ones.
 */
export const MAX_QUEUED_SEND_BYTES = 256 * 1024 * 1024;
/** Least time between two scans of a full send queue for sends whose asker gave up. */
const FULL_QUEUE_SCAN_MS = 100;
/** Delay before a member reload the database failed is tried again. */
const RELOAD_RETRY_MS = 1_000;
/**
 * Members are read again before a member's request once they are this old: a membership change
 * whose bus announcement was lost (Redis failing the publish after the commit, a subscriber
 * reconnecting) holds the actor's view for at most this long, not for as long as traffic keeps the
 * room active.
 */
export const MEMBERS_REFRESH_MS = 30_000;
/**
 * A request of a user the actor does not count as a member reads the members again first, when
 * they were last read at least this long ago: an addition whose bus announcement was lost (this
 * node's subscriber away at that moment) no longer refuses the new member's join and sends
 * FORBIDDEN for up to MEMBERS_REFRESH_MS (review 21). The gateway
 * lets only members by the database (or a positive answer cached for as long as MEMBERS_REFRESH_MS)
 * reach the actor, and these reads are one a second at most per room.
 */
export const MEMBERS_MISS_RELOAD_MS = 1_000;
const TYPING_THROTTLE_MS = 2_000;
/**
 * Lookups of the stored highest seq by reads past the actor's lastSeq, per room: a burst of this
 * many (a few system messages in a row), then one a second.
 */
const STORED_SEQ_LOOKUP_BURST = 5;
const STORED_SEQ_LOOKUP_EVERY_MS = 1_000;
/**
 * Acknowledged sends each room remembers to answer a resend without the database, at most this
 * many and this old: a resend comes within its sender's retry window (the SDK gives up after about
 * 2 minutes); an older or rarer one is looked up in the database as before (a unique violation,
 * then the checked rewrite), with the same answer. 10 000 of them, kept for as long as the room
 * stayed active, took ~7 MB of heap per room (review 24): a user cycling through their 1 000
 * rooms, or a node hosting a few hundred busy rooms, pinned gigabytes.
 */
export const RECENT_SENDS = 1_000;
export const RECENT_SENDS_TTL_MS = 5 * 60_000;
const MAX_FLUSH_ATTEMPTS = 3;
/** Retry delay when the actor's own mailbox is full as a write's outcome comes back. */
const SELF_TELL_RETRY_MS = 20;

export function roomActorKind(deps: {
  readonly store: RoomStore;
  /** Enqueues a bus publish; never throws, never waits (a bounded fan-out queue). */
  readonly fanOut: (topic: Topic<RoomFramePayload>, payload: RoomFramePayload) => void;
  readonly toRoomId: (id: string) => RoomId;
  /** Milliseconds on a monotonic clock (the gateway passes performance.now): only differences are used. */
  readonly now: () => number;
  readonly metrics: Registry;
  /** Most sends waiting behind a room's write in flight (default MAX_QUEUED_SENDS); tests pass less. */
  readonly maxQueuedSends?: number;
  /** Most estimated bytes of unanswered sends in all rooms of the node (default MAX_QUEUED_SEND_BYTES). */
  readonly maxQueuedSendBytes?: number;
  /** Whether placement gives the room to this node now; false makes the actor refuse and step down. */
  readonly isOwner?: (roomId: RoomId) => boolean;
  /** Told when a write of this node was fenced off (placement should look again at once). */
  readonly onFenced?: (roomId: RoomId) => void;
  /**
   * Told after each committed write, with the members' read marks (unread-message reminders of
   * offline members). Must return at once and never throw; runs in the actor's turn.
   */
  readonly onStored?: (
    roomId: RoomId,
    messages: readonly RoomMessage[],
    members: RoomState['members'],
  ) => void;
}): ActorKind<RoomCommand> {
  const { store } = deps;
  const batchSize = new Histogram({
    name: 'gigwire_room_write_batch_size',
    help: 'Messages per room write (group commit: one statement stores a whole batch).',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 500],
    registers: [deps.metrics],
  });
  const sendSeconds = new Histogram({
    name: 'gigwire_room_send_seconds',
    help: "From a new message reaching its room actor to its ack, seconds: the room's write in flight it waited for, the node's group commit and its own statement.",
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
    registers: [deps.metrics],
  });
  const counter = (name: string, help: string) => new Counter({ name, help, registers: [deps.metrics] });
  const slowWrites = counter(
    'gigwire_room_write_rechecks_total',
    'Room writes redone with a lookup of stored sends after a unique violation (resends, stale writers).',
  );
  const splits = counter(
    'gigwire_room_write_splits_total',
    'Room batches the database refused, split in halves to isolate the refused send.',
  );
  const refused = counter(
    'gigwire_room_sends_refused_total',
    'Sends the database refused on their own (answered VALIDATION_FAILED).',
  );
  const acquired = counter(
    'gigwire_room_ownership_acquired_total',
    'Rooms this node took over (each a new fencing epoch): one per room and owner change.',
  );
  const fenced = counter(
    'gigwire_room_writes_fenced_total',
    'Room writes refused because another node had taken the room over (nothing stored).',
  );
  const moved = counter(
    'gigwire_room_requests_moved_total',
    'Room requests refused ROOM_MOVED here because placement gives the room to another node.',
  );
  const busy = counter(
    'gigwire_room_sends_busy_total',
    "Sends refused RATE_LIMITED because too many waited behind their room's write in flight (or too many bytes of them across the node's rooms).",
  );
  const readsFailed = counter(
    'gigwire_room_reads_failed_total',
    'Room reads (history, read marks, member reloads) the database failed; only that request failed.',
  );
  const isOwner = deps.isOwner ?? (() => true);
  const maxQueuedSends = deps.maxQueuedSends ?? MAX_QUEUED_SENDS;
  const maxQueuedSendBytes = deps.maxQueuedSendBytes ?? MAX_QUEUED_SEND_BYTES;
  /**
   * The sends every room of this node accepted and has not answered, with their estimated bytes.
   * Each leaves when it is answered; one whose asker timed out (then dropped from its queue, or
   * lost with an activation that failed) leaves at the next prune, when the bound is reached.
   */
  const unanswered = new Set<{ readonly bytes: number; readonly reply: Reply<never> }>();
  let unansweredBytes = 0;
  let lastPruneAt = Number.NEGATIVE_INFINITY;
  const pruneUnanswered = () => {
    for (const entry of unanswered) {
      if (!entry.reply.settled) continue;
      unanswered.delete(entry);
      unansweredBytes -= entry.bytes;
    }
  };
  /** The send's reply, counted in `unanswered` until it is answered. */
  const counted = <R>(reply: Reply<R>, bytes: number): Reply<R> => {
    const entry = { bytes, reply: reply as Reply<never> };
    unanswered.add(entry);
    unansweredBytes += bytes;
    const release = () => {
      if (unanswered.delete(entry)) unansweredBytes -= bytes;
    };
    return {
      ok: (value) => {
        release();
        reply.ok(value);
      },
      fail: (error) => {
        release();
        reply.fail(error);
      },
      get settled() {
        return reply.settled;
      },
    };
  };
  return {
    kind: ROOM_ACTOR,
    mailboxCapacity: 8_192,
    idleMs: 120_000,
    create: (id, context) => {
      const roomId = deps.toRoomId(id);
      /** This activation, as the `writer` of its writes. */
      const me = {};
      let state: RoomState = { roomId, members: new Map(), lastSeq: 0, typingPushedAt: new Map() };
      /** The fencing epoch this activation writes with (0: the room does not exist). */
      let epoch = 0;
      /** Stepped down (fenced or handed off): everything still arriving is refused ROOM_MOVED. */
      let deposed = false;
      let pending: Waiting[] = [];
      /** Fragments to write before `pending`: retries and the halves of a refused batch, in order. */
      const retries: Fragment[] = [];
      let flushing = false;
      /**
       * Highest seq this activation knows was fanned out (at the start: every stored one, as far as
       * it can tell). Pushes go out in seq order only: a gateway drops a seq at or below one it has
       * seen, and its recent-message runs (room-joins.ts) rely on the owner publishing in order.
       */
      let publishedSeq = 0;
      /** When a full queue was last scanned for abandoned sends (deps.now). */
      let lastFullScanAt = Number.NEGATIVE_INFINITY;
      /** A failed member reload is tried again (once scheduled, until one succeeds). */
      let reloadScheduled = false;
      /** Whether a failed reload waiting to be tried again was to announce removals (loadMembers). */
      let announceOnRetry = false;
      /** Recently acknowledged sends: a resend is answered without touching the database. */
      const recent = new Map<string, { seq: number; sentAt: string; at: number }>();
      /** Forgets the oldest remembered sends (a Map keeps insertion order) past the bounds. */
      const forgetOldSends = (now: number) => {
        for (const [key, entry] of recent) {
          if (recent.size < RECENT_SENDS && now - entry.at < RECENT_SENDS_TTL_MS) return;
          recent.delete(key);
        }
      };

      /** When the members were last read (deps.now). */
      let membersReadAt = Number.NEGATIVE_INFINITY;
      /** Lookups of the stored highest seq left to reads past lastSeq, and when last refilled. */
      let storedSeqLookups = STORED_SEQ_LOOKUP_BURST;
      let storedSeqRefilledAt = deps.now();
      const takeStoredSeqLookup = () => {
        const now = deps.now();
        const refill = Math.floor((now - storedSeqRefilledAt) / STORED_SEQ_LOOKUP_EVERY_MS);
        if (refill > 0) {
          storedSeqLookups = Math.min(STORED_SEQ_LOOKUP_BURST, storedSeqLookups + refill);
          storedSeqRefilledAt += refill * STORED_SEQ_LOOKUP_EVERY_MS;
        }
        if (storedSeqLookups === 0) return false;
        storedSeqLookups -= 1;
        return true;
      };
      /**
       * Reads the members. `announce`: a member the actor knew who is gone now was removed without
       * this actor hearing of it (the DELETE's bus announcement lost: a publish that failed after
       * the commit, its retry never made), so nothing took their sockets out of the room, and they
       * went on receiving its live messages for as long as they stayed connected although their own
       * sends were refused (review 25). Announced here, as the DELETE would have: every node takes
       * their joined connections out. Not after a reload the membership bus message asked for: the
       * DELETE that sent it announces the removal itself (no second push of every removal).
       */
      const loadMembers = async (announce = false) => {
        // Counted from the attempt, failed or not: during an outage a request waits for at most one
        // failed refresh per MEMBERS_REFRESH_MS, not one each (reloadMembers retries on its own).
        membersReadAt = deps.now();
        const members = await store.members(roomId);
        const before = state.members;
        state = {
          ...state,
          members: new Map(members.map((m) => [m.userId, { lastReadSeq: m.lastReadSeq }])),
        };
        if (!announce) return;
        for (const userId of before.keys()) {
          if (!state.members.has(userId))
            publish({ t: 'room.member', d: { roomId, userId, change: 'removed' } });
        }
      };
      const publish = (frame: ServerFrame) => deps.fanOut(roomTopic(roomId), { frame });

      /** The outcome of a write must reach the actor even when its mailbox is full for a moment. */
      const tellSelf = (message: RoomCommand) => {
        try {
          context.self.tell(message);
        } catch (error) {
          if (isAppError(error) && error.code === 'UNAVAILABLE') return; // the node is stopping
          context.timers.schedule(SELF_TELL_RETRY_MS, () => tellSelf(message));
        }
      };

      /** Drops queued sends whose asker stopped waiting (timed out): it resends, if at all. */
      const dropAbandoned = () => {
        pending = pending.filter((waiting) => !waiting.reply.settled);
      };

      /**
       * Answers queued sends whose first send is stored by now (`recent`): a resend that arrived
       * while its first was being written (a client reconnecting and resending at once) waited
       * here, and written again it met a unique violation, which fails the whole node-wide statement
       * (every room's new messages of that moment, each then written again alone) before the
       * checked rewrite found its first seq (review 25).
       */
      const answerKnownResends = () => {
        if (recent.size === 0) return;
        const now = deps.now();
        pending = pending.filter((waiting) => {
          const known = recent.get(sendKey(waiting.send.senderId, waiting.send.clientMsgId));
          if (known === undefined || now - known.at >= RECENT_SENDS_TTL_MS) return true;
          waiting.reply.ok({ seq: known.seq, sentAt: known.sentAt });
          return false;
        });
      };

      const startFlush = () => {
        if (flushing) return;
        let fragment = retries.shift();
        if (fragment === undefined) {
          dropAbandoned();
          answerKnownResends();
          if (pending.length === 0) return;
          fragment = { batch: pending.slice(0, MAX_BATCH), attempts: 0, checked: false };
          pending = pending.slice(MAX_BATCH);
        }
        flushing = true;
        const before = state;
        const sends = fragment.batch.map((w) => w.send);
        batchSize.observe(sends.length);
        const write: Promise<{ stored: RoomMessage[]; inserted: RoomMessage[]; lastSeq: number }> =
          fragment.checked
            ? (async () => {
                slowWrites.inc();
                let lastSeq = before.lastSeq;
                const result = await store.insertChecked(roomId, epoch, sends, (already) => {
                  const storedSeq = new Map(
                    already.map((m) => [sendKey(m.sender_id, m.client_msg_id), m.seq]),
                  );
                  const plan = planBatch(before, sends, storedSeq);
                  lastSeq = plan.lastSeq;
                  return plan.inserts;
                });
                return {
                  stored: result.stored.map(toRoomMessage),
                  inserted: result.inserted.map(toRoomMessage),
                  lastSeq,
                };
              })()
            : (async () => {
                const plan = planBatch(before, sends, new Map());
                const inserted = (await store.insertNew(roomId, epoch, plan.inserts)).map(toRoomMessage);
                return { stored: [], inserted, lastSeq: plan.lastSeq };
              })();
        const written = fragment;
        write.then(
          (result) => {
            // Committed. Everything that follows from it happens here, whatever activation is
            // alive by the time the actor hears of it: fan-out first (in seq order, through the
            // bounded queue), then the acks. Rows the checked rewrite found stored are fanned out
            // too when above every seq pushed so far: a write whose commit outcome was lost (the
            // connection dropped after the node-wide statement committed) pushed nothing, and a
            // quiet room would never show its receivers a gap to fill. Below that they are resends
            // of pushed messages, or a gap receivers already saw and fill from history.
            const fresh = [...result.stored.filter((m) => m.seq > publishedSeq), ...result.inserted].sort(
              (a, b) => a.seq - b.seq,
            );
            for (const message of fresh) publish({ t: 'room.message', d: message });
            publishedSeq = Math.max(publishedSeq, fresh.at(-1)?.seq ?? 0);
            const bySend = new Map(
              [...result.stored, ...result.inserted].map((m) => [sendKey(m.senderId, m.clientMsgId), m]),
            );
            for (const waiting of written.batch) {
              const message = bySend.get(sendKey(waiting.send.senderId, waiting.send.clientMsgId));
              if (message === undefined)
                waiting.reply.fail(new AppError('INTERNAL', 'message was not stored'));
              else {
                waiting.reply.ok({ seq: message.seq, sentAt: message.sentAt });
                sendSeconds.observe((deps.now() - waiting.receivedAt) / 1000);
              }
            }
            tellSelf({
              type: 'flushed',
              writer: me,
              stored: [...result.stored, ...result.inserted],
              lastSeq: result.lastSeq,
            });
          },
          (error: unknown) => tellSelf({ type: 'flush-failed', writer: me, fragment: written, error }),
        );
      };

      const failFragment = (fragment: Fragment, error: AppError) => {
        for (const waiting of fragment.batch) waiting.reply.fail(error);
      };

      /**
       * A read the database could not serve (history, a read mark) fails that request alone: never
       * by throwing, which would restart the activation mid-batch.
       */
      const readFailed = (reply: Reply<never>, what: string, error: unknown) => {
        readsFailed.inc();
        context.log.warn({ err: error }, `room ${what} failed`);
        reply.fail(new AppError('UNAVAILABLE', `the room's ${what} failed; try again`, { cause: error }));
      };

      const reloadMembers = async (announce = false) => {
        try {
          await loadMembers(announce);
        } catch (error) {
          // The members known so far stay; a reload a moment later catches the change up.
          readsFailed.inc();
          context.log.warn({ err: error }, 'room member reload failed; trying again shortly');
          if (announce) announceOnRetry = true;
          if (reloadScheduled) return;
          reloadScheduled = true;
          context.timers.schedule(RELOAD_RETRY_MS, () => {
            reloadScheduled = false;
            tellSelf({ type: 'reload-members', announce: announceOnRetry });
            announceOnRetry = false;
          });
        }
      };

      /** Steps down: unwritten sends go to the new owner (their senders' router resends them). */
      const stepDown = () => {
        deposed = true;
        for (const fragment of retries.splice(0)) failFragment(fragment, roomMovedError());
        for (const waiting of pending.splice(0)) waiting.reply.fail(roomMovedError());
        context.stopSelf();
      };

      /** Requests of members: refused ROOM_MOVED once this node is not the owner any more. */
      const refuseIfMoved = (reply: Reply<never>): boolean => {
        const owner = isOwner(roomId);
        if (!deposed && owner) return false;
        moved.inc();
        reply.fail(roomMovedError());
        if (!deposed) stepDown();
        // The room came back to this node: a fresh activation takes it over (the resend finds it).
        else if (owner) context.stopSelf();
        return true;
      };

      return {
        onStart: async () => {
          // Activated for messages queued behind a step-down, on a node placement no longer gives
          // the room to: never take the room over (that would fence the real owner); refuse them.
          if (!isOwner(roomId)) {
            deposed = true;
            return;
          }
          // Taking the room over waits for a write of the previous owner that holds the room row;
          // after it, the stored seq is final (nobody else can commit), so it is read second.
          const taken = await store.acquire(roomId);
          if (taken === undefined) return;
          epoch = taken.epoch;
          acquired.inc();
          context.log.debug({ epoch }, 'room ownership acquired');
          await loadMembers();
          state = { ...state, lastSeq: await store.highestSeq(roomId) };
          // Whether an earlier life pushed what is stored is unknown; pushing it now could go out
          // below a seq already pushed, so this activation pushes only above it.
          publishedSeq = state.lastSeq;
        },
        onStop: () => {
          // Passivation, restart after a bug, or shutdown: sends not yet written would otherwise
          // wait for their ask timeout. A write in flight answers its own senders when it ends.
          const error = new AppError(
            'UNAVAILABLE',
            'the room stopped before storing this message; resend it',
          );
          for (const fragment of retries.splice(0)) failFragment(fragment, error);
          for (const waiting of pending.splice(0)) waiting.reply.fail(error);
        },
        handle: async (command) => {
          if (
            command.type !== 'reload-members' &&
            command.type !== 'flushed' &&
            command.type !== 'flush-failed' &&
            command.type !== 'handoff' &&
            refuseIfMoved(command.reply)
          ) {
            return;
          }
          if (
            (command.type === 'join' ||
              command.type === 'send' ||
              command.type === 'typing' ||
              command.type === 'read') &&
            deps.now() - membersReadAt >= MEMBERS_REFRESH_MS
          ) {
            // A failed read keeps the members known so far (reloadMembers logs it and retries).
            await reloadMembers(true);
          }
          if (
            (command.type === 'join' ||
              command.type === 'send' ||
              command.type === 'typing' ||
              command.type === 'read') &&
            !isMember(state, command.type === 'send' ? command.send.senderId : command.userId) &&
            deps.now() - membersReadAt >= MEMBERS_MISS_RELOAD_MS
          ) {
            await reloadMembers(true);
          }
          switch (command.type) {
            case 'join': {
              if (!isMember(state, command.userId))
                return command.reply.fail(new AppError('FORBIDDEN', 'not a member of this room'));
              return command.reply.ok({ lastSeq: state.lastSeq });
            }
            case 'send': {
              if (!isMember(state, command.send.senderId))
                return command.reply.fail(new AppError('FORBIDDEN', 'not a member of this room'));
              const known = recent.get(sendKey(command.send.senderId, command.send.clientMsgId));
              if (known !== undefined && deps.now() - known.at < RECENT_SENDS_TTL_MS)
                return command.reply.ok({ seq: known.seq, sentAt: known.sentAt });
              // A full queue is scanned for abandoned sends at most every FULL_QUEUE_SCAN_MS, not
              // per refused send (a stalled database under load would scan it thousands of times).
              if (pending.length >= maxQueuedSends && deps.now() - lastFullScanAt >= FULL_QUEUE_SCAN_MS) {
                lastFullScanAt = deps.now();
                dropAbandoned();
              }
              if (pending.length >= maxQueuedSends) {
                busy.inc();
                return command.reply.fail(
                  new AppError(
                    'RATE_LIMITED',
                    `the room is too busy: ${maxQueuedSends} messages wait to be stored; retry with backoff`,
                  ),
                );
              }
              const bytes = estimatedMessageBytes(command.send);
              if (
                unansweredBytes + bytes > maxQueuedSendBytes &&
                deps.now() - lastPruneAt >= FULL_QUEUE_SCAN_MS
              ) {
                lastPruneAt = deps.now();
                pruneUnanswered();
              }
              if (unansweredBytes + bytes > maxQueuedSendBytes) {
                busy.inc();
                return command.reply.fail(
                  new AppError(
                    'RATE_LIMITED',
                    'the server is too busy: too many messages wait to be stored; retry with backoff',
                  ),
                );
              }
              pending.push({
                send: command.send,
                reply: counted(command.reply, bytes),
                receivedAt: deps.now(),
              });
              return startFlush();
            }
            case 'flushed': {
              // A write of an earlier activation (restarted meanwhile) moves the seq on, but this
              // activation's own write may still be in flight.
              if (command.writer === me) flushing = false;
              state = { ...state, lastSeq: Math.max(state.lastSeq, command.lastSeq) };
              const now = deps.now();
              for (const message of command.stored) {
                const key = sendKey(message.senderId, message.clientMsgId);
                // Re-inserted at the end: the map stays in the order the entries were made.
                recent.delete(key);
                forgetOldSends(now);
                recent.set(key, { seq: message.seq, sentAt: message.sentAt, at: now });
              }
              if (deps.onStored !== undefined && command.stored.length > 0) {
                try {
                  deps.onStored(roomId, command.stored, state.members);
                } catch (error) {
                  context.log.warn({ err: error }, 'onStored hook failed');
                }
              }
              return startFlush();
            }
            case 'flush-failed': {
              if (command.writer === me) flushing = false;
              const { fragment, error } = command;
              const failure = classifyWriteFailure(error);
              if (failure === 'fenced') {
                fenced.inc();
                context.log.info({ epoch }, 'room write fenced off: another node owns the room now');
                failFragment(fragment, roomMovedError());
                deps.onFenced?.(roomId);
                // Only this activation's own write deposes it; an older one's was fenced by this one.
                if (command.writer === me && !deposed) stepDown();
                return;
              }
              if (failure === 'not-member') {
                // A sender was removed and this actor had not heard of it (the announcement lost or
                // still on its way). Nothing was stored: read the members, refuse the removed
                // senders, and write the others' sends again, numbered from the same seq (no gap).
                // The removal is announced here (loadMembers): this actor never heard of it, so its
                // own announcement may well have been lost.
                try {
                  await loadMembers(true);
                } catch (readError) {
                  readsFailed.inc();
                  context.log.warn({ err: readError }, 'room member reload failed; senders resend');
                  failFragment(
                    fragment,
                    new AppError('UNAVAILABLE', 'message could not be stored; resend it'),
                  );
                  return startFlush();
                }
                const rest: Waiting[] = [];
                for (const waiting of fragment.batch) {
                  if (isMember(state, waiting.send.senderId)) rest.push(waiting);
                  else waiting.reply.fail(new AppError('FORBIDDEN', 'not a member of this room'));
                }
                if (rest.length > 0) {
                  if (fragment.attempts + 1 < MAX_FLUSH_ATTEMPTS)
                    retries.unshift({
                      batch: rest,
                      attempts: fragment.attempts + 1,
                      checked: fragment.checked,
                    });
                  else
                    failFragment(
                      { ...fragment, batch: rest },
                      new AppError('UNAVAILABLE', 'message could not be stored; resend it'),
                    );
                }
                return startFlush();
              }
              if (failure === 'duplicate' && fragment.attempts + 1 < MAX_FLUSH_ATTEMPTS) {
                // A resend stored before this actor's life, or seqs another writer (a stale owner)
                // took: renumber after the last stored seq and write again, looking up stored sends.
                context.log.debug({ err: error }, 'unique violation: rewriting the batch with a lookup');
                let highest: number;
                try {
                  highest = await store.highestSeq(roomId);
                } catch (readError) {
                  // The database is unreachable: the senders resend; not a fault of ours.
                  context.log.warn({ err: readError }, 'room write failed');
                  failFragment(
                    fragment,
                    new AppError('UNAVAILABLE', 'message could not be stored; resend it'),
                  );
                  return startFlush();
                }
                state = { ...state, lastSeq: Math.max(state.lastSeq, highest) };
                retries.unshift({ batch: fragment.batch, attempts: fragment.attempts + 1, checked: true });
                return startFlush();
              }
              if (failure === 'rejected') {
                const halves = splitBatch(fragment.batch);
                if (halves !== undefined) {
                  // Nothing of the batch was stored (one statement or one transaction): the halves
                  // are numbered from the same seq, the first one first.
                  splits.inc();
                  retries.unshift(
                    { batch: halves[0], attempts: 0, checked: fragment.checked },
                    { batch: halves[1], attempts: 0, checked: fragment.checked },
                  );
                  return startFlush();
                }
                refused.inc();
                context.log.info(
                  { err: error, userId: fragment.batch[0]?.send.senderId },
                  'the database refused a message; only its sender is told',
                );
                failFragment(
                  fragment,
                  new AppError('VALIDATION_FAILED', 'the message contains a value that cannot be stored'),
                );
                return startFlush();
              }
              context.log.warn({ err: error }, 'room write failed; its senders resend');
              failFragment(fragment, new AppError('UNAVAILABLE', 'message could not be stored; resend it'));
              return startFlush();
            }
            case 'typing': {
              if (!isMember(state, command.userId))
                return command.reply.fail(new AppError('FORBIDDEN', 'not a member of this room'));
              const typing = applyTyping(state, command.userId, deps.now(), TYPING_THROTTLE_MS);
              state = typing.state;
              if (typing.push) publish({ t: 'room.typing', d: { roomId, userId: command.userId } });
              return command.reply.ok(undefined);
            }
            case 'read': {
              if (!isMember(state, command.userId))
                return command.reply.fail(new AppError('FORBIDDEN', 'not a member of this room'));
              if (command.seq > state.lastSeq && takeStoredSeqLookup()) {
                // Messages this actor did not write (a contract's system message, appended by the
                // transition's own transaction) are above its lastSeq: read the stored one before
                // clamping, or a member could never mark such a message read. Budgeted: a member
                // sending reads far past the end would otherwise cost a query in the room's turn
                // each, and every other member's sends wait behind those turns.
                try {
                  const highest = await store.highestSeq(roomId);
                  state = { ...state, lastSeq: Math.max(state.lastSeq, highest) };
                } catch (error) {
                  return readFailed(command.reply, 'read mark write', error);
                }
              }
              const read = applyRead(state, command.userId, command.seq);
              if (read.changed) {
                try {
                  await store.markRead(roomId, command.userId, read.seq);
                } catch (error) {
                  // The mark stays where it was, so asking again writes it.
                  return readFailed(command.reply, 'read mark write', error);
                }
                // Nothing else ran meanwhile (one message at a time): read.state is current.
                state = read.state;
                publish({ t: 'room.read', d: { roomId, userId: command.userId, seq: read.seq } });
              }
              return command.reply.ok({ seq: read.seq });
            }
            case 'reload-members':
              return reloadMembers(command.announce === true);
            case 'handoff':
              if (!deposed) stepDown();
              return;
          }
        },
      };
    },
  };
}
