/**
 * REST review 16 (auth, profiles, contacts, jobs, reviews, notifications, admin), one test per hole,
 * against a real node in this process:
 * - a password typed composed ("é") on one device and decomposed ("e" + U+0301) on another, or
 *   pasted, is the same password: registering from one and logging in from the other answered 401;
 *   a hash stored before from a decomposed password still logs in, and is replaced at that login by
 *   one that works from both keyboards;
 * - turning off the mail of an always-mailed (security) type is a VALIDATION_FAILED that names the
 *   field in `errors` like every other one (it carried a lone `details.field`, so clients marked
 *   nothing);
 * - the OpenAPI document declares the 409 that POST /v1/me/contacts/{userId} answers at the
 *   CONTACTS_MAX_PER_USER cap (its own description promised it; generated clients had no case for it);
 * - a route that takes no body, called with `Content-Type: application/json` and nothing in the body
 *   (as many HTTP clients send every request), does its work: it answered 400 "Body cannot be empty",
 *   so such a client could not log out everywhere, close a job or add a contact. A route with a body
 *   schema still refuses an empty body;
 * - a worker's skills are stored and searched as job skills are (inner whitespace collapsed): a
 *   skill pasted with two spaces was a spelling no `skill=` search found, and a blank `skill=`
 *   matched no worker at all instead of filtering nothing;
 * - a PATCH of a job that changes nothing (`{}`, `{"budget": {}}`) leaves its version alone: it was
 *   bumped, so another editor's If-Match went stale (409 VERSION_MISMATCH) over a change of nothing;
 * - a password reset spends its link in the transaction that writes the password: when the write
 *   failed after the link was spent in a transaction of its own (the database gone for a moment),
 *   the retry answered "invalid or expired token" with the password unchanged, and no new link could
 *   be mailed for 10 minutes. A real PostgreSQL trigger refuses the write once here.
 */
import { hash } from '@node-rs/argon2';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { untilDefined } from '../support/poll.js';

type Json = Record<string, unknown>;
type Doc = { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };

const CONTACT_LIMIT = 1;

