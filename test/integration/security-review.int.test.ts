/**
 * Holes found by the attacker-minded review after the issue 10 fixes, one test each, against a
 * real node in this process:
 * - contacts are capped per user (CONTACTS_MAX_PER_USER): without a cap one account grows its list
 *   without end and GET /v1/me/contacts, a single page, loads it all into the node's memory; the cap
 *   holds under parallel requests;
 * - a request path that is not valid percent-encoded UTF-8 (or a parameter over Fastify's length
 *   cap) answers problem+json like every other error, not Fastify's own JSON naming its internals;
 * - POST /v1/auth/forgot-password, open to anyone, mails the owner at most once per
 *   PASSWORD_RESET_MAIL_PERIOD_MS: before, every call was one more mail (and reset token), so a
 *   stranger could flood any owner's inbox at the REST rate limit;
 * - PUT /v1/auth/password's current-password check is limited per session like logins
 *   (LOGIN_MAX_FAILURES per LOGIN_WINDOW_S): before, a stolen access token could guess the password
 *   at the REST rate limit, around login throttling;
 * - REST inputs outside the body (query strings with percent-encoded U+0000 or broken UTF-8, odd
 *   header bytes in User-Agent, which is stored with the session, and in Authorization) never give a
 *   500.
 */
import { request as httpRequest } from 'node:http';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../../src/bin/start-node.js';
import { bullPrefix } from '../../src/platform/queues/tasks.js';
import { sharedRedisUrl, startTestNode, type TestNode, uniqueRedisPrefix } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { insertResetLink } from '../support/tokens.js';

const CONTACT_LIMIT = 3;
/** LOGIN_MAX_FAILURES of the node: also the wrong current passwords one session may try. */
const LOGIN_MAX_FAILURES = 3;

/** A request with headers exactly as given (latin1 bytes included), which fetch would refuse. */
function rawRequest(
  baseUrl: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<{ status: number; contentType: string | undefined; text: string }> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: url.hostname, port: url.port, method, path, headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
      });
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, contentType: response.headers['content-type'], text }),
      );
    });
    request.on('error', reject);
    request.end(body);
  });
}

