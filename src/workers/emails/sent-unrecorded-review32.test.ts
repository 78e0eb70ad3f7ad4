/**
 * Review 32 (operator): a mail the SMTP server accepted while neither the database nor Redis took
 * the record fails its task for good (MailSentUnrecordedError) and stays `pending`. The console's
 * "Retry" (or "Retry all" of the failed set) then ran the task again, found the mail pending and
 * no note in Redis, and sent it a second time. The task's own stack traces (kept by BullMQ across
 * a retry) say it was sent: the retry records it, never sends it. And once the task has failed for
 * good (BullMQ just wrote to Redis), the mail is recorded `sent`, or else noted in Redis, so that a
 * task of its key that remembers nothing (the console's "Clean" of the failed set, then the
 * lost-mail sweep) does not send it again either.
 */
import { expect, it } from 'vitest';
import type { EmailId, UserId } from '../../../protocol/src/ids.js';
import type { EmailRow } from '../../db/repositories/outbox.repo.js';
import { createLogger } from '../../platform/logger.js';
import type { Redis } from '../../platform/redis.js';
import { emailsTableTwin, pendingWelcomeMail, recordingWorkerDeps } from './emails-table.testing.js';
import {
  type EmailWorkerDeps,
  MailSentUnrecordedError,
  recordFinalEmailFailure,
  sendEmailTask,
} from './processor.js';

const log = createLogger({ level: 'fatal', pretty: false, destination: { write: () => undefined } });

it('records, and does not send again, a mail an earlier attempt of the retried task had accepted', async () => {
  const row = pendingWelcomeMail('r32.welcome', 60_000);
  const { deps, sent } = recordingWorkerDeps(emailsTableTwin(row).db, 'r32');
  const payload = { template: 'welcome', userId: row.user_id as UserId, key: 'r32.welcome' } as const;
  // What BullMQ kept of the attempt that failed for good (the first line of its stack).
  const earlier = [
    'Error: email sent but not recorded: Connection terminated unexpectedly\n    at recordSent (processor.ts:1:1)',
  ];
  await sendEmailTask(deps, payload, earlier);
  expect(sent).toHaveLength(0);
  expect(row).toMatchObject({ status: 'sent' });
  // Any other earlier failure (an SMTP outage) does not stop the send.
  row.status = 'pending';
  await sendEmailTask(deps, payload, ['Error: 421 4.3.2 try again later\n    at send (transport.ts:1:1)']);
  expect(sent).toHaveLength(1);
});

it('records a mail sent but unrecorded when its task fails for good, or else notes it in Redis', async () => {
  const row = {
    id: '6f1c2a8e-0c1d-4b6e-9a53-1d2f3e4a5b6c' as EmailId,
    status: 'pending',
    attempts: 0,
    text_body: 'text',
    html_body: '<p>html</p>',
  } as EmailRow;
  const job = { id: 'r32.welcome', data: { template: 'welcome', userId: 'x', key: 'r32.welcome' } };
  const error = new MailSentUnrecordedError('email sent but not recorded: Connection terminated', row.id);
  const notes: string[] = [];
  const connection = {
    set: async (key: string) => void notes.push(key),
  } as unknown as Redis;
  const clock = { now: () => new Date() };
  await recordFinalEmailFailure(
    { db: emailsTableTwin(row).db, clock, log, connection, redisPrefix: 'r32' },
    job,
    error,
  );
  expect(row).toMatchObject({ status: 'sent', text_body: null });
  expect(notes).toEqual([]);
  // The database still down: the note that later runs of the key read.
  const down = {
    updateTable: () => {
      throw new Error('Connection terminated unexpectedly');
    },
  } as unknown as EmailWorkerDeps['db'];
  await recordFinalEmailFailure({ db: down, clock, log, connection, redisPrefix: 'r32' }, job, error);
  expect(notes).toEqual([`r32:emails:sent-unrecorded:${row.id}`]);
});
