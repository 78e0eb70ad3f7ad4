/**
 * RoomActor: one per room, the single writer of its messages. It checks membership, numbers
 * messages with a gap-free seq, makes them durable with group commit (sends arriving while a write
 * is in flight go into the next single multi-row INSERT) and acknowledges each send only after its
 * batch committed. A batch is first written as new in one statement (one round trip); only when
 * that meets a unique violation is it written again in a transaction that looks up stored sends
 * first, so resends from an earlier life of the actor keep their seq and leave no gap. Fan-out goes through the bus once per message (each node then delivers locally,
 * encoding once per encoding). Resends of a clientMsgId get their first seq and store nothing.
 * The (room_id, seq) primary key fences a stale writer: a conflicting batch reloads the last seq
 * and is numbered again.
 */

import type { Kysely } from 'kysely';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { RoomMessage, ServerFrame } from '../../../protocol/src/frames.js';
import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import {
  findMessagesByClientIds,
  findRoom,
  highestSeq,
  insertMessages,
  insertNewMessages,
  markRead,
  messagesAfter,
  messagesBefore,
  roomMembers,
} from '../../db/repositories/rooms.repo.js';
import { roomTopic, toRoomMessage } from '../../domain/rooms/service.js';
import type { Bus } from '../../platform/bus/bus.js';
import { AppError } from '../../platform/errors.js';
import type { ActorKind, Reply } from '../runtime/types.js';
import {
  applyRead,
  applyTyping,
  isMember,
  type PendingSend,
  planBatch,
  type RoomState,
  sendKey,
} from './room.state.js';

/** How room actors reach the connections of this node (implemented by the gateway's hub). */
export interface RoomSink {
  /**
   * Subscribes the connection to the room from `sinceSeq` on. Live messages are held back until
   * `finishCatchUp`, so the backlog and live messages reach it in seq order without duplicates.
   * Resolves false when the connection is gone.
   */
  readonly join: (roomId: RoomId, connectionId: string, sinceSeq: number) => Promise<boolean>;
  readonly deliverBacklog: (roomId: RoomId, connectionId: string, messages: readonly RoomMessage[]) => void;
  readonly finishCatchUp: (roomId: RoomId, connectionId: string) => void;
}

export type RoomCommand =
  | {
      readonly type: 'join';
      readonly userId: UserId;
      readonly connectionId: string;
      readonly sinceSeq: number | undefined;
      readonly reply: Reply<{ lastSeq: number }>;
    }
  | {
      readonly type: 'send';
      readonly send: PendingSend;
      readonly reply: Reply<{ seq: number; sentAt: string }>;
    }
  | {
      readonly type: 'history';
      readonly userId: UserId;
      readonly beforeSeq: number | undefined;
      readonly limit: number;
      readonly reply: Reply<{ messages: RoomMessage[] }>;
    }
  | { readonly type: 'typing'; readonly userId: UserId; readonly reply: Reply<undefined> }
  | {
      readonly type: 'read';
      readonly userId: UserId;
      readonly seq: number;
      readonly reply: Reply<{ seq: number }>;
    }
  | { readonly type: 'reload-members' }
  | {
      readonly type: 'flushed';
      readonly batch: readonly Waiting[];
      readonly stored: readonly RoomMessage[];
      readonly lastSeq: number;
    }
  | { readonly type: 'flush-failed'; readonly batch: readonly Waiting[]; readonly error: unknown };

interface Waiting {
  readonly send: PendingSend;
  readonly reply: Reply<{ seq: number; sentAt: string }>;
}

export const ROOM_ACTOR = 'room';
/** Largest batch per INSERT; more waits for the next one. */
const MAX_BATCH = 500;
const MAX_BACKLOG = 10_000;
const TYPING_THROTTLE_MS = 2_000;
const RECENT_SENDS = 10_000;
const MAX_FLUSH_ATTEMPTS = 3;

const isUniqueViolation = (error: unknown) => (error as { code?: unknown } | null)?.code === '23505';

