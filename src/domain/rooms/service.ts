/**
 * Rooms over REST: creating them (one direct room per pair), listing the caller's with unread
 * counts, membership of groups, and history. Non-members learn nothing about a room: unknown and
 * foreign rooms both answer FORBIDDEN.
 */
import type { Kysely } from 'kysely';
import type { RoomMessage } from '../../../protocol/src/frames.js';
import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import {
  addRoomMembers,
  findDirectRoom,
  findRoom,
  insertRoom,
  type MessageRow,
  messagesBefore,
  type RoomRow,
  removeRoomMember,
  roomMembers,
  roomsOfUser,
} from '../../db/repositories/rooms.repo.js';
import { findUserById } from '../../db/repositories/users.repo.js';
import type { Bus } from '../../platform/bus/bus.js';
import { AppError } from '../../platform/errors.js';

/** Bus topic of one room: every node with joined connections subscribes. */
export const roomTopic = (roomId: string) => `room.${roomId}`;
/** Bus topic telling room actors to reload membership. */
export const ROOM_MEMBERSHIP_TOPIC = 'rooms.membership';

export const toRoomMessage = (row: MessageRow): RoomMessage => ({
  roomId: row.room_id,
  seq: row.seq,
  senderId: row.sender_id,
  clientMsgId: row.client_msg_id,
  body: row.body,
  ...(row.meta === null ? {} : { meta: row.meta }),
  sentAt: row.sent_at.toISOString(),
});

const forbidden = () => new AppError('FORBIDDEN', 'not a member of this room');

export function createRoomService(deps: { readonly db: Kysely<Database>; readonly bus: Bus }) {
  const { db, bus } = deps;

  const toRoom = (room: RoomRow, memberIds: readonly UserId[]) => ({
    id: room.id,
    kind: room.kind,
    title: room.title,
    createdBy: room.created_by,
    memberIds: [...memberIds],
    lastSeq: Number(room.last_seq),
    createdAt: room.created_at.toISOString(),
  });

  /** The room when `userId` is a member; FORBIDDEN otherwise (also when it does not exist). */
  async function memberRoom(userId: UserId, roomId: RoomId) {
    const room = await findRoom(db, roomId);
    if (room === undefined) throw forbidden();
    const members = await roomMembers(db, roomId);
    if (!members.some((m) => m.userId === userId)) throw forbidden();
    return { room, members };
  }

  const announceMembership = async (roomId: RoomId, userId: UserId, change: 'added' | 'removed') => {
    await bus.publish(ROOM_MEMBERSHIP_TOPIC, { roomId });
    await bus.publish(roomTopic(roomId), { frame: { t: 'room.member', d: { roomId, userId, change } } });
  };

  return {
    memberRoom,

    /** @returns the room and whether it was created now (false: the existing direct room). */
    async create(
      creator: UserId,
      input: { kind: 'direct' | 'group'; memberIds: readonly UserId[]; title?: string | undefined },
    ) {
      const others = [...new Set(input.memberIds)].filter((id) => id !== creator);
      for (const id of others) {
        const user = await findUserById(db, id);
        if (user === undefined || user.locked_at !== null) {
          throw new AppError('VALIDATION_FAILED', 'unknown member', {
            details: { errors: [{ path: 'body.memberIds', message: `no user ${id}` }] },
          });
        }
      }
      if (input.kind === 'direct') {
        if (others.length !== 1) {
          throw new AppError('VALIDATION_FAILED', 'a direct room has exactly one other member', {
            details: { errors: [{ path: 'body.memberIds', message: 'must name exactly one other user' }] },
          });
        }
        const [other] = others as [UserId];
        const directKey = [creator, other].sort().join(':');
        const existing = await findDirectRoom(db, directKey);
        if (existing !== undefined) return { room: toRoom(existing, [creator, other]), created: false };
        try {
          const room = await db.transaction().execute(async (trx) => {
            const row = await insertRoom(trx, { kind: 'direct', title: null, createdBy: creator, directKey });
            await addRoomMembers(trx, row.id, [creator, other]);
            return row;
          });
          return { room: toRoom(room, [creator, other]), created: true };
        } catch (error) {
          // Both users created it at the same moment: the unique key picked one.
          const raced = await findDirectRoom(db, directKey);
          if (raced !== undefined) return { room: toRoom(raced, [creator, other]), created: false };
          throw error;
        }
      }
      const memberIds = [creator, ...others];
      const room = await db.transaction().execute(async (trx) => {
        const row = await insertRoom(trx, {
          kind: 'group',
          title: input.title ?? null,
          createdBy: creator,
          directKey: null,
        });
        await addRoomMembers(trx, row.id, memberIds);
        return row;
      });
      return { room: toRoom(room, memberIds), created: true };
    },

    async get(userId: UserId, roomId: RoomId) {
      const { room, members } = await memberRoom(userId, roomId);
      return toRoom(
        room,
        members.map((m) => m.userId),
      );
    },

    async list(userId: UserId) {
      const rows = await roomsOfUser(db, userId);
      return {
        data: rows.map((row) => ({
          id: row.room.id,
          kind: row.room.kind,
          title: row.room.title,
          lastSeq: Number(row.room.last_seq),
          lastReadSeq: row.lastReadSeq,
          unread: row.unread,
          lastMessage: row.lastMessage === undefined ? null : toRoomMessage(row.lastMessage),
        })),
      };
    },

    async addMember(actor: UserId, roomId: RoomId, userId: UserId): Promise<void> {
      const { room } = await memberRoom(actor, roomId);
      if (room.kind !== 'group') throw new AppError('CONFLICT', 'only group rooms change members');
      const user = await findUserById(db, userId);
      if (user === undefined || user.locked_at !== null) throw new AppError('NOT_FOUND', 'no such user');
      await addRoomMembers(db, roomId, [userId]);
      await announceMembership(roomId, userId, 'added');
    },

    async removeMember(actor: UserId, roomId: RoomId, userId: UserId): Promise<void> {
      const { room } = await memberRoom(actor, roomId);
      if (room.kind !== 'group') throw new AppError('CONFLICT', 'only group rooms change members');
      if (actor !== userId && room.created_by !== actor) {
        throw new AppError('FORBIDDEN', 'only the creator removes other members');
      }
      if (await removeRoomMember(db, roomId, userId)) await announceMembership(roomId, userId, 'removed');
    },

    async history(
      userId: UserId,
      roomId: RoomId,
      beforeSeq: number | undefined,
      limit: number,
    ): Promise<RoomMessage[]> {
      await memberRoom(userId, roomId);
      return (await messagesBefore(db, roomId, beforeSeq, limit)).map(toRoomMessage);
    },
  };
}

export type RoomService = ReturnType<typeof createRoomService>;
