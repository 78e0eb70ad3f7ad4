/** Operator views: every account (locked ones too) and the email log / outbox. */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database.js';
import { type EmailRow, listEmails } from '../../db/repositories/outbox.repo.js';
import { searchUsers, type UserRow } from '../../db/repositories/users.repo.js';
import { decodeCursor, pageOf } from '../pagination.js';
import { toMe } from '../users/dto.js';

const toAdminUser = (row: UserRow) => ({ ...toMe(row), lockedAt: row.locked_at?.toISOString() ?? null });

/** Templates whose body carries a live single-use token (verify email, reset password). */
const TOKEN_TEMPLATES: ReadonlySet<string> = new Set(['verify-email', 'reset-password']);

/**
 * A mail as operators see it. The body of a token mail is shown only in the outbox (no SMTP_URL:
 * reading it here is how mail is delivered then, as the start announces); a pending or failed
 * one's token is live, and any admin reading it could reset another user's password.
 */
const toEmail = (row: EmailRow) => {
  const bodyShown = row.status === 'outbox' || !TOKEN_TEMPLATES.has(row.template);
  return {
    id: row.id,
    template: row.template,
    to: row.to_address,
    subject: row.subject,
    status: row.status,
    attempts: row.attempts,
    text: bodyShown ? row.text_body : null,
    html: bodyShown ? row.html_body : null,
    createdAt: row.created_at.toISOString(),
    sentAt: row.sent_at?.toISOString() ?? null,
  };
};

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
          after: decodeCursor('admin-users', query.cursor),
          limit: query.limit + 1,
        },
        true,
      );
      return pageOf('admin-users', rows, query.limit, toAdminUser);
    },
    async listEmails(query: { cursor?: string | undefined; limit: number }) {
      const rows = await listEmails(db, decodeCursor('admin-emails', query.cursor), query.limit + 1);
      return pageOf('admin-emails', rows, query.limit, toEmail);
    },
  };
}

export type AdminService = ReturnType<typeof createAdminService>;
