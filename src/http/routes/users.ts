/**
 * /v1/me, /v1/users and /v1/me/contacts. The JSON answers are written by the compiled serializer
 * (`../serializer.ts`): their bodies come from the typed DTOs of domain/users.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { Problem } from '../../../protocol/src/rest/common.js';
import {
  ContactList,
  ContactParams,
  Me,
  UpdateMeRequest,
  UserIdParams,
  UserPage,
  UserProfile,
  UserSearchQuery,
} from '../../../protocol/src/rest/users.js';
import type { UserService } from '../../domain/users/service.js';
import { principalOf } from '../plugins/auth.js';
import { compiledSerializerCompiler } from '../serializer.js';

const errors = { 400: Problem, 401: Problem, 404: Problem };

export function registerUserRoutes(app: FastifyInstance, users: UserService): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/v1/me', {
    config: { auth: 'user' },
    serializerCompiler: compiledSerializerCompiler,
    schema: {
      tags: ['profiles'],
      operationId: 'getMe',
      summary: "The caller's own profile",
      response: { 200: Me, ...errors },
    },
    handler: async (request) => users.getMe(principalOf(request).userId),
  });

  r.patch('/v1/me', {
    config: { auth: 'user' },
    serializerCompiler: compiledSerializerCompiler,
    schema: {
      tags: ['profiles'],
      operationId: 'updateMe',
      summary: "Update the caller's profile",
      description: 'Only the given fields change; null clears a field.',
      body: UpdateMeRequest,
      response: { 200: Me, ...errors },
    },
    handler: async (request) => users.updateMe(principalOf(request).userId, request.body),
  });

  r.get('/v1/users', {
    config: { auth: 'user' },
    serializerCompiler: compiledSerializerCompiler,
    schema: {
      tags: ['profiles'],
      operationId: 'searchUsers',
      summary: 'Search workers',
      description: 'Newest first; pass `nextCursor` back as `cursor` for the next page.',
      querystring: UserSearchQuery,
      response: { 200: UserPage, ...errors },
    },
    handler: async (request) => users.searchWorkers(request.query),
  });

  r.get('/v1/users/:id', {
    config: { auth: 'user' },
    serializerCompiler: compiledSerializerCompiler,
    schema: {
      tags: ['profiles'],
      operationId: 'getUser',
      summary: "A user's public profile (no email); presence only for mutual contacts",
      description:
        '`presence` (status and lastSeenAt) is included only when you and the user added each other as contacts, or for yourself. The money totals of `performance` (`totalEarned`, `totalSpent`) only in your own profile (and to admins): contract amounts are private to their two parties. `roles` lists `worker` and `hirer` only, never `admin` (who moderates is not public; GET /v1/me shows your own).',
      params: UserIdParams,
      response: { 200: UserProfile, ...errors },
    },
    handler: async (request) => users.getUser(principalOf(request), request.params.id),
  });

  r.get('/v1/me/contacts', {
    config: { auth: 'user' },
    serializerCompiler: compiledSerializerCompiler,
    schema: {
      tags: ['contacts'],
      operationId: 'listContacts',
      summary: "The caller's contacts",
      response: { 200: ContactList, ...errors },
    },
    handler: async (request) => users.listContacts(principalOf(request).userId),
  });

  r.post('/v1/me/contacts/:userId', {
    config: { auth: 'user' },
    schema: {
      tags: ['contacts'],
      operationId: 'addContact',
      summary: 'Add a contact (idempotent)',
      description:
        "Contacts are one-sided until the other user adds you back: mutual contacts see each other's presence, and a user can put you into a room only after you added them. At most CONTACTS_MAX_PER_USER contacts: one more answers 409 CONFLICT (`details.limit`); re-adding an existing contact is always 204.",
      params: ContactParams,
      // 409: the CONTACTS_MAX_PER_USER cap (the description says so; the document must too).
      response: { 204: z.null(), ...errors, 409: Problem },
    },
    handler: async (request, reply) => {
      await users.addContact(principalOf(request).userId, request.params.userId);
      return reply.status(204).send(null);
    },
  });

  r.delete('/v1/me/contacts/:userId', {
    config: { auth: 'user' },
    schema: {
      tags: ['contacts'],
      operationId: 'removeContact',
      summary: 'Remove a contact (idempotent)',
      description: 'Presence between the two stops at once, in both directions.',
      params: ContactParams,
      response: { 204: z.null(), ...errors },
    },
    handler: async (request, reply) => {
      await users.removeContact(principalOf(request).userId, request.params.userId);
      return reply.status(204).send(null);
    },
  });
}
