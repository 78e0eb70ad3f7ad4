/**
 * Free text people type and others read (names, titles, notes, bios, descriptions, letters,
 * reviews) over real HTTP on one node: control characters, line breaks in one-line fields,
 * bidi overrides and invisible-only values are refused with a 400 problem naming the field (the
 * requests a review found accepted), nothing of a refused request is stored, and ordinary text —
 * emoji with ZWJ sequences, Arabic and Hebrew, accents, CJK — still goes through, trimmed and in NFC.
 * Also: PATCH /v1/me refuses an hourly rate outside the platform currency, as a job budget is refused.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEXT_MESSAGES } from '../../protocol/src/rest/text.js';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { addContact, type HttpResult, httpClient, type Registered, registerUser } from '../support/http.js';

type Json = Record<string, unknown>;
interface FieldError {
  path: string;
  message: string;
}

const ADMIN = { email: 'human-text-admin@example.test', password: 'Admin-Password-123!' };

let node: TestNode;
let api: ReturnType<typeof httpClient>;
let adminToken: string;
let hirer: Registered;
let worker: Registered;
let categoryId: string;
let currency: string;

beforeAll(async () => {
  node = await startTestNode({
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    OUTBOX_POLL_MS: '20',
  });
  api = httpClient(node.node.baseUrl);
  const login = await api.post<{ accessToken: string }>('/v1/auth/login', {
    login: ADMIN.email,
    password: ADMIN.password,
  });
  adminToken = login.body.accessToken;
  [hirer, worker] = await Promise.all([
    registerUser(api, { roles: ['hirer'] }),
    registerUser(api, { roles: ['worker'] }),
  ]);
  const categories = await api.get<{ data: { id: string; slug: string }[] }>(
    '/v1/categories',
    hirer.accessToken,
  );
  categoryId = categories.body.data.find((c) => c.slug === 'software-development')?.id as string;
  currency = (await api.get<{ currency: string }>('/v1/wallet', hirer.accessToken)).body.currency;
}, 60_000);

afterAll(async () => {
  await node?.stop();
});

/** A 400 problem+json VALIDATION_FAILED with exactly these field errors (order aside). */
function expectRefused(response: HttpResult<Json>, errors: readonly FieldError[]): void {
  expect(response.status, JSON.stringify(response.body)).toBe(400);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(response.body).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
  const sorted = (list: readonly FieldError[]) =>
    [...list].sort((a, b) => `${a.path} ${a.message}`.localeCompare(`${b.path} ${b.message}`));
  expect(sorted(response.body.errors as FieldError[])).toEqual(sorted(errors));
}

const patchMe = (token: string, body: Json) => api.call<Json>('PATCH', '/v1/me', { token, body });

const jobBody = (overrides: Json = {}): Json => ({
  title: 'Port a CLI to Rust',
  description: 'A small command-line tool, about 2k lines.',
  categoryId,
  skills: ['Rust'],
  budget: { kind: 'fixed', amount: 40_000, currency },
  ...overrides,
});

const postJob = (token: string, overrides: Json = {}) =>
  api.post<Json>('/v1/jobs', jobBody(overrides), token);

const withKey = (token: string, body: unknown) => ({
  token,
  body,
  headers: { 'idempotency-key': randomUUID() },
});