export function roomActorKind(deps: {
  readonly db: Kysely<Database>;
  readonly bus: Bus;
  readonly sink: RoomSink;
  readonly toRoomId: (id: string) => RoomId;
  readonly now: () => number;
  readonly metrics: Registry;
}): ActorKind<RoomCommand> {
  const { db, bus, sink } = deps;
  const batchSize = new Histogram({
    name: 'gigwire_room_write_batch_size',
    help: 'Messages per room write (group commit: one statement stores a whole batch).',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 500],
    registers: [deps.metrics],
  });
  const slowWrites = new Counter({
    name: 'gigwire_room_write_rechecks_total',
    help: 'Room writes redone with a lookup of stored sends after a unique violation (resends, stale writers).',
    registers: [deps.metrics],
  });
  return {
    kind: ROOM_ACTOR,
    mailboxCapacity: 8_192,
    idleMs: 120_000,
    create: (id, context) => {
      const roomId = deps.toRoomId(id);
      let state: RoomState = { roomId, members: new Map(), lastSeq: 0, typingPushedAt: new Map() };
      let pending: Waiting[] = [];
      let flushing = false;
      let attempts = 0;
      /** Recently acknowledged sends: a resend is answered without touching the database. */
      const recent = new Map<string, { seq: number; sentAt: string }>();

      const loadMembers = async () => {
        const members = await roomMembers(db, roomId);
        state = {
          ...state,
          members: new Map(members.map((m) => [m.userId, { lastReadSeq: m.lastReadSeq }])),
        };
      };
      const publish = (frame: ServerFrame) =>
        bus
          .publish(roomTopic(roomId), { frame })
          .catch((error: unknown) => context.log.warn({ err: error }, 'room fan-out failed'));

      const startFlush = () => {
        if (flushing || pending.length === 0) return;
        flushing = true;
        const batch = pending.slice(0, MAX_BATCH);
        pending = pending.slice(MAX_BATCH);
        const before = state;
        const sends = batch.map((w) => w.send);
        batchSize.observe(batch.length);
        const write =
          attempts === 0
            ? (async () => {
                const plan = planBatch(before, sends, new Map());
                const inserted = await insertNewMessages(db, roomId, plan.inserts);
                return { messages: inserted.map(toRoomMessage), lastSeq: plan.lastSeq };
              })()
            : db.transaction().execute(async (trx) => {
                slowWrites.inc();
                const already = await findMessagesByClientIds(
                  trx,
                  roomId,
                  sends.map((send) => ({ senderId: send.senderId, clientMsgId: send.clientMsgId })),
                );
                const storedSeq = new Map(already.map((m) => [sendKey(m.sender_id, m.client_msg_id), m.seq]));
                const plan = planBatch(before, sends, storedSeq);
                const inserted = await insertMessages(trx, roomId, plan.inserts);
                return { messages: [...already, ...inserted].map(toRoomMessage), lastSeq: plan.lastSeq };
              });
        write.then(
          (result) =>
            context.self.tell({ type: 'flushed', batch, stored: result.messages, lastSeq: result.lastSeq }),
          (error: unknown) => context.self.tell({ type: 'flush-failed', batch, error }),
        );
      };

      return {
        onStart: async () => {
          const room = await findRoom(db, roomId);
          if (room === undefined) return;
          await loadMembers();
          state = { ...state, lastSeq: await highestSeq(db, roomId) };
        },
        handle: async (command) => {
          switch (command.type) {
            case 'join': {
              if (!isMember(state, command.userId))
                return command.reply.fail(new AppError('FORBIDDEN', 'not a member of this room'));
              const since = Math.min(command.sinceSeq ?? state.lastSeq, state.lastSeq);
              if (!(await sink.join(roomId, command.connectionId, since)))
                return command.reply.ok({ lastSeq: state.lastSeq });
              if (since < state.lastSeq) {
                const backlog = await messagesAfter(
                  db,
                  roomId,
                  since,
                  Math.min(MAX_BACKLOG, state.lastSeq - since),
                );
                sink.deliverBacklog(roomId, command.connectionId, backlog.map(toRoomMessage));
              }
              sink.finishCatchUp(roomId, command.connectionId);
              return command.reply.ok({ lastSeq: state.lastSeq });
            }
            case 'send': {
              if (!isMember(state, command.send.senderId))
                return command.reply.fail(new AppError('FORBIDDEN', 'not a member of this room'));
              const known = recent.get(sendKey(command.send.senderId, command.send.clientMsgId));
              if (known !== undefined) return command.reply.ok(known);
              pending.push({ send: command.send, reply: command.reply });
              return startFlush();
            }
            case 'flushed': {
              flushing = false;
              attempts = 0;
              const firstNew = state.lastSeq;
              state = { ...state, lastSeq: Math.max(state.lastSeq, command.lastSeq) };
              const bySend = new Map(command.stored.map((m) => [sendKey(m.senderId, m.clientMsgId), m]));
              // Issued together, in seq order: the bus connection keeps their order, and a batch
              // costs one round trip instead of one per message (acks would lag the pushes).
              const published = Promise.all(
                [...command.stored]
                  .filter((message) => message.seq > firstNew)
                  .sort((a, b) => a.seq - b.seq)
                  .map((message) => publish({ t: 'room.message', d: message })),
              );
              for (const waiting of command.batch) {
                const message = bySend.get(sendKey(waiting.send.senderId, waiting.send.clientMsgId));
                if (message === undefined) {
                  waiting.reply.fail(new AppError('INTERNAL', 'message was not stored'));
                  continue;
                }
                const ack = { seq: message.seq, sentAt: message.sentAt };
                if (recent.size >= RECENT_SENDS) recent.delete(recent.keys().next().value ?? '');
                recent.set(sendKey(message.senderId, message.clientMsgId), ack);
                waiting.reply.ok(ack);
              }
              await published;
              return startFlush();
            }
            case 'flush-failed': {
              flushing = false;
              attempts += 1;
              if (isUniqueViolation(command.error) && attempts < MAX_FLUSH_ATTEMPTS) {
                // A resend stored before this actor's life, or seqs another writer (a stale owner)
                // took: renumber after the last stored seq and write again, looking up stored sends.
                context.log.debug(
                  { err: command.error },
                  'unique violation: rewriting the batch with a lookup',
                );
                state = { ...state, lastSeq: await highestSeq(db, roomId) };
                pending = [...command.batch, ...pending];
                return startFlush();
              }
              attempts = 0;
              context.log.error({ err: command.error }, 'room write failed');
              for (const waiting of command.batch)
                waiting.reply.fail(new AppError('UNAVAILABLE', 'message could not be stored; resend it'));
              return startFlush();
            }
            case 'history': {
              if (!isMember(state, command.userId))
                return command.reply.fail(new AppError('FORBIDDEN', 'not a member of this room'));
              const rows = await messagesBefore(db, roomId, command.beforeSeq, command.limit);
              return command.reply.ok({ messages: rows.map(toRoomMessage) });
            }
            case 'typing': {
              if (!isMember(state, command.userId))
                return command.reply.fail(new AppError('FORBIDDEN', 'not a member of this room'));
              const typing = applyTyping(state, command.userId, deps.now(), TYPING_THROTTLE_MS);
              state = typing.state;
              if (typing.push) await publish({ t: 'room.typing', d: { roomId, userId: command.userId } });
              return command.reply.ok(undefined);
            }
            case 'read': {
              if (!isMember(state, command.userId))
                return command.reply.fail(new AppError('FORBIDDEN', 'not a member of this room'));
              const read = applyRead(state, command.userId, command.seq);
              state = read.state;
              if (read.changed) {
                await markRead(db, roomId, command.userId, read.seq);
                await publish({ t: 'room.read', d: { roomId, userId: command.userId, seq: read.seq } });
              }
              return command.reply.ok({ seq: read.seq });
            }
            case 'reload-members':
              return loadMembers();
          }
        },
      };
    },
  };
}
