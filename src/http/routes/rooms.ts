/** /v1/rooms: create, list, get, group members, history (newest first). */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import { Problem } from '../../../protocol/src/rest/common.js';
import {
  CreateRoomRequest,
  HISTORY_PAGE_MAX_BYTES,
  MessageList,
  ROOM_LIST_PAGE_MAX_BYTES,
  Room,
  RoomHistoryQuery,
  RoomList,
  RoomListQuery,
  RoomMemberParams,
  RoomParams,
} from '../../../protocol/src/rest/rooms.js';
import type { RoomService } from '../../domain/rooms/service.js';
import { IDEMPOTENCY_KEY_HEADER, type IdempotencyDeps, runIdempotentRoute } from '../idempotency.js';
import { principalOf } from '../plugins/auth.js';

export interface RoomRoutesDeps {
  readonly rooms: RoomService;
  /** The optional Idempotency-Key of POST /v1/rooms. */
  readonly idempotency: IdempotencyDeps;
}

const errors = { 400: Problem, 401: Problem, 403: Problem, 404: Problem, 409: Problem };
const tags = ['rooms'];

export function registerRoomRoutes(app: FastifyInstance, deps: RoomRoutesDeps): void {
  const { rooms } = deps;
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/v1/rooms', {
    config: { auth: 'user' },
    schema: {
      tags,
      operationId: 'createRoom',
      summary: 'Create a room (optional Idempotency-Key)',
      description:
        'A second direct room for the same pair answers 200 with the existing one. Every other member must have added you as a contact (403 FORBIDDEN, `details.userIds`, otherwise); a member already in ROOMS_MAX_PER_USER rooms answers 409 ROOM_LIMIT_REACHED. A direct room has no title (400 VALIDATION_FAILED naming `body.title`). `memberIds` names the other members (your own id is ignored): a group naming nobody but you is 400 VALIDATION_FAILED naming `body.memberIds`. With an `Idempotency-Key` header, a retry of the same request (same key, same body) after a lost answer replays the first answer (`idempotent-replayed: true`) instead of creating a second group room; the same key with another body is 422 `IDEMPOTENCY_KEY_REUSED`. Without one, every group request creates a room.',
      headers: z.looseObject({
        [IDEMPOTENCY_KEY_HEADER]: z.string().optional().meta({
          description:
            'Optional: 1-255 visible ASCII characters naming this creation. A retry with the same key and the same body replays the first answer (`idempotent-replayed: true`), never a second room; the same key with another body is 422 IDEMPOTENCY_KEY_REUSED; an empty or too long key is 400.',
        }),
      }),
      body: CreateRoomRequest,
      response: { 200: Room, 201: Room, ...errors, 422: Problem },
    },
    handler: async (request, reply) => {
      const creator = principalOf(request).userId;
      if (request.headers[IDEMPOTENCY_KEY_HEADER] === undefined) {
        const { room, created } = await rooms.create(creator, request.body);
        return reply.status(created ? 201 : 200).send(room);
      }
      // Every read and write in the key's transaction: on the embedded database (one connection) a
      // read through the root handle while it is open would wait for good.
      let joined: { roomId: RoomId; userIds: readonly UserId[] } | undefined;
      const sent = await runIdempotentRoute(deps.idempotency, request, reply, creator, async (trx) => {
        const result = await rooms.createIn(trx, creator, request.body);
        joined = { roomId: result.room.id, userIds: result.joined };
        return { status: result.created ? 201 : 200, body: result.room };
      });
      // After the commit (never on a replay): whoever an opened direct room brought back.
      if (joined !== undefined) await rooms.announceJoined(joined.roomId, joined.userIds);
      return sent;
    },
  });

  r.get('/v1/rooms', {
    config: { auth: 'user' },
    schema: {
      tags,
      operationId: 'listRooms',
      summary: 'My rooms with last message and unread count',
      description: `Newest membership first, in pages of \`limit\` (default and most 500) and at most ${ROOM_LIST_PAGE_MAX_BYTES / 1024 / 1024} MiB of JSON (each room carries its last message: a page of large ones holds fewer than \`limit\`, at least one); pass \`nextCursor\` back as \`cursor\` for the next page, until it is null. The order never changes while paging, so every room is listed once.`,
      querystring: RoomListQuery,
      response: { 200: RoomList, ...errors },
    },
    handler: async (request) => rooms.list(principalOf(request).userId, request.query),
  });

  r.get('/v1/rooms/:id', {
    config: { auth: 'user' },
    schema: {
      tags,
      operationId: 'getRoom',
      summary: 'A room I am a member of',
      params: RoomParams,
      response: { 200: Room, ...errors },
    },
    handler: async (request) => rooms.get(principalOf(request).userId, request.params.id),
  });

  r.post('/v1/rooms/:id/members/:userId', {
    config: { auth: 'user' },
    schema: {
      tags,
      operationId: 'addRoomMember',
      summary: 'Add a member to a group room',
      description:
        "The user must have added you as a contact (403 FORBIDDEN otherwise); a user already in ROOMS_MAX_PER_USER rooms answers 409 ROOM_LIMIT_REACHED; a room with 501 members already (its creator and the 500 others a create may name) answers 409 CONFLICT reason ROOM_FULL. Idempotent: adding a member changes nothing and is 204 too. A 503 after the addition was stored (it could not be announced) is to be retried: adding a member announces the addition again to that user alone (a `room.member` push to their own connections in the room, at most one every 5 s per user and room; the room's members get nothing).",
      params: RoomMemberParams,
      response: { 204: z.null(), ...errors },
    },
    handler: async (request, reply) => {
      await rooms.addMember(principalOf(request).userId, request.params.id, request.params.userId);
      return reply.status(204).send(null);
    },
  });

  r.delete('/v1/rooms/:id/members/:userId', {
    config: { auth: 'user' },
    schema: {
      tags,
      operationId: 'removeRoomMember',
      summary: 'Remove a member (yourself, or anyone if you created the group)',
      description:
        "Idempotent: removing yourself from a room you are not in (a retry whose 204 was lost) is 204 too, for unknown and foreign rooms alike. A 503 after the removal was stored (it could not be announced) is to be retried: removing a non-member announces the removal again to that user alone (a `room.member` push to their own connections still in the room, at most one every 5 s per user and room; the room's members get nothing), which takes the removed user's connections out of the room.",
      params: RoomMemberParams,
      response: { 204: z.null(), ...errors },
    },
    handler: async (request, reply) => {
      await rooms.removeMember(principalOf(request).userId, request.params.id, request.params.userId);
      return reply.status(204).send(null);
    },
  });

  r.get('/v1/rooms/:id/messages', {
    config: { auth: 'user' },
    schema: {
      tags,
      operationId: 'listRoomMessages',
      summary: 'Stored messages, newest first',
      description: `Pass \`nextBeforeSeq\` back as \`beforeSeq\` for older ones (null: none left). A page holds at most \`limit\` messages and at most ${HISTORY_PAGE_MAX_BYTES / 1024} KiB of them as JSON, as the WebSocket's \`room.history\`: a page of large messages holds fewer than \`limit\` (at least one) and is not the last unless \`nextBeforeSeq\` is null.`,
      params: RoomParams,
      querystring: RoomHistoryQuery,
      response: { 200: MessageList, ...errors },
    },
    handler: async (request) =>
      rooms.history(
        principalOf(request).userId,
        request.params.id,
        request.query.beforeSeq,
        request.query.limit,
      ),
  });
}
