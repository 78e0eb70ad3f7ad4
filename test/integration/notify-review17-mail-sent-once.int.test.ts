/**
 * Notify review 17: a mail the SMTP server accepted but whose `sent` record the database kept
 * refusing stayed `pending`, with its task failed for good; the next run of that task (the same id
 * enqueued again, which retries a failed task with a fresh budget, or an operator's retry) found it
 * `pending` and sent it a second time. Now the worker notes "sent" in Redis at the first failed
 * record, and every later run of the mail only records it. Real PostgreSQL (a trigger refuses the
 * record, as a database failing that one write), real Redis, a real SMTP server.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import type { AuthService } from '../../src/domain/auth/service.js';
import { systemClock } from '../../src/platform/clock.js';
import { sendEmailTask } from '../../src/workers/emails/processor.js';
import { createMailTransport, type MailTransport } from '../../src/workers/emails/transport.js';
import { captureLogs, sharedRedisUrl, uniqueRedisPrefix } from '../support/context.js';
import { insertActor, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.js';

describe('a mail sent whose record failed', () => {
  let t: PaymentsTestDb;
  let redis: Redis;
  let smtp: TestSmtpServer;
  let transport: MailTransport;
  const logs = captureLogs();

  beforeAll(async () => {
    t = await openPaymentsTestDb(4);
    redis = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: null });
    smtp = await startSmtpServer();
    transport = createMailTransport(smtp.url);
  });
  afterAll(async () => {
    transport?.close();
    await smtp?.close();
    redis?.disconnect();
    await t?.close();
  });

  it('is never sent again by a later run of its task, and is recorded sent once the database takes it', async () => {
    const { userId } = await insertActor(t.db, 'mailed');
    const email = (
      await t.db.selectFrom('users').select('email').where('id', '=', userId).executeTakeFirstOrThrow()
    ).email;
    const deps = {
      db: t.db,
      auth: {} as AuthService, // a welcome mail carries no token
      transport,
      clock: systemClock,
      log: logs.log,
      connection: redis,
      redisPrefix: uniqueRedisPrefix(),
      publicUrl: 'http://localhost',
      mailFrom: 'gigwire <noreply@example.test>',
      lockMs: 5_000,
    };
    const payload = {
      template: 'welcome' as const,
      userId: userId as UserId,
      key: `welcome.${randomUUID()}`,
    };

    // The database takes the mail but refuses to record it sent (every try of the run).
    await sql`create function review17_refuse_sent() returns trigger language plpgsql as $$
      begin
        if NEW.status = 'sent' then raise exception 'review17: sent not recorded'; end if;
        return NEW;
      end $$`.execute(t.db);
    await sql`create trigger review17_refuse_sent before update on emails
      for each row execute function review17_refuse_sent()`.execute(t.db);

    await expect(sendEmailTask(deps, payload)).rejects.toThrow(/email sent but not recorded/);
    expect(smtp.accepted().filter((mail) => mail.to.includes(email))).toHaveLength(1);
    const row = () =>
      t.db
        .selectFrom('emails')
        .selectAll()
        .where('idempotency_key', '=', payload.key)
        .executeTakeFirstOrThrow();
    expect((await row()).status).toBe('pending');

    // A later run while the database still refuses: nothing sent, still failing (to be retried).
    await expect(sendEmailTask(deps, payload)).rejects.toThrow(/email sent but not recorded/);
    expect(smtp.accepted().filter((mail) => mail.to.includes(email))).toHaveLength(1);

    // The database takes writes again; the task runs again (retried, or enqueued again).
    await sql`drop trigger review17_refuse_sent on emails`.execute(t.db);
    await sendEmailTask(deps, payload);
    const recorded = await row();
    expect(recorded.status).toBe('sent');
    expect(recorded.text_body).toBeNull();
    expect(smtp.accepted().filter((mail) => mail.to.includes(email))).toHaveLength(1);
    // And once recorded, any further run is a no-op.
    await sendEmailTask(deps, payload);
    expect(smtp.accepted().filter((mail) => mail.to.includes(email))).toHaveLength(1);
  }, 60_000);
});
