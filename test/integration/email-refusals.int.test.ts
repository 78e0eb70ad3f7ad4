/**
 * An SMTP server's answer decides whether a mail is tried again: a permanent refusal (550 5.1.1
 * mailbox does not exist) fails the mail at once, recorded with the server's reply, instead of
 * being asked again for hours; a temporary one (451) is retried and delivered once the server
 * takes it. One process with every role, the email worker included; a real SMTP server.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../support/context.js';
import type { HttpClient } from '../support/http.js';
import { startMailNode } from '../support/mail-node.js';
import { untilDefined } from '../support/poll.js';
import type { TestSmtpServer } from '../support/smtp.js';

describe('SMTP refusals', () => {
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

  /** Signs up with an address of our choosing: a welcome and a verification mail go to it. */
  const register = async (email: string) => {
    const username = `u${Math.random().toString(36).slice(2, 12)}`;
    const response = await api.post('/v1/auth/register', {
      username,
      email,
      password: 'Vermilion-Otter-42!',
    });
    expect(response.status).toBe(202);
  };

  const mailsTo = async (email: string) => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const rows = await client.query<{
        template: string;
        status: string;
        attempts: number;
        last_error: string | null;
      }>(
        'select template, status, attempts, last_error from emails where to_address = $1 order by template',
        [email],
      );
      return rows.rows;
    } finally {
      await client.end();
    }
  };

  it('fails a mail the server refuses with 550 at once, with its reply, and never asks again', async () => {
    const email = `gone-${crypto.randomUUID()}@example.test`;
    smtp.refuse(email, { code: 550, message: '5.1.1 mailbox does not exist' });
    await register(email);

    const mails = await untilDefined(async () => {
      const rows = await mailsTo(email);
      return rows.length === 2 && rows.every((mail) => mail.status !== 'pending') ? rows : undefined;
    }, 'both mails settled');
    expect(mails.map((mail) => mail.template)).toEqual(['verify-email', 'welcome']);
    for (const mail of mails) {
      expect(mail.status).toBe('failed');
      expect(mail.last_error).toContain('550 5.1.1 mailbox does not exist');
    }
    // Retried, each mail would be refused again after 1 s, 2 s, 4 s…
    await sleep(4_000);
    expect(smtp.refused().filter((to) => to === email)).toHaveLength(2);
    // One attempt each, and the server's reply still the recorded error.
    expect(await mailsTo(email)).toEqual(mails.map((mail) => ({ ...mail, attempts: 1 })));
  });

  it('retries a mail the server defers with 451 and delivers it once the server takes it', async () => {
    const email = `busy-${crypto.randomUUID()}@example.test`;
    smtp.refuse(email, { code: 451, message: '4.3.0 try again later' });
    await register(email);

    const deferred = await untilDefined(async () => {
      const rows = await mailsTo(email);
      return rows.length === 2 && rows.every((mail) => mail.last_error !== null) ? rows : undefined;
    }, 'both mails deferred');
    for (const mail of deferred) {
      expect(mail.status).toBe('pending');
      expect(mail.last_error).toContain('451 4.3.0 try again later');
    }
    smtp.refuse(email, undefined);
    await smtp.waitFor((m) => m.to.includes(email) && m.subject === 'Confirm your email address');
    await smtp.waitFor((m) => m.to.includes(email) && m.subject === 'Welcome to gigwire');
    await untilDefined(async () => {
      const rows = await mailsTo(email);
      return rows.length === 2 && rows.every((mail) => mail.status === 'sent') ? rows : undefined;
    }, 'both mails recorded sent');
  });
});