describe('REST review 16', () => {
  let testNode: TestNode;
  let api: ReturnType<typeof httpClient>;

  beforeAll(async () => {
    testNode = await startTestNode({ CONTACTS_MAX_PER_USER: String(CONTACT_LIMIT) });
    api = httpClient(testNode.node.baseUrl);
  });
  afterAll(async () => testNode.stop());

  it('logs in with a password typed in the other Unicode form than at registration, and changes it so too', async () => {
    const composed = 'Cr\u00e8me-br\u00fbl\u00e9e-Souffl\u00e9-7';
    const decomposed = composed.normalize('NFD');
    // Registered from a device that sends it decomposed.
    const user = await registerUser(api, { password: decomposed });
    // Logged in from one that sends it composed.
    const login = await api.post<Json>('/v1/auth/login', { login: user.username, password: composed });
    expect(login.status).toBe(200);
    const changed = await api.call('PUT', '/v1/auth/password', {
      token: login.body.accessToken as string,
      body: { currentPassword: decomposed, newPassword: `${decomposed}!` },
    });
    expect(changed.status).toBe(204);
    expect((await api.post('/v1/auth/login', { login: user.email, password: `${composed}!` })).status).toBe(
      200,
    );
    expect((await api.post('/v1/auth/login', { login: user.email, password: composed })).status).toBe(401);
  });

  it('logs in with a hash stored before normalisation, and from then on with either form', async () => {
    const composed = 'Cr\u00e8me-br\u00fbl\u00e9e-Souffl\u00e9-8';
    const decomposed = composed.normalize('NFD');
    const user = await registerUser(api);
    // What an earlier version stored for a password sent decomposed: the hash of the bytes as sent.
    const legacy = await hash(decomposed, { memoryCost: 19_456, timeCost: 2, parallelism: 1 });
    const client = new pg.Client({ connectionString: testNode.db.url });
    await client.connect();
    try {
      await client.query('update users set password_hash = $1 where id = $2', [legacy, user.id]);
    } finally {
      await client.end();
    }
    expect((await api.post('/v1/auth/login', { login: user.email, password: decomposed })).status).toBe(200);
    expect((await api.post('/v1/auth/login', { login: user.email, password: composed })).status).toBe(200);
    expect((await api.post('/v1/auth/login', { login: user.email, password: decomposed })).status).toBe(200);
  });

  it('names the field when a security type’s mail is turned off, as every VALIDATION_FAILED does', async () => {
    const user = await registerUser(api);
    const refused = await api.call<Json>('PUT', '/v1/me/notification-preferences', {
      token: user.accessToken,
      body: { preferences: { 'security.new_login': { email: 'never' } } },
    });
    expect(refused.status).toBe(400);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ path: 'body.preferences.security.new_login.email', message: expect.any(String) }],
    });
    const prefs = await api.get<{ preferences: Record<string, Json> }>(
      '/v1/me/notification-preferences',
      user.accessToken,
    );
    expect(prefs.body.preferences['security.new_login']).toMatchObject({ email: 'always' });
  });

  it('serves a bodiless route called with a JSON content type and an empty body; a route with a body still refuses it', async () => {
    const owner = await registerUser(api);
    const other = await registerUser(api);
    const empty = (path: string, token?: string) =>
      fetch(`${testNode.node.baseUrl}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        },
        body: '',
      });
    expect((await empty(`/v1/me/contacts/${other.id}`, owner.accessToken)).status).toBe(204);
    const contacts = await api.get<{ data: { user: { id: string } }[] }>(
      '/v1/me/contacts',
      owner.accessToken,
    );
    expect(contacts.body.data.map((contact) => contact.user.id)).toEqual([other.id]);
    const login = await empty('/v1/auth/login');
    expect(login.status).toBe(400);
    expect(await login.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((await empty('/v1/auth/logout-all', owner.accessToken)).status).toBe(204);
    expect((await api.get('/v1/me', owner.accessToken)).status).toBe(401);
  });

  it('stores and finds a worker skill however its inner whitespace was typed, as job skills', async () => {
    const worker = await registerUser(api, { roles: ['worker'] });
    const tag = worker.username.slice(-6);
    const patched = await api.call<{ workerProfile: { skills: string[] } }>('PATCH', '/v1/me', {
      token: worker.accessToken,
      body: { skills: [`Machine   Learning ${tag}`, `machine learning ${tag}`, 'Rust'] },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.workerProfile.skills).toEqual([`machine learning ${tag}`, 'rust']);
    for (const skill of [`machine learning ${tag}`, `Machine  Learning  ${tag}`]) {
      const found = await api.get<{ data: { id: string }[] }>(
        `/v1/users?skill=${encodeURIComponent(skill)}`,
        worker.accessToken,
      );
      expect(found.status).toBe(200);
      expect(found.body.data.map((user) => user.id)).toEqual([worker.id]);
    }
    const blank = await api.get<{ data: { id: string }[] }>(
      `/v1/users?skill=%20&q=${encodeURIComponent(worker.username)}`,
      worker.accessToken,
    );
    expect(blank.body.data.map((user) => user.id)).toEqual([worker.id]);
  });

  it('leaves a job’s version alone on a PATCH that changes nothing, so another editor’s If-Match still holds', async () => {
    const hirer = await registerUser(api, { roles: ['hirer'] });
    const categories = await api.get<{ data: { id: string }[] }>('/v1/categories', hirer.accessToken);
    const wallet = await api.get<{ currency: string }>('/v1/wallet', hirer.accessToken);
    const posted = await api.post<Json>(
      '/v1/jobs',
      {
        title: 'Tune a slow query',
        description: 'One report takes a minute.',
        categoryId: categories.body.data[0]?.id,
        budget: { kind: 'fixed', amount: 5_000, currency: wallet.body.currency },
      },
      hirer.accessToken,
    );
    expect(posted.status).toBe(201);
    const patch = (body: Json, version: number) =>
      api.call<Json>('PATCH', `/v1/jobs/${posted.body.id}`, {
        token: hirer.accessToken,
        headers: { 'if-match': `"${version}"` },
        body,
      });
    for (const nothing of [{}, { budget: {} }]) {
      const same = await patch(nothing, 0);
      expect(same.status).toBe(200);
      expect(same.body).toMatchObject({ version: 0, title: 'Tune a slow query' });
    }
    // The other editor read version 0: their change still applies.
    const changed = await patch({ title: 'Tune two slow queries' }, 0);
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ version: 1, title: 'Tune two slow queries' });
  });

  it('keeps a reset link working when writing the new password failed after the link was checked', async () => {
    const user = await registerUser(api);
    const sql = async (text: string, values: unknown[] = []) => {
      const client = new pg.Client({ connectionString: testNode.db.url });
      await client.connect();
      try {
        return (await client.query(text, values)).rows as Record<string, unknown>[];
      } finally {
        await client.end();
      }
    };
    expect((await api.post('/v1/auth/forgot-password', { email: user.email })).status).toBe(202);
    const token = await untilDefined(async () => {
      const [mail] = await sql(
        `select text_body from emails where to_address = $1 and template = 'reset-password'`,
        [user.email],
      );
      return /Reset token: ([A-Za-z0-9_-]+)/.exec(String(mail?.text_body ?? ''))?.[1];
    }, 'the reset mail');
    // The password write fails once, as with the database gone between reading and writing.
    await sql(`create function review16_refuse_password() returns trigger language plpgsql as $$
      begin
        if new.password_hash is distinct from old.password_hash then
          raise exception 'review16: password write refused';
        end if;
        return new;
      end $$`);
    await sql(`create trigger review16_refuse_password before update on users
      for each row execute function review16_refuse_password()`);
    const newPassword = 'Cobalt-Heron-Lantern-58';
    let failed: number;
    try {
      failed = (await api.post('/v1/auth/reset-password', { token, newPassword })).status;
    } finally {
      await sql('drop trigger review16_refuse_password on users');
      await sql('drop function review16_refuse_password()');
    }
    expect(failed).toBeGreaterThanOrEqual(500);
    expect((await api.post('/v1/auth/login', { login: user.email, password: user.password })).status).toBe(
      200,
    );
    // The retry with the same link works, once (repeated with the same password, it answers the same).
    expect((await api.post('/v1/auth/reset-password', { token, newPassword })).status).toBe(204);
    expect((await api.post('/v1/auth/login', { login: user.email, password: newPassword })).status).toBe(200);
    expect(
      (await api.post('/v1/auth/reset-password', { token, newPassword: `${newPassword}-2` })).status,
    ).toBe(400);
  });

  it('declares the 409 that adding one contact over CONTACTS_MAX_PER_USER answers', async () => {
    const owner: Registered = await registerUser(api);
    const first = await registerUser(api);
    const second = await registerUser(api);
    expect((await api.post(`/v1/me/contacts/${first.id}`, undefined, owner.accessToken)).status).toBe(204);
    const over = await api.post<Json>(`/v1/me/contacts/${second.id}`, undefined, owner.accessToken);
    expect(over.status).toBe(409);
    expect(over.body).toMatchObject({ code: 'CONFLICT', limit: CONTACT_LIMIT });
    const doc = (await api.get<Doc>('/openapi.json')).body;
    const responses = doc.paths['/v1/me/contacts/{userId}']?.post?.responses ?? {};
    expect(Object.keys(responses)).toContain(String(over.status));
  });
});