describe('refused free text: the requests the review found accepted', () => {
  it('PATCH /v1/me: a bidi override and a bell in displayName, an invisible-only displayName', async () => {
    const user = await registerUser(api);
    expectRefused(await patchMe(user.accessToken, { displayName: '\u202Eevil\u0007' }), [
      { path: 'body.displayName', message: TEXT_MESSAGES.control },
      { path: 'body.displayName', message: TEXT_MESSAGES.direction },
    ]);
    expectRefused(await patchMe(user.accessToken, { displayName: '\u200B' }), [
      { path: 'body.displayName', message: TEXT_MESSAGES.invisible },
    ]);
    const me = await api.get<Json>('/v1/me', user.accessToken);
    expect(me.body.displayName).toBeNull();
  });

  it('POST /v1/jobs: controls and a forged header line in the title, a blank description', async () => {
    const response = await postJob(hirer.accessToken, {
      title: '\u0001\bctl\r\nX-Injected: 1',
      description: '   ',
    });
    expectRefused(response, [
      { path: 'body.title', message: TEXT_MESSAGES.singleLine },
      { path: 'body.title', message: TEXT_MESSAGES.control },
      { path: 'body.description', message: TEXT_MESSAGES.empty },
    ]);
    const mine = await api.get<{ data: unknown[] }>(
      `/v1/jobs?hirerId=${hirer.id}&status=open`,
      hirer.accessToken,
    );
    expect(mine.body.data).toEqual([]);
  });

  it('POST /v1/wallet/transfers: a note of a bidi override and a bell', async () => {
    const response = await api.call<Json>(
      'POST',
      '/v1/wallet/transfers',
      withKey(hirer.accessToken, { toUserId: worker.id, amount: 1, note: '\u202E\u0007' }),
    );
    expectRefused(response, [
      { path: 'body.note', message: TEXT_MESSAGES.control },
      { path: 'body.note', message: TEXT_MESSAGES.direction },
      { path: 'body.note', message: TEXT_MESSAGES.invisible },
    ]);
  });
});

describe('refused free text: every field under the rule', () => {
  it('profile: location, skills, bio', async () => {
    const user = await registerUser(api, { roles: ['worker'] });
    expectRefused(await patchMe(user.accessToken, { location: 'Berlin\u2066' }), [
      { path: 'body.location', message: TEXT_MESSAGES.direction },
    ]);
    expectRefused(await patchMe(user.accessToken, { skills: ['ok', 'type\nscript'] }), [
      { path: 'body.skills.1', message: TEXT_MESSAGES.singleLine },
    ]);
    expectRefused(await patchMe(user.accessToken, { bio: 'Hello\u001b[2J' }), [
      { path: 'body.bio', message: TEXT_MESSAGES.control },
    ]);
    expectRefused(await patchMe(user.accessToken, { bio: '\u200B\n\u2060' }), [
      { path: 'body.bio', message: TEXT_MESSAGES.invisible },
    ]);
  });

  it('jobs: location, skills, and the same rules on PATCH', async () => {
    expectRefused(await postJob(hirer.accessToken, { location: '\uFEFF\u200B' }), [
      { path: 'body.location', message: TEXT_MESSAGES.invisible },
    ]);
    expectRefused(await postJob(hirer.accessToken, { skills: ['Rust\u202D'] }), [
      { path: 'body.skills.0', message: TEXT_MESSAGES.direction },
    ]);
    const created = await postJob(hirer.accessToken);
    expect(created.status).toBe(201);
    const patch = await api.call<Json>('PATCH', `/v1/jobs/${created.body.id}`, {
      token: hirer.accessToken,
      body: { title: 'Title\u2028second', description: '\n\t\n' },
    });
    expectRefused(patch, [
      { path: 'body.title', message: TEXT_MESSAGES.singleLine },
      { path: 'body.description', message: TEXT_MESSAGES.empty },
    ]);
  });

  it('bids: the cover letter, on create and on update', async () => {
    const job = await postJob(hirer.accessToken);
    const bids = `/v1/jobs/${job.body.id}/bids`;
    expectRefused(
      await api.call<Json>(
        'POST',
        bids,
        withKey(worker.accessToken, { amount: 100, deliveryDays: 3, coverLetter: 'Hi\u0008\u0008' }),
      ),
      [{ path: 'body.coverLetter', message: TEXT_MESSAGES.control }],
    );
    expectRefused(
      await api.call<Json>('PATCH', `/v1/bids/${randomUUID()}`, {
        token: worker.accessToken,
        body: { coverLetter: 'x\u009b31m' },
      }),
      [{ path: 'body.coverLetter', message: TEXT_MESSAGES.control }],
    );
  });

  it('contracts: the transition and resolution messages', async () => {
    expectRefused(
      await api.call<Json>(
        'POST',
        `/v1/contracts/${randomUUID()}/deliver`,
        withKey(worker.accessToken, { message: 'done\u0007' }),
      ),
      [{ path: 'body.message', message: TEXT_MESSAGES.control }],
    );
    expectRefused(
      await api.call<Json>(
        'POST',
        `/v1/admin/contracts/${randomUUID()}/resolve`,
        withKey(adminToken, { toWorker: 1, toHirer: 1, message: 'split\u007f' }),
      ),
      [{ path: 'body.message', message: TEXT_MESSAGES.control }],
    );
  });

  it('reviews: the text, and the reason an admin hides one for', async () => {
    expectRefused(
      await api.post<Json>(
        `/v1/contracts/${randomUUID()}/review`,
        { rating: 5, text: 'Great\u0007' },
        hirer.accessToken,
      ),
      [{ path: 'body.text', message: TEXT_MESSAGES.control }],
    );
    expectRefused(
      await api.post<Json>(`/v1/admin/reviews/${randomUUID()}/hide`, { reason: '\u2067spam' }, adminToken),
      [{ path: 'body.reason', message: TEXT_MESSAGES.direction }],
    );
  });

  it('rooms and categories: the room title, the category name', async () => {
    const other = await registerUser(api);
    expectRefused(
      await api.post<Json>(
        '/v1/rooms',
        { kind: 'group', memberIds: [other.id], title: '\u3164' },
        hirer.accessToken,
      ),
      [{ path: 'body.title', message: TEXT_MESSAGES.invisible }],
    );
    expectRefused(
      await api.post<Json>('/v1/admin/categories', { slug: 'ctl', name: 'Ops\r\nDev' }, adminToken),
      [{ path: 'body.name', message: TEXT_MESSAGES.singleLine }],
    );
    expectRefused(
      await api.call<Json>('PATCH', `/v1/admin/categories/${categoryId}`, {
        token: adminToken,
        body: { name: '\u202Bnet' },
      }),
      [{ path: 'body.name', message: TEXT_MESSAGES.direction }],
    );
  });
});

