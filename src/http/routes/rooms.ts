/** /v1/rooms: create, list, get, group members, history (newest first). */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { Problem } from '../../../protocol/src/rest/common.js';
import {
  CreateRoomRequest,
  MessageList,
  Room,
  RoomHistoryQuery,
  RoomList,
  RoomListQuery,
  RoomMemberParams,
  RoomParams,
} from '../../../protocol/src/rest/rooms.js';
import type { RoomService } from '../../domain/rooms/service.js';
import { principalOf } from '../plugins/auth.js';

const errors = { 400: Problem, 401: Problem, 403: Problem, 404: Problem, 409: Problem };
const tags = ['rooms'];

export function registerRoomRoutes(app: FastifyInstance, rooms: RoomService): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/v1/rooms', {
    config: { auth: 'user' },
    schema: {
      tags,
      operationId: 'createRoom',
      summary: 'Create a room',
      description:
        'A second direct room for the same pair answers 200 with the existing one. Every other member must have added you as a contact (403 FORBIDDEN, `details.userIds`, otherwise); a member already in ROOMS_MAX_PER_USER rooms answers 409 ROOM_LIMIT_REACHED.',
      body: CreateRoomRequest,
      response: { 200: Room, 201: Room, ...errors },
    },
    handler: async (request, reply) => {
      const { room, created } = await rooms.create(principalOf(request).userId, request.body);
      return reply.status(created ? 201 : 200).send(room);
    },
  });

  r.get('/v1/rooms', {
    config: { auth: 'user' },
    schema: {
      tags,
      operationId: 'listRooms',
      summary: 'My rooms with last message and unread count',
      description:
        'Newest membership first, in pages of `limit` (default and most 500); pass `nextCursor` back as `cursor` for the next page. The order never changes while paging, so every room is listed once.',
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
        'The user must have added you as a contact (403 FORBIDDEN otherwise); a user already in ROOMS_MAX_PER_USER rooms answers 409 ROOM_LIMIT_REACHED; a room with 501 members already (its creator and the 500 others a create may name) answers 409 CONFLICT reason ROOM_FULL.',
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
      description: 'Pass the smallest seq you have as beforeSeq for older ones.',
      params: RoomParams,
      querystring: RoomHistoryQuery,
      response: { 200: MessageList, ...errors },
    },
    handler: async (request) => ({
      data: await rooms.history(
        principalOf(request).userId,
        request.params.id,
        request.query.beforeSeq,
        request.query.limit,
      ),
    }),
  });
}
