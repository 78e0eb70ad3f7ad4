/**
 * Review 29: the record of a task out of attempts (or failed for good) on a mail that another run
 * of the same key (an enqueue of the key, an operator's retry) sent meanwhile. The `emails` table is
 * a twin holding one row: reads answer it, updates apply their `set` to it where their `where`s hold.
 */
import { describe, expect, it } from 'vitest';
import type { EmailId, UserId } from '../../../protocol/src/ids.js';
import type { EmailRow } from '../../db/repositories/outbox.repo.js';
import { createLogger } from '../../platform/logger.js';
import { emailsTableTwin } from './emails-table.testing.js';
import { recordFinalEmailFailure } from './processor.js';

const log = createLogger({ level: 'fatal', pretty: false, destination: { write: () => undefined } });

describe('a task out of attempts whose mail another run of its key sent meanwhile', () => {
  it('leaves the mail sent (a mail recorded failed would be sent again by a retry); a pending one becomes failed', async () => {
    const stored = (status: EmailRow['status']) => ({
      id: '6f1c2a8e-0c1d-4b6e-9a53-1d2f3e4a5b6c' as EmailId,
      idempotency_key: 'r29.welcome',
      template: 'welcome',
      user_id: '0b6a3f2e-5d4c-4e1b-8a9f-7c6d5e4f3a2b' as UserId,
      to_address: 'someone@example.test',
      subject: 'a mail',
      text_body: status === 'sent' ? null : 'text',
      html_body: status === 'sent' ? null : '<p>html</p>',
      status,
      attempts: 1,
      last_error: null,
      sent_at: status === 'sent' ? new Date() : null,
      created_at: new Date(Date.now() - 60_000),
    });
    const job = {
      id: 'emails.send:r29.welcome',
      data: { template: 'welcome', userId: '0b6a3f2e-5d4c-4e1b-8a9f-7c6d5e4f3a2b', key: 'r29.welcome' },
    };
    const failure = new Error('Connection terminated unexpectedly');

    const sent = stored('sent');
    await recordFinalEmailFailure(
      { db: emailsTableTwin(sent).db, clock: { now: () => new Date() }, log },
      job,
      failure,
    );
    expect(sent).toMatchObject({ status: 'sent', last_error: null, attempts: 1 });

    const pending = stored('pending');
    await recordFinalEmailFailure(
      { db: emailsTableTwin(pending).db, clock: { now: () => new Date() }, log },
      job,
      failure,
    );
    expect(pending).toMatchObject({ status: 'failed', last_error: failure.message, attempts: 2 });
  });
});
