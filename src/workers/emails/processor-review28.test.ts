/**
 * Review 28: the email task and a stored mail whose account was deleted since (an operator's
 * erasure sets its `user_id` null, e.g. while an SMTP outage kept it pending). The `emails` table
 * is a twin that answers the stored row to every read and keeps what every update sets; the
 * transport records what it is asked to send.
 */
import { describe, expect, it } from 'vitest';
import type { EmailId, UserId } from '../../../protocol/src/ids.js';
import type { EmailRow } from '../../db/repositories/outbox.repo.js';
import { createLogger } from '../../platform/logger.js';
import type { EmailTemplate } from '../../platform/queues/tasks.js';
import type { Redis } from '../../platform/redis.js';
import { emailsTableTwin } from './emails-table.testing.js';
import { type EmailWorkerDeps, sendEmailTask } from './processor.js';
import type { OutgoingMail } from './transport.js';

const log = createLogger({ level: 'fatal', pretty: false, destination: { write: () => undefined } });

describe('a stored mail whose account was deleted since', () => {
  it('is not sent, whatever its template: recorded failed with the reason, as the lost-mail sweep settles it', async () => {
    const templates: readonly Exclude<EmailTemplate, 'notification-digest'>[] = [
      'welcome',
      'verify-email',
      'reset-password',
      'registration-attempt',
    ];
    for (const template of templates) {
      // Stored, deferred by the server, then its account erased: pending, with its address.
      const { db, updates } = emailsTableTwin({
        id: '6f1c2a8e-0c1d-4b6e-9a53-1d2f3e4a5b6c' as EmailId,
        idempotency_key: `r28.${template}`,
        template,
        user_id: null,
        to_address: 'erased@example.test',
        subject: 'a mail',
        text_body: 'text',
        html_body: '<p>html</p>',
        status: 'pending',
        attempts: 1,
        last_error: '451 4.3.0 try again later',
        sent_at: null,
        created_at: new Date(Date.now() - 60_000),
      } as EmailRow);
      const sent: OutgoingMail[] = [];
      const deps: EmailWorkerDeps = {
        db,
        auth: {} as EmailWorkerDeps['auth'],
        transport: {
          kind: 'smtp',
          send: async (mail) => {
            sent.push(mail);
          },
          close: () => undefined,
        },
        clock: { now: () => new Date() },
        log,
        connection: { exists: async () => 0, del: async () => 0, set: async () => 'OK' } as unknown as Redis,
        redisPrefix: 'r28',
        publicUrl: 'https://gigwire.example',
        mailFrom: 'gigwire <noreply@gigwire.example>',
        lockMs: 30_000,
      };
      // The task's retry once the server takes mail again (its payload keeps the old user id).
      await sendEmailTask(deps, {
        template,
        userId: '0b6a3f2e-5d4c-4e1b-8a9f-7c6d5e4f3a2b' as UserId,
        key: `r28.${template}`,
      });
      expect({ template, sent: sent.length }).toEqual({ template, sent: 0 });
      expect(updates).toEqual([
        expect.objectContaining({ status: 'failed', last_error: 'the account no longer exists' }),
      ]);
    }
  });
});
