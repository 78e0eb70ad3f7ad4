/**
 * The authenticated REST hot path (issue 15) on a real node, for what its optimizations could break:
 * - GET /v1/me reads the user row through a per-tick batch (one `where id in (…)` for all requests
 *   of an event-loop turn): many users asking at once each get their own profile, a PATCH /v1/me is
 *   seen by the very next GET (the batch is not a cache), and a locked user is refused even when
 *   asking in the same turn as others;
 * - helmet's headers, now computed once, are still on every answer (and the problem+json errors);
 * - GET /v1/me's compiled serializer writes exactly the fields of Me, in order; GET /v1/users/:id,
 *   whose reads (row, ratings, contract figures, mutual-contact check) are batched per tick, gives
 *   each of many simultaneous viewers the right profile, and presence only between mutual contacts;
 * - large list answers are compressed (br or gzip, as the client accepts) and decode to the same
 *   JSON; small bodies and non-list routes never are.
 */
import { request as httpRequest } from 'node:http';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Me, UserProfile } from '../../protocol/src/rest/users.js';
import { COMPRESSION_THRESHOLD_BYTES } from '../../src/http/plugins/compression.js';
import { helmetHeaders } from '../../src/http/plugins/security.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { addContact, httpClient, makeContacts, type Registered, registerUser } from '../support/http.js';

const ADMIN = { email: 'hot-path-admin@example.test', password: 'Saffron-Lynx-2024!' };

interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** A GET without fetch's transparent decompression: the bytes as they crossed the wire. */
function rawGet(baseUrl: string, path: string, headers: Record<string, string>): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, baseUrl), { method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('authenticated REST hot path', () => {
  let node: TestNode;
  let api: ReturnType<typeof httpClient>;
  let baseUrl: string;
  const users: Registered[] = [];

  beforeAll(async () => {
    node = await startTestNode({
      RATE_LIMIT_PER_MINUTE: '100000',
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
    });
    baseUrl = node.node.baseUrl;
    api = httpClient(baseUrl);
    // Ten registrations at a time: each hashes a password (argon2id).
    while (users.length < 30) {
      users.push(...(await Promise.all(Array.from({ length: 10 }, () => registerUser(api)))));
    }
  }, 60_000);
  afterAll(async () => {
    await node?.stop();
  });

  const getMe = (user: Registered) =>
    api.get<{ id: string; username: string; displayName: string | null; email: string }>(
      '/v1/me',
      user.accessToken,
    );
  const patchMe = (user: Registered, displayName: string) =>
    api.call<{ displayName: string | null }>('PATCH', '/v1/me', {
      token: user.accessToken,
      body: { displayName },
    });

  it('answers GET /v1/me asked by many users at once with each one its own profile', async () => {
    const mes = await Promise.all(users.map(getMe));
    expect(mes.map((me) => me.status)).toEqual(users.map(() => 200));
    expect(mes.map((me) => [me.body.id, me.body.username, me.body.email])).toEqual(
      users.map((u) => [u.id, u.username, u.email]),
    );
  });

  it('shows a profile change to the next GET /v1/me at once', async () => {
    for (const round of [1, 2, 3]) {
      // Every user changes and reads back at the same time, so the reads share batches.
      const seen = await Promise.all(
        users.map(async (user, i) => {
          const name = `round ${round} user ${i}`;
          const patched = await patchMe(user, name);
          expect(patched.status).toBe(200);
          return (await getMe(user)).body.displayName;
        }),
      );
      expect(seen).toEqual(users.map((_, i) => `round ${round} user ${i}`));
    }
  });

  it('refuses a locked user, also when asking in the same turn as others', async () => {
    const admin = await api.post<{ accessToken: string }>('/v1/auth/login', {
      login: ADMIN.email,
      password: ADMIN.password,
    });
    const victim = users[users.length - 1] as Registered;
    const others = users.slice(0, 10);
    const locked = await api.post(`/v1/admin/users/${victim.id}/lock`, undefined, admin.body.accessToken);
    expect(locked.status).toBe(204);
    const answers = await Promise.all([victim, ...others, victim].map(getMe));
    for (const answer of [answers[0], answers[answers.length - 1]]) {
      if (answer === undefined) throw new Error('missing answer');
      expect(answer.status).toBe(401);
      expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect((answer.body as unknown as { code: string }).code).toBe('UNAUTHORIZED');
    }
    expect(answers.slice(1, -1).map((a) => [a.status, a.body.id])).toEqual(others.map((u) => [200, u.id]));
  });

  it("keeps helmet's headers on answers and errors", async () => {
    const auth = { authorization: `Bearer ${users[0]?.accessToken}` };
    const helmet = helmetHeaders();
    expect(helmet.length).toBeGreaterThanOrEqual(12);
    for (const answer of [
      await rawGet(baseUrl, '/v1/me', auth),
      await rawGet(baseUrl, `/v1/users/${users[1]?.id}`, auth),
      await rawGet(baseUrl, '/v1/me', {}),
      await rawGet(baseUrl, '/v1/users/not-a-uuid', auth),
      await rawGet(baseUrl, '/v1/no-such-route', {}),
      await rawGet(baseUrl, '/health/live', {}),
    ]) {
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
      expect(answer.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(answer.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
      expect(String(answer.headers['content-security-policy'])).toContain("default-src 'self'");
      // Every header helmet's defaults set, each once, with helmet's value.
      for (const [name, value] of helmet) expect(answer.headers[name.toLowerCase()]).toBe(value);
      expect(answer.headers['x-request-id']).toBeTypeOf('string');
    }
  });

  it('tells caches to keep no API answer (tokens, profiles, wallets), errors included', async () => {
    const auth = { authorization: `Bearer ${users[0]?.accessToken}` };
    for (const answer of [
      await rawGet(baseUrl, '/v1/me', auth),
      await rawGet(baseUrl, `/v1/users/${users[1]?.id}`, auth),
      await rawGet(baseUrl, '/v1/me', {}),
      await rawGet(baseUrl, '/v1/no-such-route', {}),
    ]) {
      expect(answer.headers['cache-control']).toBe('no-store');
    }
  });

  it('writes GET /v1/me through the compiled serializer with exactly the fields of Me, in order', async () => {
    const user = users[0] as Registered;
    const answer = await rawGet(baseUrl, '/v1/me', { authorization: `Bearer ${user.accessToken}` });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
    const body = JSON.parse(answer.body.toString('utf8')) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(Object.keys(Me.shape));
    expect(Me.strict().safeParse(body).success).toBe(true);
    expect(body).toMatchObject({ id: user.id, email: user.email, username: user.username });
  });

  it('answers GET /v1/users/:id asked by many at once: own profile each, presence only between mutual contacts', async () => {
    const [a, b, c, d, e] = users.slice(21, 26) as [
      Registered,
      Registered,
      Registered,
      Registered,
      Registered,
    ];
    await makeContacts(api, a, b); // mutual: each sees the other's presence
    await addContact(api, c, d); // one-sided: neither sees it
    const asks: ReadonlyArray<readonly [Registered, Registered, boolean]> = [
      [a, b, true],
      [b, a, true],
      [a, a, true], // yourself
      [c, d, false],
      [d, c, false],
      [e, b, false],
      [e, a, false],
      [b, c, false],
      ...users
        .slice(0, 12)
        .map(
          (viewer, i) => [viewer, users[(i + 5) % 12] as Registered, viewer === users[(i + 5) % 12]] as const,
        ),
    ];
    const answers = await Promise.all(
      asks.map(([viewer, target]) => api.get<UserProfile>(`/v1/users/${target.id}`, viewer.accessToken)),
    );
    for (const [i, answer] of answers.entries()) {
      const [viewer, target, sees] = asks[i] as (typeof asks)[number];
      expect(answer.status, `${viewer.username} → ${target.username}`).toBe(200);
      expect([answer.body.id, answer.body.username]).toEqual([target.id, target.username]);
      expect(UserProfile.strict().safeParse(answer.body).success).toBe(true);
      expect(answer.body.presence !== undefined, `${viewer.username} → ${target.username}`).toBe(sees);
      expect(answer.body).not.toHaveProperty('email');
    }
    // Removing the contact is seen by the very next read (the batch is not a cache).
    const removed = await api.call('DELETE', `/v1/me/contacts/${a.id}`, { token: b.accessToken });
    expect(removed.status).toBe(204);
    const after = await Promise.all([
      api.get<UserProfile>(`/v1/users/${b.id}`, a.accessToken),
      api.get<UserProfile>(`/v1/users/${a.id}`, b.accessToken),
    ]);
    expect(after.map((answer) => answer.body.presence)).toEqual([undefined, undefined]);
  });

  it('compresses a large list as the client accepts and never a small body', async () => {
    const owner = users[0] as Registered;
    const auth = { authorization: `Bearer ${owner.accessToken}` };
    for (const contact of users.slice(1, 15)) {
      const added = await api.call('POST', `/v1/me/contacts/${contact.id}`, { token: owner.accessToken });
      expect(added.status).toBe(204);
    }

    const plain = await rawGet(baseUrl, '/v1/me/contacts', auth);
    expect(plain.status).toBe(200);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.length).toBeGreaterThan(COMPRESSION_THRESHOLD_BYTES);
    const expected: unknown = JSON.parse(plain.body.toString('utf8'));
    expect((expected as { data: unknown[] }).data).toHaveLength(14);

    const br = await rawGet(baseUrl, '/v1/me/contacts', { ...auth, 'accept-encoding': 'gzip, deflate, br' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(String(br.headers.vary)).toMatch(/accept-encoding/i);
    expect(br.body.length).toBeLessThan(plain.body.length);
    expect(JSON.parse(brotliDecompressSync(br.body).toString('utf8'))).toEqual(expected);

    const gzip = await rawGet(baseUrl, '/v1/me/contacts', { ...auth, 'accept-encoding': 'gzip' });
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect(JSON.parse(gunzipSync(gzip.body).toString('utf8'))).toEqual(expected);

    // A small list (no contacts yet) and a single object stay as they are.
    const lonely = users[20] as Registered;
    const small = await rawGet(baseUrl, '/v1/me/contacts', {
      authorization: `Bearer ${lonely.accessToken}`,
      'accept-encoding': 'br, gzip',
    });
    expect(small.status).toBe(200);
    expect(small.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(small.body.toString('utf8'))).toEqual({ data: [] });
    const me = await rawGet(baseUrl, '/v1/me', { ...auth, 'accept-encoding': 'br, gzip' });
    expect(me.status).toBe(200);
    expect(me.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(me.body.toString('utf8'))).toMatchObject({ id: owner.id });
  });
});
