/**
 * Marketplace review 16: PATCH /v1/bids/:id honours If-Match as PATCH /v1/jobs/:id does (it was
 * silently ignored); a group room needs at least one member besides its creator; other users' views
 * of a profile (GET /v1/users/:id, worker search, contact lists) do not name the admins; one skill
 * cap for worker and job skills, checked on the lower-case form that is stored.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_SKILL_LENGTH } from '../../protocol/src/rest/skills.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import { addContact, httpClient, promoteToAdmin, type Registered, registerUser } from '../support/http.js';

type Json = Record<string, unknown>;

describe('marketplace review 16', () => {
  let node: TestNode;
  let api: ReturnType<typeof httpClient>;
  let handle: DbHandle;
  let hirer: Registered;
  let worker: Registered;
  let categoryId: string;
  let currency: string;

  beforeAll(async () => {
    node = await startTestNode();
    api = httpClient(node.node.baseUrl);
    handle = await createDb({ kind: 'postgres', url: node.db.url, poolMax: 2 }, captureLogs().log);
    [hirer, worker] = await Promise.all([
      registerUser(api, { roles: ['hirer'] }),
      registerUser(api, { roles: ['worker'] }),
    ]);
    const list = await api.get<{ data: { id: string; slug: string }[] }>('/v1/categories', hirer.accessToken);
    categoryId = list.body.data.find((c) => c.slug === 'software-development')?.id as string;
    const wallet = await api.get<{ currency: string }>('/v1/wallet', hirer.accessToken);
    currency = wallet.status === 200 ? wallet.body.currency : 'USD';
  }, 60_000);
  afterAll(async () => {
    await handle?.close();
    await node?.stop();
  });

  const postJob = (overrides: Json = {}) =>
    api.post<Json>(
      '/v1/jobs',
      {
        title: 'Port a CLI to Rust',
        description: 'A small command line tool.',
        categoryId,
        skills: ['Rust'],
        budget: { kind: 'fixed', amount: 40_000, currency },
        remote: true,
        ...overrides,
      },
      hirer.accessToken,
    );

  const placeBid = async () => {
    const job = await postJob();
    expect(job.status).toBe(201);
    const bid = await api.call<Json>('POST', `/v1/jobs/${job.body.id}/bids`, {
      token: worker.accessToken,
      headers: { 'idempotency-key': randomUUID() },
      body: { amount: 35_000, deliveryDays: 7, coverLetter: 'Shipped three of these.' },
    });
    expect(bid.status).toBe(201);
    return bid.body as { id: string; version: number };
  };

  describe('PATCH /v1/bids/:id and If-Match', () => {
    it('refuses a stale If-Match with 409 VERSION_MISMATCH naming the current version, and changes nothing', async () => {
      const bid = await placeBid();
      expect(bid.version).toBe(0);
      const first = await api.call<Json>('PATCH', `/v1/bids/${bid.id}`, {
        token: worker.accessToken,
        headers: { 'if-match': '"0"' },
        body: { amount: 33_000 },
      });
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({ amount: 33_000, version: 1 });
      // A second tab still showing version 0 must not overwrite what the first one wrote.
      const stale = await api.call<Json>('PATCH', `/v1/bids/${bid.id}`, {
        token: worker.accessToken,
        headers: { 'if-match': '"0"' },
        body: { amount: 20_000 },
      });
      expect(stale.status).toBe(409);
      expect(stale.body).toMatchObject({ code: 'CONFLICT', reason: 'VERSION_MISMATCH', version: 1 });
      const read = await api.get<Json>(`/v1/bids/${bid.id}`, worker.accessToken);
      expect(read.body).toMatchObject({ amount: 33_000, version: 1 });
      // A weak tag never matches, not even the current version (RFC 9110 strong comparison).
      const weak = await api.call<Json>('PATCH', `/v1/bids/${bid.id}`, {
        token: worker.accessToken,
        headers: { 'if-match': 'W/"1"' },
        body: { deliveryDays: 9 },
      });
      expect(weak.status).toBe(409);
      expect(weak.body).toMatchObject({ code: 'CONFLICT', reason: 'VERSION_MISMATCH', version: 1 });
      // The current version (quoted or bare, as for jobs) passes.
      const fresh = await api.call<Json>('PATCH', `/v1/bids/${bid.id}`, {
        token: worker.accessToken,
        headers: { 'if-match': '1' },
        body: { deliveryDays: 9 },
      });
      expect(fresh.status).toBe(200);
      expect(fresh.body).toMatchObject({ amount: 33_000, deliveryDays: 9, version: 2 });
    });

    it('a malformed If-Match is 400 naming headers.if-match, never ignored', async () => {
      const bid = await placeBid();
      const bad = await api.call<Json>('PATCH', `/v1/bids/${bid.id}`, {
        token: worker.accessToken,
        headers: { 'if-match': 'yesterday' },
        body: { amount: 30_000 },
      });
      expect(bad.status).toBe(400);
      expect(bad.body).toMatchObject({
        code: 'VALIDATION_FAILED',
        errors: [{ path: 'headers.if-match' }],
      });
      expect((await api.get<Json>(`/v1/bids/${bid.id}`, worker.accessToken)).body).toMatchObject({
        amount: 35_000,
        version: 0,
      });
    });

    it('a PATCH that changes nothing keeps the version, so the hirer’s If-Match on accept stays good', async () => {
      const bid = await placeBid();
      const same = await api.call<Json>('PATCH', `/v1/bids/${bid.id}`, {
        token: worker.accessToken,
        headers: { 'if-match': '"0"' },
        body: {},
      });
      expect(same.status).toBe(200);
      expect(same.body).toMatchObject({ version: 0, amount: 35_000 });
    });

    it('closing a job and withdrawing a bid honour If-Match too: a stale one is 409 VERSION_MISMATCH and changes nothing', async () => {
      const bid = await placeBid();
      const changed = await api.call<Json>('PATCH', `/v1/bids/${bid.id}`, {
        token: worker.accessToken,
        body: { amount: 34_000 },
      });
      expect(changed.body).toMatchObject({ version: 1 });
      const staleWithdraw = await api.call<Json>('POST', `/v1/bids/${bid.id}/withdraw`, {
        token: worker.accessToken,
        headers: { 'if-match': '"0"' },
      });
      expect(staleWithdraw.status).toBe(409);
      expect(staleWithdraw.body).toMatchObject({ reason: 'VERSION_MISMATCH', version: 1 });
      expect((await api.get<Json>(`/v1/bids/${bid.id}`, worker.accessToken)).body.status).toBe('pending');
      const withdrawn = await api.call<Json>('POST', `/v1/bids/${bid.id}/withdraw`, {
        token: worker.accessToken,
        headers: { 'if-match': '"1"' },
      });
      expect(withdrawn.status).toBe(200);
      expect(withdrawn.body).toMatchObject({ status: 'withdrawn', version: 2 });

      const job = await postJob();
      const edited = await api.call<Json>('PATCH', `/v1/jobs/${job.body.id}`, {
        token: hirer.accessToken,
        body: { title: 'Port a CLI to Rust, with tests' },
      });
      expect(edited.body).toMatchObject({ version: 1 });
      const staleClose = await api.call<Json>('POST', `/v1/jobs/${job.body.id}/close`, {
        token: hirer.accessToken,
        headers: { 'if-match': '"0"' },
      });
      expect(staleClose.status).toBe(409);
      expect(staleClose.body).toMatchObject({ reason: 'VERSION_MISMATCH', version: 1 });
      expect((await api.get<Json>(`/v1/jobs/${job.body.id}`, hirer.accessToken)).body.status).toBe('open');
      const badClose = await api.call<Json>('POST', `/v1/jobs/${job.body.id}/close`, {
        token: hirer.accessToken,
        headers: { 'if-match': 'soon' },
      });
      expect(badClose.status).toBe(400);
      expect(badClose.body).toMatchObject({ errors: [{ path: 'headers.if-match' }] });
      const closed = await api.call<Json>('POST', `/v1/jobs/${job.body.id}/close`, {
        token: hirer.accessToken,
        headers: { 'if-match': '"1"' },
      });
      expect(closed.status).toBe(200);
      expect(closed.body).toMatchObject({ status: 'closed', version: 2 });
    });

    it('the OpenAPI document declares If-Match on updateBid, closeJob and withdrawBid as on updateJob', async () => {
      type Op = { operationId?: string; parameters?: { in: string; name: string; required?: boolean }[] };
      const doc = (await api.get<{ paths: Record<string, Record<string, Op>> }>('/openapi.json')).body;
      const ifMatch = (operationId: string) =>
        Object.values(doc.paths)
          .flatMap((item) => Object.values(item))
          .find((op) => op.operationId === operationId)
          ?.parameters?.find((p) => p.in === 'header' && p.name === 'if-match');
      expect(ifMatch('updateJob')).toBeDefined();
      for (const operationId of ['updateBid', 'closeJob', 'withdrawBid']) {
        expect(ifMatch(operationId), operationId).toMatchObject({
          required: ifMatch('updateJob')?.required ?? false,
        });
      }
    });
  });

  describe('group rooms', () => {
    it('a group naming only its creator (or nobody else) is 400 and creates no room', async () => {
      const creator = await registerUser(api);
      const before = await api.get<{ data: unknown[] }>('/v1/rooms', creator.accessToken);
      const alone = await api.post<Json>(
        '/v1/rooms',
        { kind: 'group', memberIds: [creator.id, creator.id], title: 'Just me' },
        creator.accessToken,
      );
      expect(alone.status).toBe(400);
      expect(alone.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: 'body.memberIds' }] });
      const after = await api.get<{ data: unknown[] }>('/v1/rooms', creator.accessToken);
      expect(after.body.data).toHaveLength(before.body.data.length);
      // With another member it is a group as before.
      const other = await registerUser(api);
      await addContact(api, other, creator);
      const group = await api.post<Json>(
        '/v1/rooms',
        { kind: 'group', memberIds: [creator.id, other.id] },
        creator.accessToken,
      );
      expect(group.status).toBe(201);
      expect(new Set(group.body.memberIds as string[])).toEqual(new Set([creator.id, other.id]));
    });
  });

  describe('admins are not named to other users', () => {
    it('GET /v1/users/:id, worker search and contact lists leave out admin; /v1/me and the admin console keep it', async () => {
      const moderator = await registerUser(api, { roles: ['worker'] });
      const bio = `moderator${randomUUID().slice(0, 8)}`;
      expect(
        (await api.call('PATCH', '/v1/me', { token: moderator.accessToken, body: { bio } })).status,
      ).toBe(200);
      const adminToken = await promoteToAdmin(api, handle.db, moderator, ['worker']);
      const viewer = await registerUser(api, { roles: ['hirer'] });
      await addContact(api, viewer, moderator);

      const profile = await api.get<Json>(`/v1/users/${moderator.id}`, viewer.accessToken);
      expect(profile.status).toBe(200);
      expect(profile.body.roles).toEqual(['worker']);

      const search = await api.get<{ data: Json[] }>(`/v1/users?q=${bio}`, viewer.accessToken);
      expect(search.status).toBe(200);
      const found = search.body.data.find((u) => u.id === moderator.id);
      expect(found?.roles).toEqual(['worker']);

      const contacts = await api.get<{ data: { user: Json }[] }>('/v1/me/contacts', viewer.accessToken);
      expect(contacts.body.data.find((c) => c.user.id === moderator.id)?.user.roles).toEqual(['worker']);

      const me = await api.get<Json>('/v1/me', adminToken);
      expect(me.body.roles).toEqual(['worker', 'admin']);
      const listed = await api.get<{ data: Json[] }>('/v1/admin/users?limit=100', adminToken);
      expect(listed.status).toBe(200);
      expect(listed.body.data.find((u) => u.id === moderator.id)?.roles).toEqual(['worker', 'admin']);
    });
  });

  describe('one skill cap, checked on the stored (lower-case) form', () => {
    it('worker and job skills share the cap', async () => {
      const skill = 'x'.repeat(MAX_SKILL_LENGTH);
      const me = await api.call<Json>('PATCH', '/v1/me', {
        token: worker.accessToken,
        body: { skills: [skill] },
      });
      expect(me.status).toBe(200);
      expect(me.body.workerProfile).toMatchObject({ skills: [skill] });
      const job = await postJob({ skills: [skill] });
      expect(job.status).toBe(201);
      for (const refused of [
        await api.call<Json>('PATCH', '/v1/me', {
          token: worker.accessToken,
          body: { skills: [`${skill}x`] },
        }),
        await postJob({ skills: [`${skill}x`] }),
      ]) {
        expect(refused.status).toBe(400);
        expect(refused.body).toMatchObject({ code: 'VALIDATION_FAILED' });
      }
    });

    it('a skill that grows past the cap when lower-cased ("İ" → "i" + U+0307) is 400, for a worker as for a job', async () => {
      // 26 characters as sent (within every cap), 52 as stored: "İ" lower-cases to "i" + U+0307.
      const dotted = 'İ'.repeat(Math.floor(MAX_SKILL_LENGTH / 2) + 1);
      expect(dotted.length).toBeLessThanOrEqual(40);
      expect(dotted.toLowerCase().length).toBeGreaterThan(MAX_SKILL_LENGTH);
      const me = await api.call<Json>('PATCH', '/v1/me', {
        token: worker.accessToken,
        body: { skills: [dotted] },
      });
      expect(me.status).toBe(400);
      expect(me.body).toMatchObject({ code: 'VALIDATION_FAILED' });
      const stored = (await api.get<Json>('/v1/me', worker.accessToken)).body.workerProfile as {
        skills: string[];
      };
      expect(stored.skills.every((s) => s.length <= MAX_SKILL_LENGTH)).toBe(true);
      const job = await postJob({ skills: [dotted] });
      expect(job.status).toBe(400);
      expect(job.body).toMatchObject({ code: 'VALIDATION_FAILED' });
    });
  });
});
