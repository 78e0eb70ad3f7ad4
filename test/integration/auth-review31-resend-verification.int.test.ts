/**
 * Review 31: the verification link of the registration mail lives 24 hours, and nothing mailed
 * another one. A user who missed that day (or whose mail never arrived: an SMTP outage longer than
 * the email task's retries, a refusal) kept an unconfirmed address for good, and an unconfirmed
 * address is mailed no notification at all, receipts and security warnings included. Now a signed-in
 * user asks for a new link (POST /v1/auth/resend-verification), at most one mail a day.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';
import { type ReceivedMail, startSmtpServer, type TestSmtpServer, tokenFrom } from '../support/smtp.js';

let testNode: TestNode;
let smtp: TestSmtpServer;
let api: ReturnType<typeof httpClient>;

beforeAll(async () => {
  smtp = await startSmtpServer();
  testNode = await startTestNode({ SMTP_URL: smtp.url, OUTBOX_POLL_MS: '50' });
  api = httpClient(testNode.node.baseUrl);
}, 60_000);
afterAll(async () => {
  await testNode?.stop();
  await smtp?.close();
});

const sql = <T extends pg.QueryResultRow>(text: string, values: unknown[]) =>
  queryRows<T>(testNode.db.url, text, values);

describe('a new verification link (review 31)', () => {
  it('mails an unconfirmed address a working link once a day, and a confirmed one nothing', async () => {
    const user = await registerUser(api);
    const isVerifyMail = (m: ReceivedMail) =>
      m.to.includes(user.email) && m.subject === 'Confirm your email address';
    const expired = tokenFrom(await smtp.waitFor(isVerifyMail), 'Verification token');
    // The day passed: the registration link no longer works.
    await sql("update email_tokens set expires_at = now() - interval '1 second' where user_id = $1", [
      user.id,
    ]);
    expect((await api.post('/v1/auth/verify-email', { token: expired })).status).toBe(400);

    // Asked twice (the button pressed again): one new mail, whose link confirms the address.
    for (let i = 0; i < 2; i++) {
      const resent = await api.post('/v1/auth/resend-verification', undefined, user.accessToken);
      expect(resent.status).toBe(202);
      expect(resent.body).toEqual({ status: 'accepted' });
    }
    const fresh = tokenFrom(
      await smtp.waitFor((m) => isVerifyMail(m) && tokenFrom(m, 'Verification token') !== expired),
      'Verification token',
    );
    expect((await api.post('/v1/auth/verify-email', { token: fresh })).status).toBe(204);
    expect((await api.get('/v1/me', user.accessToken)).body).toMatchObject({ emailVerified: true });
    const stored = await sql<{ count: string }>(
      "select count(*) from emails where user_id = $1 and template = 'verify-email'",
      [user.id],
    );
    expect(Number(stored[0]?.count)).toBe(2);

    // Confirmed: nothing is asked of the mail any more.
    expect((await api.post('/v1/auth/resend-verification', undefined, user.accessToken)).status).toBe(202);
    const events = await sql<{ count: string }>(
      "select count(*) from outbox_events where type = 'user.verification_requested' and payload->>'userId' = $1",
      [user.id],
    );
    expect(Number(events[0]?.count)).toBe(2);

    // Signed in only.
    expect((await api.post('/v1/auth/resend-verification', undefined)).status).toBe(401);
  });
});