describe('security review of issue 10', () => {
  let testNode: TestNode;
  let node: RunningNode;
  let api: ReturnType<typeof httpClient>;
  const redisPrefix = uniqueRedisPrefix();

  beforeAll(async () => {
    testNode = await startTestNode({
      CONTACTS_MAX_PER_USER: String(CONTACT_LIMIT),
      LOGIN_MAX_FAILURES: String(LOGIN_MAX_FAILURES),
      REDIS_PREFIX: redisPrefix,
    });
    node = testNode.node;
    api = httpClient(node.baseUrl);
  });
  afterAll(async () => testNode.stop());

  const add = (owner: Registered, contact: Registered) =>
    api.post(`/v1/me/contacts/${contact.id}`, undefined, owner.accessToken);
  const contactsOf = async (owner: Registered) =>
    (await api.get<{ data: unknown[] }>('/v1/me/contacts', owner.accessToken)).body.data.length;

  describe('contacts per user (CONTACTS_MAX_PER_USER)', () => {
    it('refuses one more contact with 409 CONFLICT, still accepts re-adding one, and frees a place on removal', async () => {
      const owner = await registerUser(api);
      const others = await Promise.all(Array.from({ length: CONTACT_LIMIT + 1 }, () => registerUser(api)));
      for (const other of others.slice(0, CONTACT_LIMIT)) expect((await add(owner, other)).status).toBe(204);

      const refused = await add(owner, others[CONTACT_LIMIT] as Registered);
      expect(refused.status).toBe(409);
      expect(refused.body).toMatchObject({ code: 'CONFLICT', limit: CONTACT_LIMIT });
      // Adding an existing contact changes nothing and is never refused by the cap.
      expect((await add(owner, others[0] as Registered)).status).toBe(204);
      expect(await contactsOf(owner)).toBe(CONTACT_LIMIT);

      const removed = await api.call('DELETE', `/v1/me/contacts/${(others[0] as Registered).id}`, {
        token: owner.accessToken,
      });
      expect(removed.status).toBe(204);
      expect((await add(owner, others[CONTACT_LIMIT] as Registered)).status).toBe(204);
      expect(await contactsOf(owner)).toBe(CONTACT_LIMIT);
    });

    it('holds under parallel additions: exactly the cap is stored', async () => {
      const owner = await registerUser(api);
      const others = await Promise.all(Array.from({ length: 12 }, () => registerUser(api)));
      const statuses = (await Promise.all(others.map((other) => add(owner, other)))).map((r) => r.status);
      expect(statuses.filter((status) => status === 204)).toHaveLength(CONTACT_LIMIT);
      expect(statuses.filter((status) => status === 409)).toHaveLength(others.length - CONTACT_LIMIT);
      expect(await contactsOf(owner)).toBe(CONTACT_LIMIT);
    });

    it('does not count a contact whose account an admin locked (review30b): the list hides it, so it could not be removed', async () => {
      const [owner, admin, ...others] = await Promise.all(
        Array.from({ length: CONTACT_LIMIT + 3 }, () => registerUser(api)),
      );
      if (owner === undefined || admin === undefined) throw new Error('no users');
      for (const other of others.slice(0, CONTACT_LIMIT)) expect((await add(owner, other)).status).toBe(204);
      const client = new pg.Client({ connectionString: testNode.db.url });
      await client.connect();
      try {
        await client.query(`update users set roles = array['admin'] where id = $1`, [admin.id]);
      } finally {
        await client.end();
      }
      const adminLogin = await api.post<{ accessToken: string }>('/v1/auth/login', {
        login: admin.email,
        password: admin.password,
      });
      const locked = others[0] as Registered;
      const lock = await api.post(
        `/v1/admin/users/${locked.id}/lock`,
        undefined,
        adminLogin.body.accessToken,
      );
      expect(lock.status).toBe(204);
      // The owner sees CONTACT_LIMIT - 1 contacts and has no way to find the hidden one's id.
      expect(await contactsOf(owner)).toBe(CONTACT_LIMIT - 1);
      expect((await add(owner, others[CONTACT_LIMIT] as Registered)).status).toBe(204);
      expect(await contactsOf(owner)).toBe(CONTACT_LIMIT);
    });
  });

  describe('password-reset mails', () => {
    it('sends one reset mail for many forgot-password requests naming the same address', async () => {
      const user = await registerUser(api);
      for (let i = 0; i < 5; i++) {
        expect((await api.post('/v1/auth/forgot-password', { email: user.email })).status).toBe(202);
      }
      const client = new pg.Client({ connectionString: testNode.db.url });
      await client.connect();
      const connection = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: null });
      const emails = new Queue('emails', { connection, prefix: bullPrefix(redisPrefix) });
      try {
        // The relay marks an event published only after its task was enqueued: once all five are,
        // every email task they will ever cause is in the queue (in some state).
        for (;;) {
          const { rows } = await client.query<{ n: number }>(
            `select count(*)::int as n from outbox_events
              where type = 'user.password_reset_requested' and payload->>'userId' = $1 and published_at is not null`,
            [user.id],
          );
          if (rows[0]?.n === 5) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const jobs = await emails.getJobs([
          'waiting',
          'active',
          'delayed',
          'prioritized',
          'completed',
          'failed',
        ]);
        const resets = jobs.filter(
          (job) => job?.data?.template === 'reset-password' && job.data.userId === user.id,
        );
        expect(resets).toHaveLength(1);
      } finally {
        await emails.close();
        connection.disconnect();
        await client.end();
      }
    });
  });

  /**
   * Has `ask` make a mail of `eventType` go to an unconfirmed and a confirmed address, and checks
   * the period each is keyed by (one mail per period): the unconfirmed address's day, the confirmed
   * one's window of `periodMs`.
   */
  async function expectMailPeriods(
    eventType: string,
    periodMs: number,
    ask: (user: Registered) => Promise<void>,
  ): Promise<void> {
    const unconfirmed = await registerUser(api);
    const confirmed = await registerUser(api);
    const client = new pg.Client({ connectionString: testNode.db.url });
    await client.connect();
    try {
      await client.query('update users set email_verified_at = now() where id = $1', [confirmed.id]);
      const before = Date.now();
      for (const user of [unconfirmed, confirmed]) await ask(user);
      const after = Date.now();
      const periodOf = async (userId: string) => {
        const { rows } = await client.query<{ period: number }>(
          `select (payload->>'period')::bigint as period from outbox_events
            where type = $1 and payload->>'userId' = $2`,
          [eventType, userId],
        );
        return Number(rows[0]?.period);
      };
      const day = 24 * 60 * 60 * 1000;
      const windows = (ms: number) => [before, after].map((at) => Math.floor(at / ms) * (ms / periodMs));
      expect(windows(day)).toContain(await periodOf(unconfirmed.id));
      expect(windows(periodMs)).toContain(await periodOf(confirmed.id));
    } finally {
      await client.end();
    }
  }

  // Review 25: anyone can register with a stranger's address and then have that stranger mailed a
  // reset link every 10 minutes; an address nobody confirmed gets one a day.
  it('keys the reset mail of an unconfirmed address by its day, a confirmed one by its 10 minutes', async () => {
    await expectMailPeriods('user.password_reset_requested', 10 * 60 * 1000, async (user) => {
      expect((await api.post('/v1/auth/forgot-password', { email: user.email })).status).toBe(202);
    });
  });

  // Review 26: the same for the "someone tried to register with your address" notice, one an hour
  // before: registering a stranger's address, then registering it again every hour, mailed them 24
  // notices a day. An address nobody confirmed gets one a day; a confirmed one one an hour.
  it('keys the registration notice of an unconfirmed address by its day, a confirmed one by its hour', async () => {
    await expectMailPeriods('user.registration_attempted', 60 * 60 * 1000, async (user) => {
      const again = await api.post('/v1/auth/register', {
        username: `again${Math.random().toString(36).slice(2, 10)}`,
        email: user.email,
        password: 'Vermilion-Ibex-42!',
      });
      expect(again.status).toBe(202);
    });
  });

  describe('PUT /v1/auth/password', () => {
    it('limits wrong current passwords per session; other sessions of the owner are not affected', async () => {
      const user = await registerUser(api);
      const change = (token: string, currentPassword: string) =>
        api.call('PUT', '/v1/auth/password', {
          token,
          body: { currentPassword, newPassword: 'Saffron-Heron-73#' },
        });
      for (let i = 0; i < LOGIN_MAX_FAILURES; i++) {
        expect((await change(user.accessToken, `Wrong-guess-${i}-x9`)).status).toBe(403);
      }
      // Over the limit even the right password is refused: the oracle is closed, not just slowed.
      const refused = await change(user.accessToken, user.password);
      expect(refused.status).toBe(429);
      expect(refused.body).toMatchObject({ code: 'RATE_LIMITED' });
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);

      const owner = await api.post<{ accessToken: string }>('/v1/auth/login', {
        login: user.username,
        password: user.password,
      });
      expect(owner.status).toBe(200);
      expect((await change(owner.body.accessToken, user.password)).status).toBe(204);
    });
  });

  describe('POST /v1/auth/reset-password with a spent link', () => {
    // A spent link answers 204 again to the password it set (a retry whose first answer was lost),
    // which checks a password: to whoever finds the used link (browser history, a proxy's log, a
    // Referer) it was a password oracle for 30 minutes at the REST rate limit (review 30).
    it('limits wrong passwords per link like wrong current passwords: past the limit even the right one is 429', async () => {
      const user = await registerUser(api);
      const token = await insertResetLink(testNode.db.url, user.id);
      const reset = (newPassword: string) =>
        api.call<{ code?: string }>('POST', '/v1/auth/reset-password', { body: { token, newPassword } });
      const chosen = 'Cobalt-Marmot-58!';
      expect((await reset(chosen)).status).toBe(204);
      // The retry of a lost answer still works.
      expect((await reset(chosen)).status).toBe(204);
      for (let i = 0; i < LOGIN_MAX_FAILURES; i++) {
        expect((await reset(`Wrong-guess-${i}-Lemur`)).status).toBe(400);
      }
      const refused = await reset(chosen);
      expect(refused.status).toBe(429);
      expect(refused.body).toMatchObject({ code: 'RATE_LIMITED' });
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      // The owner signs in with the password the link set.
      const login = await api.post('/v1/auth/login', { login: user.username, password: chosen });
      expect(login.status).toBe(200);
    });
  });

  describe('REST inputs outside the body', () => {
    it('answers query strings with percent-encoded U+0000, lone surrogates and broken UTF-8 with 2xx or 400, never 500', async () => {
      const user = await registerUser(api, { roles: ['worker'] });
      for (const path of [
        '/v1/users?q=%00',
        '/v1/users?q=%ED%A0%80',
        '/v1/users?q=%C0%80',
        '/v1/users?q=%FF',
        '/v1/users?skill=%ED%A0%80',
        '/v1/users?location=%00',
        '/v1/users?location=%5C',
        '/v1/users?cursor=%00',
        '/v1/users?__proto__=1',
        '/v1/rooms?cursor=%ED%A0%80',
      ]) {
        const answer = await rawRequest(node.baseUrl, 'GET', path, {
          authorization: `Bearer ${user.accessToken}`,
        });
        expect([200, 400], path).toContain(answer.status);
      }
    });

    it('answers a path that is not valid percent-encoded UTF-8, or a parameter over the length cap, with problem+json naming no Fastify internals', async () => {
      const user = await registerUser(api);
      for (const path of ['/v1/users/%ED%A0%80', '/v1/users/%FF', `/v1/users/${'a'.repeat(500)}`]) {
        const answer = await rawRequest(node.baseUrl, 'GET', path, {
          authorization: `Bearer ${user.accessToken}`,
        });
        expect(answer.status, path).toBe(400);
        expect(answer.contentType, path).toContain('application/problem+json');
        expect(JSON.parse(answer.text), path).toMatchObject({ code: 'VALIDATION_FAILED', status: 400 });
        expect(answer.text, path).not.toContain('FST_');
      }
    });

    it('stores a session whose User-Agent holds arbitrary header bytes, and refuses odd Authorization bytes with 401', async () => {
      const user = await registerUser(api);
      const login = await rawRequest(
        node.baseUrl,
        'POST',
        '/v1/auth/login',
        {
          'content-type': 'application/json',
          'user-agent': Buffer.from([0x41, 0xed, 0xa0, 0x80, 0xc3, 0x28, 0xff]).toString('latin1'),
        },
        Buffer.from(JSON.stringify({ login: user.username, password: user.password })),
      );
      expect(login.status).toBe(200);
      for (const authorization of ['Bearer \u00ff\u00fe', `Bearer ${'x'.repeat(8000)}`, 'Bearer a.b.c']) {
        const answer = await rawRequest(node.baseUrl, 'GET', '/v1/me', { authorization });
        expect(answer.status).toBe(401);
      }
    });
  });
});
