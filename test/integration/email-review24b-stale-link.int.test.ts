/**
 * Review 24b: a reset mail held back by an SMTP outage must not arrive with a dead link. The token
 * is issued when the mail is first rendered and lives 30 minutes; the retries of a deferred mail
 * wait 1 s, 2 s, 4 s … (the 11th try comes 34 minutes after the first), and further requests in the
 * same 10-minute period mail nothing new. The half-hour is simulated by ageing the stored mail and
 * its token in the database while the server defers it (451).
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows, type TestDatabase } from '../support/context.js';
import type { HttpClient } from '../support/http.js';
import { startMailNode } from '../support/mail-node.js';
import { untilDefined } from '../support/poll.js';
import { type TestSmtpServer, tokenFrom } from '../support/smtp.js';

describe('a link mail delayed by an SMTP outage (review 24b)', () => {
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let api: HttpClient;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ db, smtp, api, stop } = await startMailNode());
  });
  afterAll(async () => {
    await stop();
  });

  const sql = <T extends pg.QueryResultRow>(text: string, values: unknown[]) =>
    queryRows<T>(db.url, text, values);

  it('arrives with a reset link that still works when the server took it after the first link expired', async () => {
    const email = `late-${crypto.randomUUID()}@example.test`;
    const username = `u${Math.random().toString(36).slice(2, 12)}`;
    expect(
      (await api.post('/v1/auth/register', { username, email, password: 'Vermilion-Otter-42!' })).status,
    ).toBe(202);
    await smtp.waitFor((m) => m.to.includes(email) && m.subject === 'Confirm your email address');

    smtp.refuse(email, { code: 451, message: '4.3.0 try again later' });
    expect((await api.post('/v1/auth/forgot-password', { email })).status).toBe(202);
    await untilDefined(async () => {
      const rows = await sql<{ last_error: string | null }>(
        "select last_error from emails where to_address = $1 and template = 'reset-password'",
        [email],
      );
      return rows[0]?.last_error?.includes('451') === true ? rows : undefined;
    }, 'the reset mail deferred');

    // 31 minutes later, as far as the stored mail and its token go.
    await sql(
      "update emails set created_at = now() - interval '31 minutes' where to_address = $1 and template = 'reset-password'",
      [email],
    );
    await sql(
      "update email_tokens set expires_at = now() - interval '1 minute' where purpose = 'reset_password' and user_id = (select id from users where email = $1)",
      [email],
    );
    smtp.refuse(email, undefined);

    const mail = await smtp.waitFor(
      (m) => m.to.includes(email) && m.subject === 'Reset your gigwire password',
    );
    const reset = await api.post('/v1/auth/reset-password', {
      token: tokenFrom(mail, 'Reset token'),
      newPassword: 'Crimson-Heron-77!',
    });
    expect(reset.status).toBe(204);
    expect(
      (await api.post('/v1/auth/login', { login: username, password: 'Crimson-Heron-77!' })).status,
    ).toBe(200);
  });

  it('arrives with a working reset link when a request of the same period retries the refused mail (review 28)', async () => {
    // An address not confirmed yet is sent one reset mail a day: every request of that day has the
    // same mail key, and one whose task failed (a 5xx, or 15 attempts through an SMTP outage)
    // retries it. The retry sent the mail as first rendered: a link that died 30 minutes after it.
    const email = `again-${crypto.randomUUID()}@example.test`;
    const username = `u${Math.random().toString(36).slice(2, 12)}`;
    expect(
      (await api.post('/v1/auth/register', { username, email, password: 'Vermilion-Otter-42!' })).status,
    ).toBe(202);
    await smtp.waitFor((m) => m.to.includes(email) && m.subject === 'Confirm your email address');

    smtp.refuse(email, { code: 550, message: '5.2.1 mailbox disabled' });
    expect((await api.post('/v1/auth/forgot-password', { email })).status).toBe(202);
    await untilDefined(async () => {
      const rows = await sql<{ status: string }>(
        "select status from emails where to_address = $1 and template = 'reset-password'",
        [email],
      );
      return rows[0]?.status === 'failed' ? rows : undefined;
    }, 'the reset mail refused for good');
    await sql(
      "update emails set created_at = now() - interval '31 minutes' where to_address = $1 and template = 'reset-password'",
      [email],
    );
    await sql(
      "update email_tokens set expires_at = now() - interval '1 minute' where purpose = 'reset_password' and user_id = (select id from users where email = $1)",
      [email],
    );
    smtp.refuse(email, undefined);

    expect((await api.post('/v1/auth/forgot-password', { email })).status).toBe(202);
    const mail = await smtp.waitFor(
      (m) => m.to.includes(email) && m.subject === 'Reset your gigwire password',
    );
    const reset = await api.post('/v1/auth/reset-password', {
      token: tokenFrom(mail, 'Reset token'),
      newPassword: 'Crimson-Heron-77!',
    });
    expect(reset.status).toBe(204);
  });
});
