/**
 * Notify review 21: a mail whose `emails.send` task was lost stayed `pending` for good. The task
 * lives only in Redis: a Redis restarted without its data or failed over to a replica behind, an
 * operator removing the task, a trimmed failed set, or a worker dying between storing a digest
 * mail and enqueuing its task left the stored mail unsent, and retention keeps pending mail for
 * ever. Now email workers queue the task of every mail pending for LOST_MAIL_AFTER_MS again when it
 * is gone, and only then: not while it is delayed for a retry, not for a mail stored a moment ago,
 * and not for one whose task failed after the server accepted it unrecorded (a resend: the sweep
 * records that one `sent`). Real
 * PostgreSQL, Redis, BullMQ and SMTP; the real email worker (its sweep every 100 ms here).
 */
import { UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import type { EmailRow } from '../../src/db/repositories/outbox.repo.js';
import { insertEmailOnce } from '../../src/db/repositories/outbox.repo.js';
import type { AuthService } from '../../src/domain/auth/service.js';
import { systemClock } from '../../src/platform/clock.js';
import { bullPrefix, createTaskQueue, type TaskQueue, taskId } from '../../src/platform/queues/tasks.js';
import {
  LOST_MAIL_AFTER_MS,
  requeueLostEmails,
  startEmailWorker,
} from '../../src/workers/emails/processor.js';
import { createMailTransport } from '../../src/workers/emails/transport.js';
import { captureLogs, sharedRedisUrl, uniqueRedisPrefix } from '../support/context.js';
import { insertActor, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';
import { untilDefined } from '../support/poll.js';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.js';

describe('a pending mail whose task was lost', () => {
  let t: PaymentsTestDb;
  let redis: Redis;
  let taskQueue: TaskQueue;
  let smtp: TestSmtpServer;
  const logs = captureLogs();
  const redisPrefix = uniqueRedisPrefix();

  beforeAll(async () => {
    t = await openPaymentsTestDb(4);
    redis = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: null });
    taskQueue = createTaskQueue(redis, redisPrefix);
    smtp = await startSmtpServer();
  });
  afterAll(async () => {
    await taskQueue?.close();
    redis?.disconnect();
    await smtp?.close();
    await t?.close();
  });

  /** A `welcome` mail stored `pending` `ageMs` ago, with no task anywhere. */
  const pendingMail = async (label: string, ageMs: number): Promise<EmailRow> => {
    const { userId } = await insertActor(t.db, label);
    const row = await insertEmailOnce(t.db, {
      idempotencyKey: `welcome.review21.${label}.${userId}`,
      template: 'welcome',
      userId,
      to: `${label}@example.test`,
      subject: `Welcome ${label}`,
      text: 'hello',
      html: '<p>hello</p>',
    });
    await t.db
      .updateTable('emails')
      .set({ created_at: new Date(Date.now() - ageMs) })
      .where('id', '=', row.id)
      .execute();
    return row;
  };
  const statusOf = async (row: EmailRow) =>
    (await t.db.selectFrom('emails').select('status').where('id', '=', row.id).executeTakeFirstOrThrow())
      .status;
  const mailsTo = (row: EmailRow) =>
    smtp.accepted().filter((mail) => mail.messageId === `<${row.id}@gigwire>`);

  it('is queued again and sent once; a live task and a fresh mail are left alone, a sent-unrecorded one recorded', async () => {
    const overdue = LOST_MAIL_AFTER_MS + 60_000;
    const lost = await pendingMail('lost', overdue);
    const retrying = await pendingMail('retrying', overdue);
    const fresh = await pendingMail('fresh', 60_000);
    const unrecorded = await pendingMail('unrecorded', overdue);
    const queue = taskQueue.queues().find((candidate) => candidate.name === 'emails');
    if (queue === undefined) throw new Error('no emails queue');

    // The last run of `unrecorded` had the server accept it, and neither store took the record.
    const task = (row: EmailRow) => ({
      template: 'welcome' as const,
      userId: row.user_id as UserId,
      key: row.idempotency_key,
    });
    await taskQueue.enqueue('emails.send', task(unrecorded), unrecorded.idempotency_key);
    const failer = new Worker(
      'emails',
      async () => {
        throw new UnrecoverableError('email sent but not recorded: Connection terminated unexpectedly');
      },
      { connection: redis, prefix: bullPrefix(redisPrefix) },
    );
    await untilDefined(
      async () =>
        (await queue.getJobState(taskId(unrecorded.idempotency_key))) === 'failed' ? true : undefined,
      'the unrecorded mail task failed',
      5_000,
    );
    await failer.close();
    // `retrying` waits for its next attempt (an SMTP outage): its task is alive, delayed.
    await taskQueue.enqueue('emails.send', task(retrying), retrying.idempotency_key, { delayMs: 3_600_000 });

    const transport = createMailTransport(smtp.url);
    const worker = startEmailWorker({
      db: t.db,
      auth: {} as AuthService, // stored mails only: no token issued
      transport,
      clock: systemClock,
      log: logs.log,
      connection: redis,
      redisPrefix,
      publicUrl: 'http://localhost',
      mailFrom: 'gigwire <noreply@example.test>',
      lockMs: 5_000,
      lostMailSweepMs: 100,
    });
    try {
      await untilDefined(
        async () => ((await statusOf(lost)) === 'sent' ? true : undefined),
        'the lost mail sent',
        8_000,
      );
      // Swept again (two workers at once, as two processes would): nothing more to queue.
      expect(
        await Promise.all([
          requeueLostEmails({ ...workerDeps(), log: logs.log }, taskQueue),
          requeueLostEmails({ ...workerDeps(), log: logs.log }, taskQueue),
        ]),
      ).toEqual([0, 0]);
    } finally {
      await worker.close();
      transport.close();
    }
    expect(mailsTo(lost)).toHaveLength(1);
    for (const row of [retrying, fresh]) {
      expect(await statusOf(row)).toBe('pending');
      expect(mailsTo(row)).toHaveLength(0);
    }
    // Accepted by the server at its task's last run: recorded by the sweep, not sent again (review 33).
    expect(await statusOf(unrecorded)).toBe('sent');
    expect(mailsTo(unrecorded)).toHaveLength(0);
    expect(await queue.getJobState(taskId(retrying.idempotency_key))).toBe('delayed');
    expect(await queue.getJobState(taskId(fresh.idempotency_key))).toBe('unknown');
    expect(await queue.getJobState(taskId(unrecorded.idempotency_key))).toBe('failed');
    expect(
      logs
        .lines()
        .some(
          (line) =>
            line.msg === 'pending emails whose task was gone: their tasks queued again' && line.emails === 1,
        ),
    ).toBe(true);
  });

  const workerDeps = () => ({ db: t.db, clock: systemClock, connection: redis, redisPrefix });
});
