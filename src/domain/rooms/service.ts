/**
 * Rooms over REST: creating them (one direct room per pair), listing the caller's with unread
 * counts, membership of groups, and history. Non-members learn nothing about a room: unknown and
 * foreign rooms both answer FORBIDDEN.
 *
 * Consent: nobody is put into a room (direct or group) by someone they have not added as a contact
 * themselves, so a stranger cannot fill anyone's room list. A user is a member of at most
 * `maxRoomsPerUser` rooms; the check runs with the users' rows locked, so concurrent creations
 * cannot pass it together.
 */
import type { Kysely, Transaction } from 'kysely';
import type { RoomMessage } from '../../../protocol/src/frames.js';
import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import { HISTORY_PAGE_MAX_BYTES, ROOM_LIST_PAGE_MAX_BYTES } from '../../../protocol/src/rest/rooms.js';
import type { Database } from '../../db/database.js';
import {
  addRoomMembers,
  contractStateOfRoom,
  findDirectRoom,
  findRoom,
  insertRoom,
  isRoomMember,
  lockRoomMemberCount,
  lockUsers,
  type MessageRow,
  messagesBefore,
  type RoomListCursor,
  type RoomRow,
  removeRoomMember,
  roomCounts,
  roomMembers,
  roomsOfUser,
} from '../../db/repositories/rooms.repo.js';
import { findUserById, ownersWithContact } from '../../db/repositories/users.repo.js';
import type { Bus } from '../../platform/bus/bus.js';
import { ROOM_MEMBERSHIP_TOPIC, roomTopic } from '../../platform/bus/topics.js';
import { AppError } from '../../platform/errors.js';
import { cutHistoryPage, type HistoryPage } from './history-page.js';

export { ROOM_MEMBERSHIP_TOPIC, roomTopic };

/** Least time between two announcements again of one removal by retried DELETEs (per process). */
export const REANNOUNCE_EVERY_MS = 5_000;
/** Most removals remembered for that throttle. */
const REANNOUNCED_MAX = 10_000;

/** Most members of a group room: its creator and the 500 others a create request may name. */
export const MAX_GROUP_MEMBERS = 501;

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

/** Contract states after which its job room may be left (the contract can no longer change). */
const ENDED_CONTRACT_STATES: ReadonlySet<string> = new Set(['completed', 'cancelled', 'resolved']);

/** Opaque cursor of GET /v1/rooms: base64url of [joined_at in µs, room id]. */
export function encodeRoomCursor(cursor: RoomListCursor): string {
  return Buffer.from(JSON.stringify([cursor.joinedAtUs, cursor.roomId])).toString('base64url');
}

/** @throws AppError VALIDATION_FAILED for anything but a cursor of ours (never a 500). */
export function decodeRoomCursor(cursor: string | undefined): RoomListCursor | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      /^-?\d{1,18}$/.test(value[0]) &&
      typeof value[1] === 'string' &&
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value[1])
    ) {
      return { joinedAtUs: value[0], roomId: value[1] };
    }
  } catch {
    // fall through: not JSON
  }
  throw new AppError('VALIDATION_FAILED', 'invalid cursor', {
    details: { errors: [{ path: 'querystring.cursor', message: 'is not a cursor from this API' }] },
  });
}

/** What POST /v1/rooms asks for (protocol/src/rest/rooms.ts: a direct room never has a title). */
export interface CreateRoomInput {
  readonly kind: 'direct' | 'group';
  readonly memberIds: readonly UserId[];
  readonly title?: string | undefined;
}

