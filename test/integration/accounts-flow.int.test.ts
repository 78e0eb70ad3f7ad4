/**
 * Accounts end to end over real HTTP on the real composition: the token lifecycle of issue 3's
 * flow, racing refreshes, profiles, search, contacts and the admin endpoints. Mail goes to the
 * outbox here (no SMTP_URL); email.int.test.ts covers SMTP.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../../src/bin/start-node.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';

const ADMIN = { email: 'root@example.test', password: 'Cobalt-Heron-77?' };

describe('accounts', () => {
  let testNode: TestNode;
  let node: RunningNode;
  let api: ReturnType<typeof httpClient>;

  beforeAll(async () => {
    testNode = await startTestNode({
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      OUTBOX_POLL_MS: '50',
    });
    node = testNode.node;
    api = httpClient(node.baseUrl);
  });
  afterAll(() => testNode.stop());

  it('register → login → me → refresh → late reuse kills the family → login → password change kills old tokens', async () => {
    const user = await registerUser(api);
    const login = await api.post<{ accessToken: string; refreshToken: string; user: { id: string } }>(
      '/v1/auth/login',
      { login: user.email, password: user.password },
    );
    expect(login.status).toBe(200);
    expect(login.body.user.id).toBe(user.id);

    const me = await api.get('/v1/me', login.body.accessToken);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({
      id: user.id,
      username: user.username,
      email: user.email,
      emailVerified: false,
    });

    const refreshed = await api.post<{ accessToken: string; refreshToken: string; expiresIn: number }>(
      '/v1/auth/refresh',
      { refreshToken: login.body.refreshToken },
    );
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.refreshToken).not.toBe(login.body.refreshToken);
    expect(refreshed.body.expiresIn).toBe(900);
    expect((await api.get('/v1/me', refreshed.body.accessToken)).status).toBe(200);

    // Past the 10 s grace, presenting the spent token again is reuse: 401, and the family dies.
    await sleep(10_500);
    const reuse = await api.post('/v1/auth/refresh', { refreshToken: login.body.refreshToken });
    expect(reuse.status).toBe(401);
    expect(reuse.body).toMatchObject({ code: 'UNAUTHORIZED' });
    expect((await api.post('/v1/auth/refresh', { refreshToken: refreshed.body.refreshToken })).status).toBe(
      401,
    );
    expect((await api.get('/v1/me', refreshed.body.accessToken)).status).toBe(401);

    const again = await api.post<{ accessToken: string; refreshToken: string }>('/v1/auth/login', {
      login: user.username,
      password: user.password,
    });
    expect(again.status).toBe(200);
    const newPassword = 'Saffron-Lynx-19#';
    const change = await api.call('PUT', '/v1/auth/password', {
      token: again.body.accessToken,
      body: { currentPassword: user.password, newPassword },
    });
    expect(change.status).toBe(204);
    expect((await api.get('/v1/me', again.body.accessToken)).status).toBe(401);
    expect((await api.post('/v1/auth/refresh', { refreshToken: again.body.refreshToken })).status).toBe(401);
    expect((await api.post('/v1/auth/login', { login: user.email, password: user.password })).status).toBe(
      401,
    );
    expect((await api.post('/v1/auth/login', { login: user.email, password: newPassword })).status).toBe(200);
  }, 30_000);

  it('gives racing refreshes with one token the same new pair', async () => {
    const user = await registerUser(api);
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        api.post<{ accessToken: string; refreshToken: string }>('/v1/auth/refresh', {
          refreshToken: user.refreshToken,
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(new Set(results.map((r) => r.body.refreshToken)).size).toBe(1);
    expect(new Set(results.map((r) => r.body.accessToken)).size).toBe(1);
    // The successor works and rotates on.
    const next = await api.post('/v1/auth/refresh', { refreshToken: results[0]?.body.refreshToken });
    expect(next.status).toBe(200);
  });

  it('logs out one session, or all of them', async () => {
    const user = await registerUser(api);
    const second = await api.post<{ accessToken: string; refreshToken: string }>('/v1/auth/login', {
      login: user.username,
      password: user.password,
    });
    expect((await api.post('/v1/auth/logout', { refreshToken: user.refreshToken })).status).toBe(204);
    expect((await api.post('/v1/auth/refresh', { refreshToken: user.refreshToken })).status).toBe(401);
    expect((await api.get('/v1/me', user.accessToken)).status).toBe(401);
    expect((await api.get('/v1/me', second.body.accessToken)).status).toBe(200);

    expect((await api.post('/v1/auth/logout-all', undefined, second.body.accessToken)).status).toBe(204);
    expect((await api.get('/v1/me', second.body.accessToken)).status).toBe(401);
    expect((await api.post('/v1/auth/refresh', { refreshToken: second.body.refreshToken })).status).toBe(401);
  });

  it('refuses weak passwords and duplicate accounts with clear errors', async () => {
    const weak = await api.post('/v1/auth/register', {
      username: 'weakling1',
      email: 'weakling1@example.test',
      password: 'password123',
    });
    expect(weak.status).toBe(400);
    expect(weak.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: 'body.password' }] });

    const user = await registerUser(api);
    const duplicate = await api.post('/v1/auth/register', {
      username: user.username.toUpperCase(),
      email: `other-${user.email}`,
      password: user.password,
    });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body).toMatchObject({ code: 'CONFLICT' });
  });

  it('keeps profiles: PATCH /v1/me, public view without email, worker search with cursors', async () => {
    const tag = `zq${Date.now().toString(36)}`;
    const workers = [];
    for (let i = 0; i < 3; i++) {
      const worker = await registerUser(api, { roles: ['worker'] });
      const patch = await api.call('PATCH', '/v1/me', {
        token: worker.accessToken,
        body: {
          displayName: `Ada ${tag} ${i}`,
          bio: 'Distributed systems and TypeScript',
          location: i === 2 ? 'Lisbon, Portugal' : 'Berlin, Germany',
          skills: ['TypeScript', `skill-${tag}`],
          hourlyRate: { amount: 9500, currency: 'USD' },
          availability: 'available',
          portfolioLinks: ['https://example.com/work'],
        },
      });
      expect(patch.status).toBe(200);
      workers.push(worker);
    }
    const hirer = await registerUser(api, { roles: ['hirer'] });

    const publicView = await api.get(`/v1/users/${workers[0]?.id}`, hirer.accessToken);
    expect(publicView.status).toBe(200);
    expect(publicView.body).toMatchObject({
      displayName: `Ada ${tag} 0`,
      workerProfile: {
        skills: ['typescript', `skill-${tag}`],
        hourlyRate: { amount: 9500, currency: 'USD' },
      },
    });
    expect(publicView.body).not.toHaveProperty('email');

    const byText = await api.get<{ data: { id: string }[]; nextCursor: string | null }>(
      `/v1/users?q=${tag}&limit=2`,
      hirer.accessToken,
    );
    expect(byText.status).toBe(200);
    expect(byText.body.data).toHaveLength(2);
    expect(byText.body.nextCursor).not.toBeNull();
    const rest = await api.get<{ data: { id: string }[]; nextCursor: string | null }>(
      `/v1/users?q=${tag}&limit=2&cursor=${byText.body.nextCursor}`,
      hirer.accessToken,
    );
    expect(rest.body.data).toHaveLength(1);
    expect(rest.body.nextCursor).toBeNull();
    const found = [...byText.body.data, ...rest.body.data].map((u) => u.id).sort();
    expect(found).toEqual(workers.map((w) => w.id).sort());

    const bySkillAndPlace = await api.get<{ data: { id: string }[] }>(
      `/v1/users?skill=skill-${tag}&location=lisbon`,
      hirer.accessToken,
    );
    expect(bySkillAndPlace.body.data.map((u) => u.id)).toEqual([workers[2]?.id]);
    // Stored text is NFC; the same words typed decomposed (a letter + a combining mark) find it too.
    const accented = await registerUser(api, { roles: ['worker'] });
    const accentedPatch = await api.call('PATCH', '/v1/me', {
      token: accented.accessToken,
      body: { displayName: `Zoë ${tag}`, location: 'Montréal, Canada', skills: [`café-${tag}`] },
    });
    expect(accentedPatch.status).toBe(200);
    const decomposed = (text: string) => encodeURIComponent(text.normalize('NFD'));
    for (const query of [
      `q=${decomposed(`zoë ${tag}`)}`,
      `skill=${decomposed(`café-${tag}`)}&location=${decomposed('montréal')}`,
    ]) {
      const byDecomposed = await api.get<{ data: { id: string }[] }>(`/v1/users?${query}`, hirer.accessToken);
      expect(
        byDecomposed.body.data.map((u) => u.id),
        query,
      ).toEqual([accented.id]);
    }
    // Hirers are not workers: the search never lists them.
    const hirerSearch = await api.get<{ data: unknown[] }>(
      `/v1/users?q=${hirer.username}`,
      hirer.accessToken,
    );
    expect(hirerSearch.body.data).toEqual([]);

    const badCursor = await api.get('/v1/users?cursor=not-ours', hirer.accessToken);
    expect(badCursor.status).toBe(400);
    const badPatch = await api.call('PATCH', '/v1/me', {
      token: hirer.accessToken,
      body: { hourlyRate: { amount: -1, currency: 'euro' }, unknown: true },
    });
    expect(badPatch.status).toBe(400);
    expect((badPatch.body.errors as { path: string }[]).map((e) => e.path).sort()).toEqual([
      'body',
      'body.hourlyRate.amount',
      'body.hourlyRate.currency',
    ]);
  });

  it('manages contacts', async () => {
    const [a, b] = [await registerUser(api), await registerUser(api)];
    expect((await api.post(`/v1/me/contacts/${b.id}`, undefined, a.accessToken)).status).toBe(204);
    expect((await api.post(`/v1/me/contacts/${b.id}`, undefined, a.accessToken)).status).toBe(204);
    const list = await api.get<{ data: { user: { id: string } }[] }>('/v1/me/contacts', a.accessToken);
    expect(list.body.data.map((c) => c.user.id)).toEqual([b.id]);
    expect((await api.post(`/v1/me/contacts/${a.id}`, undefined, a.accessToken)).status).toBe(400);
    expect(
      (await api.post('/v1/me/contacts/00000000-0000-4000-8000-000000000000', undefined, a.accessToken))
        .status,
    ).toBe(404);
    expect((await api.call('DELETE', `/v1/me/contacts/${b.id}`, { token: a.accessToken })).status).toBe(204);
    expect((await api.get<{ data: unknown[] }>('/v1/me/contacts', a.accessToken)).body.data).toEqual([]);
  });

  it('lets the configured admin lock and unlock accounts and read the mail outbox', async () => {
    const adminLogin = await api.post<{ accessToken: string; user: { roles: string[] } }>('/v1/auth/login', {
      login: ADMIN.email,
      password: ADMIN.password,
    });
    expect(adminLogin.status).toBe(200);
    expect(adminLogin.body.user.roles).toContain('admin');
    const adminToken = adminLogin.body.accessToken;

    // An admin never locks their own account (nobody might be left to unlock it).
    const me = await api.get<{ id: string }>('/v1/me', adminToken);
    const selfLock = await api.post<{ code: string; reason: string }>(
      `/v1/admin/users/${me.body.id}/lock`,
      undefined,
      adminToken,
    );
    expect(selfLock.status).toBe(409);
    expect(selfLock.body).toMatchObject({ code: 'CONFLICT', reason: 'SELF_LOCK' });
    expect((await api.get('/v1/me', adminToken)).status).toBe(200);

    const user = await registerUser(api);
    expect((await api.get('/v1/admin/users', user.accessToken)).status).toBe(403);
    const friend = await registerUser(api);
    expect((await api.post(`/v1/me/contacts/${user.id}`, undefined, friend.accessToken)).status).toBe(204);
    const contactIds = async () =>
      (
        await api.get<{ data: { user: { id: string } }[] }>('/v1/me/contacts', friend.accessToken)
      ).body.data.map((c) => c.user.id);
    expect(await contactIds()).toEqual([user.id]);

    expect((await api.post(`/v1/admin/users/${user.id}/lock`, undefined, adminToken)).status).toBe(204);
    // Gone with the profile (404 at /v1/users/:id): not shown among anyone's contacts either.
    expect(await contactIds()).toEqual([]);
    expect((await api.get('/v1/me', user.accessToken)).status).toBe(401);
    expect((await api.post('/v1/auth/refresh', { refreshToken: user.refreshToken })).status).toBe(401);
    expect((await api.post('/v1/auth/login', { login: user.email, password: user.password })).status).toBe(
      401,
    );
    expect((await api.get(`/v1/users/${user.id}`, adminToken)).status).toBe(404);

    const users = await api.get<{ data: { id: string; lockedAt: string | null }[] }>(
      '/v1/admin/users?limit=100',
      adminToken,
    );
    expect(users.body.data.find((u) => u.id === user.id)?.lockedAt).toEqual(expect.any(String));

    expect((await api.post(`/v1/admin/users/${user.id}/unlock`, undefined, adminToken)).status).toBe(204);
    expect(await contactIds()).toEqual([user.id]);
    expect((await api.post('/v1/auth/login', { login: user.email, password: user.password })).status).toBe(
      200,
    );

    // Without SMTP_URL, registration mail lands in the outbox, readable by the admin.
    let outbox: { to: string; template: string; status: string; text: string | null }[] = [];
    for (let i = 0; i < 100 && outbox.filter((m) => m.to === user.email).length < 2; i++) {
      outbox = (await api.get<{ data: typeof outbox }>('/v1/admin/emails?limit=100', adminToken)).body.data;
      await sleep(50);
    }
    const mine = outbox.filter((m) => m.to === user.email);
    expect(mine.map((m) => m.template).sort()).toEqual(['verify-email', 'welcome']);
    expect(mine.every((m) => m.status === 'outbox')).toBe(true);
    const token = /Verification token: ([A-Za-z0-9_-]+)/.exec(
      mine.find((m) => m.template === 'verify-email')?.text ?? '',
    )?.[1];
    expect(token).toBeDefined();
    expect((await api.post('/v1/auth/verify-email', { token })).status).toBe(204);
    // Opened again (its first answer lost): the same success, the address stays verified.
    expect((await api.post('/v1/auth/verify-email', { token })).status).toBe(204);
    expect((await api.post('/v1/auth/verify-email', { token: `${token}x` })).status).toBe(400);
  });
});
