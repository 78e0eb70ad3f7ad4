/**
 * Mail through a real SMTP server: verification and password reset end to end, and a worker killed
 * mid-send and restarted delivers each mail exactly once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { runShutdown } from '../../src/platform/shutdown.js';
import {
  captureLogs,
  createMigratedDatabase,
  queryRows,
  sharedRedisUrl,
  type TestDatabase,
  testConfig,
  uniqueRedisPrefix,
} from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';
import { startSmtpServer, type TestSmtpServer, tokenFrom } from '../support/smtp.js';
import { type GigwireProcess, spawnGigwire } from '../support/spawn.js';

describe('email over SMTP (all roles in one process)', () => {
  let db: TestDatabase;
  let node: RunningNode;
  let smtp: TestSmtpServer;
  let api: ReturnType<typeof httpClient>;
  const logs = captureLogs();

  beforeAll(async () => {
    db = await createMigratedDatabase();
    smtp = await startSmtpServer();
    const config = testConfig({
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: uniqueRedisPrefix(),
      SMTP_URL: smtp.url,
      OUTBOX_POLL_MS: '50',
      PUBLIC_URL: 'https://gigwire.example',
    });
    node = await startNode(config, logs.log, { pid: process.pid });
    api = httpClient(node.baseUrl);
  });
  afterAll(async () => {
    await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    await smtp.close();
    await db.drop();
  });

  it('delivers a welcome and a verification mail whose token verifies the account', async () => {
    const user = await registerUser(api);
    const verification = await smtp.waitFor(
      (m) => m.to.includes(user.email) && m.subject === 'Confirm your email address',
    );
    await smtp.waitFor((m) => m.to.includes(user.email) && m.subject === 'Welcome to gigwire');
    expect(verification.body).toContain('https://gigwire.example/verify-email?token=');

    const token = tokenFrom(verification, 'Verification token');
    expect((await api.post('/v1/auth/verify-email', { token })).status).toBe(204);
    expect((await api.get('/v1/me', user.accessToken)).body).toMatchObject({ emailVerified: true });

    // Delivered mail keeps no body (it held a live token); the table stores only a hash of it.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const rows = await client.query('select status, text_body from emails where to_address = $1', [
      user.email,
    ]);
    const tokens = await client.query('select token_hash from email_tokens where token_hash = $1', [token]);
    await client.end();
    expect(rows.rows).toEqual([
      { status: 'sent', text_body: null },
      { status: 'sent', text_body: null },
    ]);
    expect(tokens.rowCount).toBe(0);
  });

  it('answers a verification link opened again with success, and refuses what it must', async () => {
    const sql = <T extends pg.QueryResultRow>(text: string, values: unknown[]) =>
      queryRows<T>(db.url, text, values);
    const verifiedAt = async (userId: string) =>
      (
        await sql<{ email_verified_at: Date | null }>('select email_verified_at from users where id = $1', [
          userId,
        ])
      )[0]?.email_verified_at;
    const verificationToken = async (email: string) =>
      tokenFrom(
        await smtp.waitFor((m) => m.to.includes(email) && m.subject === 'Confirm your email address'),
        'Verification token',
      );
    const refused = { code: 'VALIDATION_FAILED' };

    // The first answer lost on the way: the retry (or the reopened link) succeeds, changing nothing.
    const user = await registerUser(api);
    const token = await verificationToken(user.email);
    expect((await api.post('/v1/auth/verify-email', { token })).status).toBe(204);
    const first = await verifiedAt(user.id);
    expect(first).toBeInstanceOf(Date);
    for (let i = 0; i < 2; i++) {
      expect((await api.post('/v1/auth/verify-email', { token })).status).toBe(204);
    }
    expect(await verifiedAt(user.id)).toEqual(first);
    expect((await api.get('/v1/me', user.accessToken)).body).toMatchObject({ emailVerified: true });

    // Never issued.
    expect((await api.post('/v1/auth/verify-email', { token: `${token}x` })).body).toMatchObject(refused);
    expect((await api.post('/v1/auth/verify-email', { token: 'A'.repeat(43) })).body).toMatchObject(refused);
    // A reset token is not a verification token, spent or not.
    expect((await api.post('/v1/auth/forgot-password', { email: user.email })).status).toBe(202);
    const reset = tokenFrom(
      await smtp.waitFor((m) => m.to.includes(user.email) && m.subject === 'Reset your gigwire password'),
      'Reset token',
    );
    expect((await api.post('/v1/auth/verify-email', { token: reset })).body).toMatchObject(refused);

    // Expired, unspent: refused, and the address stays unverified.
    const late = await registerUser(api);
    const lateToken = await verificationToken(late.email);
    await sql("update email_tokens set expires_at = now() - interval '1 second' where user_id = $1", [
      late.id,
    ]);
    expect((await api.post('/v1/auth/verify-email', { token: lateToken })).body).toMatchObject(refused);
    expect(await verifiedAt(late.id)).toBeNull();

    // Spent, then past its validity: refused again, the verification kept.
    await sql("update email_tokens set expires_at = now() - interval '1 second' where user_id = $1", [
      user.id,
    ]);
    expect((await api.post('/v1/auth/verify-email', { token })).body).toMatchObject(refused);
    expect(await verifiedAt(user.id)).toEqual(first);

    // Spent for an address the user no longer has: refused, whether the new one is verified or not.
    const moved = await registerUser(api);
    const movedToken = await verificationToken(moved.email);
    expect((await api.post('/v1/auth/verify-email', { token: movedToken })).status).toBe(204);
    await sql('update users set email = $2 where id = $1', [moved.id, `new-${moved.email}`]);
    expect((await api.post('/v1/auth/verify-email', { token: movedToken })).body).toMatchObject(refused);
    await sql('update users set email_verified_at = null where id = $1', [moved.id]);
    expect((await api.post('/v1/auth/verify-email', { token: movedToken })).body).toMatchObject(refused);
    expect(await verifiedAt(moved.id)).toBeNull();
    // Its address back but no longer verified: still refused (the token confirmed nothing current).
    await sql('update users set email = $2 where id = $1', [moved.id, moved.email]);
    expect((await api.post('/v1/auth/verify-email', { token: movedToken })).body).toMatchObject(refused);
    expect(await verifiedAt(moved.id)).toBeNull();
  });

  it('resets a password end to end, once, and answers unknown addresses alike', async () => {
    const user = await registerUser(api);
    const unknown = await api.post('/v1/auth/forgot-password', { email: `nobody-${user.email}` });
    const known = await api.post('/v1/auth/forgot-password', { email: user.email.toUpperCase() });
    expect(unknown.status).toBe(202);
    expect(known.status).toBe(202);
    expect(known.body).toEqual(unknown.body);

    const mail = await smtp.waitFor(
      (m) => m.to.includes(user.email) && m.subject === 'Reset your gigwire password',
    );
    const token = tokenFrom(mail, 'Reset token');
    const newPassword = 'Indigo-Walrus-58%';
    expect((await api.post('/v1/auth/reset-password', { token, newPassword })).status).toBe(204);
    expect(
      (await api.post('/v1/auth/reset-password', { token, newPassword: 'Another-Pass-99&' })).status,
    ).toBe(400);
    expect((await api.get('/v1/me', user.accessToken)).status).toBe(401);
    expect((await api.post('/v1/auth/login', { login: user.email, password: user.password })).status).toBe(
      401,
    );
    expect((await api.post('/v1/auth/login', { login: user.email, password: newPassword })).status).toBe(200);
    await sleep(300);
    expect(smtp.accepted().filter((m) => m.to.includes(`nobody-${user.email}`))).toEqual([]);
  });

  it('answers a reset retried with the same token and password with success, changing nothing (review 28)', async () => {
    const user = await registerUser(api);
    expect((await api.post('/v1/auth/forgot-password', { email: user.email })).status).toBe(202);
    const token = tokenFrom(
      await smtp.waitFor((m) => m.to.includes(user.email) && m.subject === 'Reset your gigwire password'),
      'Reset token',
    );
    const newPassword = 'Saffron-Otter-73!';
    expect((await api.post('/v1/auth/reset-password', { token, newPassword })).status).toBe(204);
    const login = await api.post<{ accessToken: string }>('/v1/auth/login', {
      login: user.email,
      password: newPassword,
    });
    expect(login.status).toBe(200);
    // The first answer lost: the retry succeeds, and the session opened since stays open.
    expect((await api.post('/v1/auth/reset-password', { token, newPassword })).status).toBe(204);
    expect((await api.get('/v1/me', login.body.accessToken)).status).toBe(200);
    // Another password with the spent token is still refused, and sets nothing.
    const other = await api.post('/v1/auth/reset-password', { token, newPassword: 'Another-Pass-99&' });
    expect(other.status).toBe(400);
    expect(other.body).toMatchObject({ code: 'VALIDATION_FAILED' });
    // The password changed since: the retry names a password that is no longer the account's.
    const changed = await api.call('PUT', '/v1/auth/password', {
      token: login.body.accessToken,
      body: { currentPassword: newPassword, newPassword: 'Cobalt-Heron-41?' },
    });
    expect(changed.status).toBe(204);
    expect((await api.post('/v1/auth/reset-password', { token, newPassword })).status).toBe(400);
  });
});

describe('email worker killed mid-send', () => {
  let db: TestDatabase;
  let api: RunningNode;
  let smtp: TestSmtpServer;
  const workers: GigwireProcess[] = [];
  const logs = captureLogs();
  const prefix = uniqueRedisPrefix();

  beforeAll(async () => {
    db = await createMigratedDatabase();
    smtp = await startSmtpServer();
    const config = testConfig({
      ROLE: 'api',
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: prefix,
    });
    api = await startNode(config, logs.log, { pid: process.pid });
  });
  afterAll(async () => {
    for (const worker of workers) await worker.stop('SIGKILL').catch(() => undefined);
    await runShutdown(api.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    await smtp.close();
    await db.drop();
  });

  const startWorker = () => {
    const worker = spawnGigwire({
      ROLE: 'worker',
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: prefix,
      SMTP_URL: smtp.url,
      OUTBOX_POLL_MS: '50',
      TASK_LOCK_MS: '1500',
    });
    workers.push(worker);
    return worker;
  };

  it('sends each mail exactly once after the worker is SIGKILLed during SMTP DATA and restarted', async () => {
    smtp.stall(true);
    const first = startWorker();
    await first.waitUntilUp(60_000);
    const user = await registerUser(httpClient(api.baseUrl));
    await smtp.stalledOnce();
    await first.stop('SIGKILL');
    expect(smtp.accepted()).toEqual([]);

    smtp.stall(false);
    const second = startWorker();
    await second.waitUntilUp(60_000);
    await smtp.waitFor(
      (m) => m.to.includes(user.email) && m.subject === 'Confirm your email address',
      30_000,
    );
    await smtp.waitFor((m) => m.to.includes(user.email) && m.subject === 'Welcome to gigwire', 30_000);
    // Time for any duplicate to show up: a second stalled-job pass, relay polls.
    await sleep(4_000);
    const mine = smtp.accepted().filter((m) => m.to.includes(user.email));
    expect(mine.map((m) => m.subject).sort()).toEqual(['Confirm your email address', 'Welcome to gigwire']);
    expect(new Set(mine.map((m) => m.messageId)).size).toBe(2);
    expect((await second.stop('SIGTERM')).code).toBe(0);
  }, 90_000);
});
