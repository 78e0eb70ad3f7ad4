/** Operator views: every account (locked ones too) and the email log / outbox. */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database.js';
import { type EmailRow, listEmails } from '../../db/repositories/outbox.repo.js';
import { searchUsers, type UserRow } from '../../db/repositories/users.repo.js';
import { decodeCursor, pageOf } from '../pagination.js';
import { toMe } from '../users/dto.js';

const toAdminUser = (row: UserRow) => ({ ...toMe(row), lockedAt: row.locked_at?.toISOString() ?? null });

const toEmail = (row: EmailRow) => ({
  id: row.id,
  template: row.template,
  to: row.to_address,
  subject: row.subject,
  status: row.status,
  attempts: row.attempts,
  text: row.text_body,
  html: row.html_body,
  createdAt: row.created_at.toISOString(),
  sentAt: row.sent_at?.toISOString() ?? null,
});

export function createAdminService(deps: { readonly db: Kysely<Database> }) {
  const { db } = deps;
  return {
    async listUsers(query: { cursor?: string | undefined; limit: number }) {
      const rows = await searchUsers(
        db,
        {
          terms: [],
          skill: undefined,
          location: undefined,
          role: undefined,
          after: decodeCursor(query.cursor),
          limit: query.limit + 1,
        },
        true,
      );
      return pageOf(rows, query.limit, toAdminUser);
    },
    async listEmails(query: { cursor?: string | undefined; limit: number }) {
      const rows = await listEmails(db, decodeCursor(query.cursor), query.limit + 1);
      return pageOf(rows, query.limit, toEmail);
    },
  };
}

export type AdminService = ReturnType<typeof createAdminService>;
