/**
 * Review 22 of accounts and the REST plumbing.
 *
 * 1. POST /v1/auth/register answers 202 to the same registration sent again (same username, email
 *    and password) and 409 otherwise: to whoever knows an account's username and email, that is a
 *    password oracle. It was limited only by the per-IP REST limit (600 a minute), not by login
 *    throttling (LOGIN_MAX_FAILURES per account and client IP in LOGIN_WINDOW_S). Now a taken
 *    username counts as a failed login on the same counters, whatever the email.
 * 2. With CORS_ORIGINS set, a browser's preflight was answered with only GET, HEAD and POST
 *    (@fastify/cors' default): an app on an allowed origin could not PATCH /v1/me, PUT a new
 *    password or DELETE a contact.
 *
 * 3. A JSON body with a key `__proto__` (or `constructor` holding `prototype`) was refused 400 with
 *    "Body is not valid JSON", naming nothing: the JSON is valid, and the client was sent looking
 *    for a syntax error. Now the detail and `errors` name the key's path, as the input check does
 *    for a query key.
 *
 * 4. `Cache-Control: no-store` was set by the request's url starting with `/v1/`: a request in
 *    absolute form (`GET http://host/v1/me`, as a forward proxy sends it, which a server must
 *    accept) was routed and answered — profile, tokens — with no Cache-Control at all, for the
 *    very proxy caches the header is there for.
 *
 * One node trusts one proxy hop (TRUST_PROXY=1), so each request names its client in
 * X-Forwarded-For.
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';

const ORIGIN = 'https://app.example.test';
const GUESSER = '198.51.100.22';
const OWNER = '203.0.113.22';
let testNode: TestNode;
let api: ReturnType<typeof httpClient>;

beforeAll(async () => {
  testNode = await startTestNode({ TRUST_PROXY: '1', LOGIN_MAX_FAILURES: '3', CORS_ORIGINS: ORIGIN });
  api = httpClient(testNode.node.baseUrl);
}, 60_000);
afterAll(async () => {
  await testNode?.stop();
});

const register = (from: string, body: { username: string; email: string; password: string }) =>
  api.call<{ code?: string }>('POST', '/v1/auth/register', { body, headers: { 'x-forwarded-for': from } });

describe('registration sent again as a password oracle', () => {
  it('counts taken-username answers as failed logins: past LOGIN_MAX_FAILURES even the right password is 429', async () => {
    const owner = await registerUser(api);
    const guess = (password: string, email = owner.email) =>
      register(GUESSER, { username: owner.username, email, password });

    // LOGIN_MAX_FAILURES (3) wrong guesses, one of them with another email: 409 each, as before.
    expect((await guess('Wrong-Guess-Number-1')).status).toBe(409);
    expect((await guess('Wrong-Guess-Number-2', `other-${owner.email}`)).status).toBe(409);
    expect((await guess('Wrong-Guess-Number-3')).status).toBe(409);
    // The next guess from that client is refused before the password is checked: the right one
    // too, so the oracle is as slow as logging in (before: 202, the password confirmed).
    const right = await guess(owner.password);
    expect(right.status).toBe(429);
    expect(right.body.code).toBe('RATE_LIMITED');
    expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(0);
    // Shared with login throttling: the same pair cannot log in either…
    const login = await api.call('POST', '/v1/auth/login', {
      body: { login: owner.username, password: owner.password },
      headers: { 'x-forwarded-for': GUESSER },
    });
    expect(login.status).toBe(429);
    // …while the owner, from their own address, still logs in and may still send their
    // registration again (its first answer lost).
    const ownLogin = await api.call('POST', '/v1/auth/login', {
      body: { login: owner.username, password: owner.password },
      headers: { 'x-forwarded-for': OWNER },
    });
    expect(ownLogin.status).toBe(200);
    expect(
      (await register(OWNER, { username: owner.username, email: owner.email, password: owner.password }))
        .status,
    ).toBe(202);
  });

  it('forgives the failures of a registration that turns out to be the same one sent again', async () => {
    const owner = await registerUser(api);
    const from = '198.51.100.23';
    const send = (password: string) =>
      register(from, { username: owner.username, email: owner.email, password });
    expect((await send('Mistyped-Password-1')).status).toBe(409);
    expect((await send('Mistyped-Password-2')).status).toBe(409);
    expect((await send(owner.password)).status).toBe(202);
    // The pair's failures are forgiven by the right one: three more mistakes are counted afresh.
    for (let i = 0; i < 3; i++) expect((await send(`Mistyped-Again-${i}`)).status).toBe(409);
    expect((await send(owner.password)).status).toBe(429);
  });
});

describe('CORS for an allowed origin', () => {
  it.each(['PATCH', 'PUT', 'DELETE', 'POST', 'GET'])('allows %s in the preflight', async (method) => {
    const preflight = await fetch(`${testNode.node.baseUrl}/v1/me`, {
      method: 'OPTIONS',
      headers: {
        origin: ORIGIN,
        'access-control-request-method': method,
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect(preflight.status).toBeLessThan(300);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const methods = (preflight.headers.get('access-control-allow-methods') ?? '')
      .split(',')
      .map((m) => m.trim().toUpperCase());
    expect(methods).toContain(method);
  });

  it('still answers another origin no CORS headers', async () => {
    const preflight = await fetch(`${testNode.node.baseUrl}/v1/me`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example.test', 'access-control-request-method': 'PATCH' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('a JSON body with a reserved key', () => {
  const post = (path: string, body: string, token?: string) =>
    fetch(`${testNode.node.baseUrl}${path}`, {
      method: path === '/v1/me' ? 'PATCH' : 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      body,
    });
  type ProblemBody = { code: string; detail: string; errors?: { path: string }[] };

  it('names the path of a __proto__ or constructor.prototype key instead of calling the JSON invalid', async () => {
    const user = await registerUser(api);
    const cases = [
      ['/v1/auth/login', '{"login":"a","password":"b","__proto__":{"x":1}}', 'body.__proto__'],
      ['/v1/me', '{"bio":"x","availability":{"__proto__":{"admin":true}}}', 'body.availability.__proto__'],
      [
        '/v1/auth/login',
        '{"login":"a","password":"b","constructor":{"prototype":{"x":1}}}',
        'body.constructor',
      ],
    ] as const;
    for (const [path, body, field] of cases) {
      const response = await post(path, body, user.accessToken);
      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
      const problem = (await response.json()) as ProblemBody;
      expect(problem.code).toBe('VALIDATION_FAILED');
      expect(problem.detail).not.toMatch(/not valid JSON/);
      expect(problem.errors?.[0]?.path).toBe(field);
    }
    // JSON that is not JSON is still said to be so.
    const broken = await post('/v1/auth/login', '{"login":');
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as ProblemBody).detail).toMatch(/not valid JSON/);
  });
});

describe('a request in absolute form', () => {
  const absolute = (method: string, path: string, headers: Record<string, string>, body?: string) =>
    new Promise<{ status: number; cacheControl: string | undefined; body: string }>((resolve, reject) => {
      const base = new URL(testNode.node.baseUrl);
      const req = httpRequest(
        { host: base.hostname, port: base.port, method, path: `${base.origin}${path}`, headers },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => {
            text += chunk.toString('utf8');
          });
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, cacheControl: res.headers['cache-control'], body: text }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  it('answers GET /v1/me and a login with Cache-Control: no-store, as in origin form', async () => {
    const user = await registerUser(api);
    const me = await absolute('GET', '/v1/me', { authorization: `Bearer ${user.accessToken}` });
    expect(me.status).toBe(200);
    expect(JSON.parse(me.body).id).toBe(user.id);
    expect(me.cacheControl).toBe('no-store');
    const login = await absolute(
      'POST',
      '/v1/auth/login',
      { 'content-type': 'application/json' },
      JSON.stringify({ login: user.username, password: user.password }),
    );
    expect(login.status).toBe(200);
    expect(JSON.parse(login.body).accessToken).toEqual(expect.any(String));
    expect(login.cacheControl).toBe('no-store');
  });
});
