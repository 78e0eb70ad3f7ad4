/** Operator endpoints (role admin). */
import { z } from 'zod';
import { Cursor, Iso, PageLimit, page } from './common.js';
import { Me } from './users.js';

export const AdminUser = Me.extend({ lockedAt: Iso.nullable() }).meta({ id: 'AdminUser' });
export const AdminUserPage = page(AdminUser).meta({ id: 'AdminUserPage' });

export const AdminListQuery = z.strictObject({ cursor: Cursor.optional(), limit: PageLimit });

export const Email = z
  .object({
    id: z.uuid(),
    template: z.string(),
    to: z.string(),
    subject: z.string(),
    status: z.enum(['pending', 'sent', 'outbox', 'failed']),
    attempts: z.number().int(),
    text: z
      .string()
      .nullable()
      .describe(
        'Kept for `outbox` mails (no SMTP_URL); cleared once sent over SMTP; null for a verify or reset mail not yet sent (its token is live).',
      ),
    html: z.string().nullable(),
    createdAt: Iso,
    sentAt: Iso.nullable(),
  })
  .meta({ id: 'Email' });
export const EmailPage = page(Email).meta({ id: 'EmailPage' });
