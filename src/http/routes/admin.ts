/** /v1/admin/*: operator endpoints (role admin). */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { UserId } from '../../../protocol/src/ids.js';
import { AdminListQuery, AdminUserPage, EmailPage } from '../../../protocol/src/rest/admin.js';
import { Problem } from '../../../protocol/src/rest/common.js';
import { UserIdParams } from '../../../protocol/src/rest/users.js';
import type { AdminService } from '../../domain/admin/service.js';
import type { AuthService } from '../../domain/auth/service.js';
import { principalOf } from '../plugins/auth.js';

const errors = { 400: Problem, 401: Problem, 403: Problem, 404: Problem };
const tags = ['admin'];

export function registerAdminRoutes(
  app: FastifyInstance,
  admin: AdminService,
  auth: AuthService,
  /** After a lock: what the account leaves behind elsewhere (its open jobs and pending bids). */
  onLocked?: (userId: UserId) => Promise<unknown>,
): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/v1/admin/users', {
    config: { auth: 'admin' },
    schema: {
      tags,
      operationId: 'listUsers',
      summary: 'Every account, locked ones too',
      querystring: AdminListQuery,
      response: { 200: AdminUserPage, ...errors },
    },
    handler: async (request) => admin.listUsers(request.query),
  });

  for (const action of ['lock', 'unlock'] as const) {
    r.post(`/v1/admin/users/:id/${action}`, {
      config: { auth: 'admin' },
      schema: {
        tags,
        operationId: action === 'lock' ? 'lockUser' : 'unlockUser',
        summary:
          action === 'lock'
            ? 'Lock an account: it cannot log in, its sessions end now, its open jobs close and its pending bids are withdrawn. Your own account: 409 CONFLICT reason SELF_LOCK'
            : 'Unlock an account',
        params: UserIdParams,
        response: { 204: z.null(), ...errors, 409: Problem },
      },
      handler: async (request, reply) => {
        const by = principalOf(request).userId;
        await auth.setLocked(request.params.id, action === 'lock', by);
        // Who locked or unlocked whom, for the record (an operator can read it in the logs).
        request.log.info({ by, userId: request.params.id, action }, `account ${action}ed by an admin`);
        if (action === 'lock') await onLocked?.(request.params.id);
        return reply.status(204).send(null);
      },
    });
  }

  r.get('/v1/admin/emails', {
    config: { auth: 'admin' },
    schema: {
      tags,
      operationId: 'listEmails',
      summary: 'Emails sent or waiting (the outbox when SMTP_URL is unset)',
      querystring: AdminListQuery,
      response: { 200: EmailPage, ...errors },
    },
    handler: async (request) => admin.listEmails(request.query),
  });
}