export function createRoomService(deps: {
  readonly db: Kysely<Database>;
  readonly bus: Bus;
  /** ROOMS_MAX_PER_USER: rooms a user may be a member of. */
  readonly maxRoomsPerUser: number;
}) {
  const { db, bus } = deps;

  /**
   * @throws AppError FORBIDDEN naming the users who have not added `adder` as a contact. `q` is the
   * transaction of the change when there is one: on the embedded database (one connection) a read
   * through the root handle while a transaction is open waits for good.
   */
  const assertConsent = async (q: Kysely<Database>, adder: UserId, added: readonly UserId[]) => {
    const consenting = await ownersWithContact(q, adder, added);
    const refused = added.filter((id) => !consenting.has(id));
    if (refused.length > 0) {
      throw new AppError('FORBIDDEN', 'only users who added you as a contact can be put into a room', {
        details: { userIds: refused },
      });
    }
  };

  /** Call with the users' rows locked (`lockUsers`) in the transaction that adds them. */
  const assertRoomLimit = async (trx: Transaction<Database>, joining: readonly UserId[]) => {
    const counts = await roomCounts(trx, joining);
    const full = joining.filter((id) => (counts.get(id) ?? 0) >= deps.maxRoomsPerUser);
    if (full.length > 0) {
      throw new AppError(
        'ROOM_LIMIT_REACHED',
        `a user may be a member of at most ${deps.maxRoomsPerUser} rooms`,
        {
          details: { userIds: full, limit: deps.maxRoomsPerUser },
        },
      );
    }
  };

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

  const announceMembership = async (
    roomId: RoomId,
    userId: UserId,
    change: 'added' | 'removed',
    userOnly = false,
  ) => {
    await bus.publish(ROOM_MEMBERSHIP_TOPIC, { roomId });
    await bus.publish(roomTopic(roomId), {
      frame: { t: 'room.member', d: { roomId, userId, change } },
      ...(userOnly ? { userOnly: true as const } : {}),
    });
  };

  /**
   * When each change was last announced (`${change}/${roomId}/${userId}` → ms): a POST of a
   * member or a DELETE of a non-member changes nothing but announces the change once more (its
   * first announcement may have failed after the commit: the request answered 503, and the retry is
   * what tells the gateways and the room actors), but not within REANNOUNCE_EVERY_MS of the last one
   * of this process, so repeating it cannot flood a room with `room.member` frames. (Announcing
   * again is harmless: gateways re-check, clients drop a known change.)
   */
  const announced = new Map<string, number>();
  const announceChange = async (
    roomId: RoomId,
    userId: UserId,
    change: 'added' | 'removed',
    again: boolean,
  ) => {
    const key = `${change}/${roomId}/${userId}`;
    const now = Date.now();
    const last = announced.get(key);
    if (again && last !== undefined && now - last < REANNOUNCE_EVERY_MS) return;
    // Recorded only once published: a retry after a failed announcement always announces. Again
    // (nothing changed now): told to the user's own connections in the room alone (`userOnly`),
    // never to the members, who would hear of a change that may never have happened (the removal
    // of somebody never in the room, the addition of a member of long standing).
    await announceMembership(roomId, userId, change, again);
    if (announced.size >= REANNOUNCED_MAX) {
      for (const [k, at] of announced) if (now - at >= REANNOUNCE_EVERY_MS) announced.delete(k);
    }
    // Full of recent ones: not remembered (the next retry announces again; never skipped).
    if (announced.size < REANNOUNCED_MAX) announced.set(key, now);
  };

  /** Tells the room's members (and the gateways) that these users joined; after the commit. */
  const announceJoined = async (roomId: RoomId, userIds: readonly UserId[]) => {
    for (const id of userIds) await announceMembership(roomId, id, 'added');
  };

  /**
   * Creates a room, or opens the pair's direct room, inside the caller's transaction: every read and
   * write goes through `trx` (on the embedded database, with one connection, a read through the root
   * handle while `trx` is open waits for good). Opening a direct room that exists brings back whoever
   * of the two left it, if the other still consents (has the opener as a contact) and the room limit
   * allows; `joined` names them, to pass to `announceJoined` once `trx` has committed.
   */
  async function createIn(
    trx: Transaction<Database>,
    creator: UserId,
    input: CreateRoomInput,
  ): Promise<{ room: ReturnType<typeof toRoom>; created: boolean; joined: readonly UserId[] }> {
    const others = [...new Set(input.memberIds)].filter((id) => id !== creator);
    // `memberIds` names the OTHER members (PROTOCOL.md: 1–500 of them, your own id ignored): a group
    // naming only its creator would be a room of one, and count against their ROOMS_MAX_PER_USER.
    if (input.kind === 'group' && others.length === 0) {
      throw new AppError('VALIDATION_FAILED', 'a group room needs at least one other member', {
        details: { errors: [{ path: 'body.memberIds', message: 'must name at least one other user' }] },
      });
    }
    for (const id of others) {
      const user = await findUserById(trx, id);
      if (user === undefined || user.locked_at !== null) {
        throw new AppError('VALIDATION_FAILED', 'unknown member', {
          details: { errors: [{ path: 'body.memberIds', message: `no user ${id}` }] },
        });
      }
    }
    if (input.kind === 'group') {
      await assertConsent(trx, creator, others);
      const memberIds = [creator, ...others];
      await lockUsers(trx, memberIds);
      await assertRoomLimit(trx, memberIds);
      const row = await insertRoom(trx, {
        kind: 'group',
        title: input.title ?? null,
        createdBy: creator,
        directKey: null,
      });
      await addRoomMembers(trx, row.id, memberIds);
      return { room: toRoom(row, memberIds), created: true, joined: [] };
    }
    if (others.length !== 1) {
      throw new AppError('VALIDATION_FAILED', 'a direct room has exactly one other member', {
        details: { errors: [{ path: 'body.memberIds', message: 'must name exactly one other user' }] },
      });
    }
    const [other] = others as [UserId];
    const pair = [creator, other];
    const directKey = [creator, other].sort().join(':');
    let existing = await findDirectRoom(trx, directKey);
    if (existing === undefined) {
      await assertConsent(trx, creator, [other]);
      await lockUsers(trx, pair);
      // Both users created it at the same moment: the other creation held these locks and has
      // committed by now (each statement reads what is committed when it starts).
      existing = await findDirectRoom(trx, directKey);
      if (existing === undefined) {
        await assertRoomLimit(trx, pair);
        const row = await insertRoom(trx, { kind: 'direct', title: null, createdBy: creator, directKey });
        await addRoomMembers(trx, row.id, pair);
        return { room: toRoom(row, pair), created: true, joined: [] };
      }
    }
    const members = new Set((await roomMembers(trx, existing.id)).map((m) => m.userId));
    const missing = pair.filter((id) => !members.has(id));
    if (missing.length > 0) {
      await assertConsent(trx, creator, [other]);
      await lockUsers(trx, missing);
      await assertRoomLimit(trx, missing);
      await addRoomMembers(trx, existing.id, missing);
    }
    return { room: toRoom(existing, pair), created: false, joined: missing };
  }

  return {
    memberRoom,

    /**
     * Whether `userId` is a member of `roomId` (false also when the room does not exist): one
     * primary-key lookup, cheap enough to run before anything is loaded for the room.
     */
    isMember: (userId: UserId, roomId: RoomId) => isRoomMember(db, roomId, userId),

    createIn,
    announceJoined,

    /** @returns the room and whether it was created now (false: the existing direct room). */
    async create(creator: UserId, input: CreateRoomInput) {
      const { room, created, joined } = await db
        .transaction()
        .execute((trx) => createIn(trx, creator, input));
      await announceJoined(room.id, joined);
      return { room, created };
    },

    async get(userId: UserId, roomId: RoomId) {
      const { room, members } = await memberRoom(userId, roomId);
      return toRoom(
        room,
        members.map((m) => m.userId),
      );
    },

    /** A page of the caller's rooms, newest membership first; `nextCursor` null on the last page. */
    async list(userId: UserId, page: { readonly cursor?: string | undefined; readonly limit: number }) {
      const rows = await roomsOfUser(db, userId, {
        after: decodeRoomCursor(page.cursor),
        limit: page.limit + 1,
      });
      // Cut by bytes too (ROOM_LIST_PAGE_MAX_BYTES, at least one room): every summary carries its
      // room's last message, so `limit` of them could be many megabytes.
      const data = [];
      let bytes = 0;
      let shown = 0;
      for (const row of rows.slice(0, page.limit)) {
        const summary = {
          id: row.room.id,
          kind: row.room.kind,
          title: row.room.title,
          lastSeq: Number(row.room.last_seq),
          lastReadSeq: row.lastReadSeq,
          unread: row.unread,
          lastMessage: row.lastMessage === undefined ? null : toRoomMessage(row.lastMessage),
        };
        bytes += Buffer.byteLength(JSON.stringify(summary), 'utf8');
        if (bytes > ROOM_LIST_PAGE_MAX_BYTES && shown > 0) break;
        data.push(summary);
        shown += 1;
      }
      const last = rows[shown - 1];
      return {
        data,
        nextCursor:
          rows.length > shown && last !== undefined
            ? encodeRoomCursor({ joinedAtUs: last.joinedAtUs, roomId: last.room.id })
            : null,
      };
    },

    async addMember(actor: UserId, roomId: RoomId, userId: UserId): Promise<void> {
      const { room } = await memberRoom(actor, roomId);
      if (room.kind !== 'group') throw new AppError('CONFLICT', 'only group rooms change members');
      const user = await findUserById(db, userId);
      if (user === undefined || user.locked_at !== null) throw new AppError('NOT_FOUND', 'no such user');
      if (userId !== actor) await assertConsent(db, actor, [userId]);
      const added = await db.transaction().execute(async (trx) => {
        await lockUsers(trx, [userId]);
        // Adding an existing member changes nothing and is not refused by the limit.
        if (await isRoomMember(trx, roomId, userId)) return false;
        await assertRoomLimit(trx, [userId]);
        // As many as a room can be created with: every member's send fans out to all the others.
        if ((await lockRoomMemberCount(trx, roomId)) >= MAX_GROUP_MEMBERS) {
          throw new AppError('CONFLICT', `a group room has at most ${MAX_GROUP_MEMBERS} members`, {
            details: { reason: 'ROOM_FULL', limit: MAX_GROUP_MEMBERS },
          });
        }
        await addRoomMembers(trx, roomId, [userId]);
        return true;
      });
      // Already a member: a retry of an addition whose announcement failed (503) announces it again,
      // to the added user's own joined connections alone (the members heard of it, or it is old).
      await announceChange(roomId, userId, 'added', !added);
    },

    async removeMember(actor: UserId, roomId: RoomId, userId: UserId): Promise<void> {
      // Leaving a room you are not in is done already: a DELETE retried after its 204 was lost (or
      // retried by the client library itself: DELETE is idempotent) answered 403, telling the user
      // their leave failed. Unknown and foreign rooms answer alike, so this tells nothing either.
      // The removal is announced again, though: a DELETE that answered 503 because the bus
      // publish failed after the commit is retried, and that retry is what tells the gateways to
      // stop pushing the room to the removed user's sockets (review 21c).
      if (actor === userId && !(await isRoomMember(db, roomId, actor))) {
        // Unknown and foreign rooms alike (nobody hears an unknown room's topic): nothing told apart.
        await announceChange(roomId, userId, 'removed', true);
        return;
      }
      const { room } = await memberRoom(actor, roomId);
      if (room.kind !== 'group') {
        // Nobody is put out of a direct or job room, but everyone may leave one they are done with
        // (a job room once its contract ended): otherwise the rooms one no longer wants, or the
        // ended contracts of an active worker, would hold them at ROOMS_MAX_PER_USER for good.
        if (actor !== userId)
          throw new AppError('CONFLICT', `nobody removes another member of a ${room.kind} room`);
        if (
          room.kind === 'job' &&
          !ENDED_CONTRACT_STATES.has((await contractStateOfRoom(db, roomId)) ?? '')
        ) {
          throw new AppError('CONFLICT', 'a job room can be left once its contract has ended', {
            details: { reason: 'CONTRACT_RUNNING' },
          });
        }
      }
      if (actor !== userId && room.created_by !== actor) {
        throw new AppError('FORBIDDEN', 'only the creator removes other members');
      }
      // Not a member (any more): a retry of a removal whose announcement failed announces it again.
      await announceChange(roomId, userId, 'removed', !(await removeRoomMember(db, roomId, userId)));
    },

    async history(
      userId: UserId,
      roomId: RoomId,
      beforeSeq: number | undefined,
      limit: number,
    ): Promise<HistoryPage> {
      await memberRoom(userId, roomId);
      // One more than asked: whether older messages exist (nextBeforeSeq), without a second query.
      const rows = (await messagesBefore(db, roomId, beforeSeq, limit + 1)).map(toRoomMessage);
      return cutHistoryPage(rows, limit, HISTORY_PAGE_MAX_BYTES);
    },
  };
}

export type RoomService = ReturnType<typeof createRoomService>;
