/**
 * RoomStore: the storage a room needs, as a port over the rooms repository. The room actor writes
 * and numbers messages through it; the gateway reads join backlogs through it, page by page,
 * outside the actor's turn. One implementation (PostgreSQL or PGlite through kysely); tests wrap
 * it to make the real database refuse a chosen send or to fail a chosen call, never to replace it.
 * One store per node: its `insertNew` joins the writes of all the node's rooms (group-commit.ts).
 */
import type { Kysely } from 'kysely';
import type { Registry } from 'prom-client';
import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import {
  acquireRoomOwnership,
  allSendersMembers,
  findMessagesByClientIds,
  highestSeq,
  insertMessages,
  insertNewMessages,
  insertNewMessagesOfRooms,
  lastSeqsOfRooms,
  lockOwnedRoom,
  type MessageRow,
  markRead,
  messagesAfter,
  messagesBefore,
  type NewMessage,
  RoomFencedError,
  RoomSenderNotMemberError,
  roomMembers,
} from '../../db/repositories/rooms.repo.js';
import { createGroupCommit } from './group-commit.js';

export type { MessageRow, NewMessage };
export { RoomFencedError, RoomSenderNotMemberError };

/** A send as the store sees it: who, and the client's idempotency key. */
export interface SendKey {
  readonly senderId: UserId;
  readonly clientMsgId: string;
}

export interface RoomStore {
  /**
   * Takes the room over for this node: a new fencing epoch that every later write must carry
   * (writes with an older one fail with RoomFencedError and store nothing). undefined: no such room.
   */
  readonly acquire: (roomId: RoomId) => Promise<{ epoch: number } | undefined>;
  readonly members: (roomId: RoomId) => Promise<{ userId: UserId; lastReadSeq: number }[]>;
  /** Highest stored seq (0 for an empty room). */
  readonly highestSeq: (roomId: RoomId) => Promise<number>;
  /**
   * Stores a batch believed new in one atomic statement, fenced by `epoch`. A unique violation
   * (23505) means some send or seq was taken already: nothing was stored; write again with
   * `insertChecked`. RoomFencedError: another node owns the room now; nothing was stored.
   * RoomSenderNotMemberError: a sender is no member of the room any more; nothing was stored.
   */
  readonly insertNew: (
    roomId: RoomId,
    epoch: number,
    messages: readonly NewMessage[],
  ) => Promise<MessageRow[]>;
  /**
   * In one transaction: looks up which of `sends` are stored already, lets `plan` number the rest
   * (given the stored seq per send key), and inserts them. `stored` are the rows found, `inserted`
   * the new ones. Fenced by `epoch` and checking the senders' membership like `insertNew`.
   */
  readonly insertChecked: (
    roomId: RoomId,
    epoch: number,
    sends: readonly SendKey[],
    plan: (stored: readonly MessageRow[]) => readonly NewMessage[],
  ) => Promise<{ stored: MessageRow[]; inserted: MessageRow[] }>;
  /** Each room's last stored seq (rooms that do not exist are missing), in one query. */
  readonly lastSeqs: (roomIds: readonly RoomId[]) => Promise<Map<RoomId, number>>;
  /** Oldest first, after `sinceSeq`. */
  readonly messagesAfter: (roomId: RoomId, sinceSeq: number, limit: number) => Promise<MessageRow[]>;
  /** Newest first, below `beforeSeq` when given. */
  readonly messagesBefore: (
    roomId: RoomId,
    beforeSeq: number | undefined,
    limit: number,
  ) => Promise<MessageRow[]>;
  readonly markRead: (roomId: RoomId, userId: UserId, seq: number) => Promise<void>;
}

/**
 * `nodeId` names the owner in the room row when this node takes a room over (for operators).
 * `metrics` gets the node-wide group commit's figures.
 */
export function createRoomStore(
  db: Kysely<Database>,
  nodeId: string,
  options: { readonly metrics?: Registry } = {},
): RoomStore {
  const groupCommit = createGroupCommit({
    writeMany: (batches) => insertNewMessagesOfRooms(db, batches),
    writeOne: (batch) => insertNewMessages(db, batch.roomId, batch.epoch, batch.messages),
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
  });
  return {
    acquire: (roomId) => acquireRoomOwnership(db, roomId, nodeId),
    members: (roomId) => roomMembers(db, roomId),
    highestSeq: (roomId) => highestSeq(db, roomId),
    insertNew: (roomId, epoch, messages) => groupCommit({ roomId, epoch, messages }),
    insertChecked: (roomId, epoch, sends, plan) =>
      db.transaction().execute(async (trx) => {
        // Fence first: the lookup and the numbering below then see what no other writer can change.
        await lockOwnedRoom(trx, roomId, epoch);
        // As insertNew: a sender removed meanwhile stores nothing (this path is rare: after a duplicate).
        if (
          !(await allSendersMembers(
            trx,
            roomId,
            sends.map((send) => send.senderId),
          ))
        )
          throw new RoomSenderNotMemberError(roomId);
        const stored = await findMessagesByClientIds(trx, roomId, sends);
        const inserted = await insertMessages(trx, roomId, epoch, plan(stored));
        return { stored, inserted };
      }),
    lastSeqs: (roomIds) => lastSeqsOfRooms(db, roomIds),
    messagesAfter: (roomId, sinceSeq, limit) => messagesAfter(db, roomId, sinceSeq, limit),
    messagesBefore: (roomId, beforeSeq, limit) => messagesBefore(db, roomId, beforeSeq, limit),
    markRead: (roomId, userId, seq) => markRead(db, roomId, userId, seq),
  };
}