describe('ordinary text still goes through, trimmed and in NFC', () => {
  it('a profile with emoji ZWJ sequences, Arabic, Hebrew, accents and CJK', async () => {
    const user = await registerUser(api, { roles: ['worker'] });
    const patch = await patchMe(user.accessToken, {
      displayName: '  Zoe\u0308 👩🏽‍💻  ',
      bio: 'مطوّرة برمجيات\nשלום! 👨‍👩‍👧‍👦\n\tCafe\u0301 & 東京',
      location: 'תל אביב–יפו',
      skills: ['  TypeScript ', 'Café', '日本語'],
    });
    expect(patch.status, JSON.stringify(patch.body)).toBe(200);
    const expected = {
      displayName: 'Zoë 👩🏽‍💻',
      bio: 'مطوّرة برمجيات\nשלום! 👨‍👩‍👧‍👦\n\tCafé & 東京',
      location: 'תל אביב–יפו',
    };
    expect(patch.body).toMatchObject(expected);
    const me = await api.get<Json>('/v1/me', user.accessToken);
    expect(me.body).toMatchObject({
      ...expected,
      workerProfile: { skills: ['typescript', 'café', '日本語'] },
    });
  });

  it('a job, a bid and a bid update in several scripts', async () => {
    const job = await postJob(hirer.accessToken, {
      title: ' ترجمة موقع 🌍 — site translation ',
      description: 'עברית ו-العربية\r\n\r\nDeadline: 金曜日 🏳️‍🌈',
      location: 'Zürich',
      skills: ['Arabic', 'עברית'],
    });
    expect(job.status, JSON.stringify(job.body)).toBe(201);
    expect(job.body).toMatchObject({
      title: 'ترجمة موقع 🌍 — site translation',
      description: 'עברית ו-العربية\r\n\r\nDeadline: 金曜日 🏳️‍🌈',
      location: 'Zürich',
    });
    const bid = await api.call<Json>(
      'POST',
      `/v1/jobs/${job.body.id}/bids`,
      withKey(worker.accessToken, { amount: 30_000, deliveryDays: 4, coverLetter: 'مرحبا 👋\nI can do it.' }),
    );
    expect(bid.status, JSON.stringify(bid.body)).toBe(201);
    expect(bid.body.coverLetter).toBe('مرحبا 👋\nI can do it.');
    const updated = await api.call<Json>('PATCH', `/v1/bids/${bid.body.id}`, {
      token: worker.accessToken,
      body: { coverLetter: '  Re\u0301sume\u0301 attached 📎  ' },
    });
    expect(updated.status, JSON.stringify(updated.body)).toBe(200);
    expect(updated.body.coverLetter).toBe('Résumé attached 📎');
  });

  it('a room title and a category name', async () => {
    const other = await registerUser(api);
    await addContact(api, other, hirer);
    const room = await api.post<Json>(
      '/v1/rooms',
      { kind: 'group', memberIds: [other.id], title: 'Équipe 🚀 فريق' },
      hirer.accessToken,
    );
    expect(room.status, JSON.stringify(room.body)).toBe(201);
    expect(room.body.title).toBe('Équipe 🚀 فريق');
    const slug = `t${randomUUID().slice(0, 8)}`;
    const category = await api.post<Json>(
      '/v1/admin/categories',
      { slug, name: ' ترجمة · תרגום ' },
      adminToken,
    );
    expect(category.status, JSON.stringify(category.body)).toBe(201);
    expect(category.body.name).toBe('ترجمة · תרגום');
  });

  it('a transfer note with emoji and RTL text', async () => {
    const payer = await registerUser(api);
    const topUp = await api.call(
      'POST',
      '/v1/wallet/top-ups',
      withKey(payer.accessToken, { amount: 500, card: SandboxCard.SUCCEEDS }),
    );
    expect(topUp.status, JSON.stringify(topUp.body)).toBe(202);
    for (let attempt = 0; attempt < 200; attempt++) {
      const wallet = await api.get<{ available: number }>('/v1/wallet', payer.accessToken);
      if (wallet.body.available === 500) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const sent = await api.call<{ transaction: Json }>(
      'POST',
      '/v1/wallet/transfers',
      withKey(payer.accessToken, { toUserId: worker.id, amount: 100, note: ' شكرا 🙏 תודה ' }),
    );
    expect(sent.status, JSON.stringify(sent.body)).toBe(201);
    expect(sent.body.transaction.note).toBe('شكرا 🙏 תודה');
  });
});

describe('hourly rate currency', () => {
  it('PATCH /v1/me refuses an hourly rate outside the platform currency, as a job budget is refused', async () => {
    const user = await registerUser(api, { roles: ['worker'] });
    const foreign = currency === 'EUR' ? 'USD' : 'EUR';
    const refused = await patchMe(user.accessToken, {
      displayName: 'Rate setter',
      hourlyRate: { amount: 9500, currency: foreign },
    });
    const error = { path: 'body.hourlyRate.currency', message: `must be ${currency}` };
    expectRefused(refused, [error]);
    // The same code and shape as a job budget in another currency.
    const budget = await postJob(hirer.accessToken, {
      budget: { kind: 'hourly', amount: 9500, currency: foreign },
    });
    expectRefused(budget, [{ path: 'body.budget.currency', message: error.message }]);
    expect(refused.body.detail).toBe(budget.body.detail);
    // Nothing of the refused PATCH was applied.
    expect((await api.get<Json>('/v1/me', user.accessToken)).body).toMatchObject({
      displayName: null,
      workerProfile: { hourlyRate: null },
    });

    const accepted = await patchMe(user.accessToken, { hourlyRate: { amount: 9500, currency } });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(200);
    expect(accepted.body).toMatchObject({ workerProfile: { hourlyRate: { amount: 9500, currency } } });
    const cleared = await patchMe(user.accessToken, { hourlyRate: null });
    expect(cleared.status).toBe(200);
    expect(cleared.body).toMatchObject({ workerProfile: { hourlyRate: null } });
  });
});
