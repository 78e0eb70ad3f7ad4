/**
 * Notification mail against accounts that change after their digest was stored: real PostgreSQL,
 * Redis and SMTP server, one node with every role.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { insertOutboxEvent } from '../../src/db/repositories/outbox.repo.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { untilDefined } from '../support/poll.js';
import { startSmtpServer, type TestSmtpServer, verifyByMail } from '../support/smtp.js';

describe('notification mail after the digest was stored', () => {
  let smtp: TestSmtpServer;
  let node: TestNode;
  let handle: DbHandle;
  let api: ReturnType<typeof httpClient>;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    node = await startTestNode({
      SMTP_URL: smtp.url,
      OUTBOX_POLL_MS: '50',
      NOTIFY_EMAIL_DIGEST_S: '1',
      LEDGER_AUDIT_INTERVAL_S: '0',
    });
    api = httpClient(node.node.baseUrl);
    handle = await createDb({ kind: 'postgres', url: node.db.url, poolMax: 2 }, node.logs.log);
  }, 60_000);

  afterAll(async () => {
    await handle?.close();
    await node?.stop();
    await smtp?.close();
  });

  const bidPlaced = (hirer: Registered) =>
    insertOutboxEvent(handle.db, 'bid.placed', {
      bidId: crypto.randomUUID(),
      jobId: crypto.randomUUID(),
      workerId: crypto.randomUUID(),
      hirerId: hirer.id,
      amount: 1_000,
      notify: [hirer.id],
    });

  const digestMailOf = (user: Registered) =>
    handle.db
      .selectFrom('emails')
      .select(['status', 'last_error'])
      .where('user_id', '=', user.id as never)
      .where('template', '=', 'notification-digest')
      .executeTakeFirst();

  it('does not send a stored digest to an account locked while its mail waited for a deferring SMTP server', async () => {
    const user = await registerUser(api);
    await verifyByMail(smtp, api, user);
    // The server defers the user's mail: the digest is stored, its send retried later.
    smtp.refuse(user.email, { code: 451, message: '4.3.0 try again later' });
    await bidPlaced(user);
    await untilDefined(
      async () => (smtp.refused().includes(user.email) ? true : undefined),
      'the first, deferred attempt',
      20_000,
    );
    // An admin locks the account (what POST /v1/admin/users/:id/lock writes), then the server recovers.
    await sql`update users set locked_at = now() where id = ${user.id}::uuid`.execute(handle.db);
    smtp.refuse(user.email, undefined);
    const settled = await untilDefined(
      async () => {
        const mail = await digestMailOf(user);
        return mail !== undefined && mail.status !== 'pending' ? mail : undefined;
      },
      'the digest mail to settle',
      // The deferred mail is retried at 1, 2, 4, 8, 16… s: on a loaded box the lock may land after
      // the fourth attempt, and the next one comes ~16 s later (20 s timed out once in CI).
      45_000,
    );
    expect(settled.status).toBe('failed');
    expect(settled.last_error).toMatch(/locked/);
    expect(smtp.accepted().filter((m) => m.to.includes(user.email) && /bid/i.test(m.subject))).toEqual([]);
  }, 90_000);

  it('sends a mail once when recording it sent fails once after the server accepted it', async () => {
    const username = `r16sent${process.pid}${Math.random().toString(36).slice(2, 7)}`;
    // The database refuses the first "sent" update of this user's welcome mail (a dropped
    // connection, a failover), after the SMTP server took the mail. A sequence: not rolled back.
    await sql`create sequence if not exists review16_sent_refusals`.execute(handle.db);
    await sql
      .raw(`create or replace function review16_refuse_sent() returns trigger language plpgsql as $$
        begin
          if new.status = 'sent' and new.template = 'welcome' and new.to_address = '${username}@example.test'
             and nextval('review16_sent_refusals') = 1 then
            raise exception 'review16: connection lost while recording';
          end if;
          return new;
        end $$`)
      .execute(handle.db);
    await sql`create trigger review16_refuse_sent before update on emails
      for each row execute function review16_refuse_sent()`.execute(handle.db);
    try {
      const registered = await api.post('/v1/auth/register', {
        username,
        email: `${username}@example.test`,
        password: 'Vermilion-Otter-42!',
      });
      expect(registered.status).toBe(202);
      const welcome = await untilDefined(
        async () =>
          (await handle.db
            .selectFrom('emails')
            .select(['status'])
            .where('to_address', '=', `${username}@example.test`)
            .where('template', '=', 'welcome')
            .where('status', '=', 'sent')
            .executeTakeFirst()) ?? undefined,
        'the welcome mail recorded sent',
        30_000,
      );
      expect(welcome.status).toBe('sent');
      const refusals = await sql<{
        last_value: string;
      }>`select last_value from review16_sent_refusals`.execute(handle.db);
      expect(Number(refusals.rows[0]?.last_value)).toBeGreaterThanOrEqual(1);
      const welcomes = smtp
        .accepted()
        .filter((m) => m.to.includes(`${username}@example.test`) && m.subject === 'Welcome to gigwire');
      expect(welcomes).toHaveLength(1);
    } finally {
      await sql`drop trigger if exists review16_refuse_sent on emails`.execute(handle.db);
    }
  }, 60_000);
});
