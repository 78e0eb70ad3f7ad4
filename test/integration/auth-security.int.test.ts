/**
 * Authentication hardening over real HTTP on the real composition (startNode, real PostgreSQL and
 * Redis): access tokens verify with a second JWT library from the JWKS alone, and every forgery
 * (alg none, HS256 keyed with the public key, unknown kid, expired, wrong aud/iss/typ, tampered
 * payload, stale session version, locked account, password change) is refused with 401 problem+json.
 * Also: failed-login throttling, indistinguishable login failures, request validation, the OpenAPI
 * document and Swagger UI, and that no password or token ever reaches the logs.
 *
 * The node signs with a key this file generates (JWT_PRIVATE_KEY), so tests can mint tokens with any
 * claims; the sessions behind them are real ones taken from tokens the server issued.
 */
import { createHmac, createPublicKey, type JsonWebKey } from 'node:crypto';
import { Validator } from '@seriousme/openapi-schema-validator';
import { createVerifier } from 'fast-jwt';
import {
  type CryptoKey,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  type JWTPayload,
  SignJWT,
} from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { runShutdown } from '../../src/platform/shutdown.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  testConfig,
  uniqueRedisPrefix,
} from '../support/context.js';
import { type HttpResult, httpClient, type Registered, registerUser } from '../support/http.js';

const ADMIN = { email: 'sec-admin@example.test', password: 'Indigo-Pelican-63%' };
const ISSUER = 'https://auth.gigwire.test';
const AUDIENCE = 'gigwire-api-test';
const KID = 'auth-security-test-key-1';
const ACCESS_TTL_S = 120;
const LOGIN_MAX_FAILURES = 10;
const LOGIN_WINDOW_S = 600;

type Tokens = Record<string, unknown> & {
  accessToken: string;
  refreshToken: string;
  user: { id: string; roles: string[] };
};
type Jwks = { keys: (JsonWebKey & { kid?: string; alg?: string; use?: string })[] };

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const nowS = () => Math.floor(Date.now() / 1000);
const suffix = () => Math.random().toString(36).slice(2, 10);

/** A JWT with the given header and payload, signed with HMAC-SHA256 under `secret`. */
function hs256(header: object, payload: object, secret: string | Buffer): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

describe('auth security', () => {
  let db: TestDatabase;
  let node: RunningNode;
  let api: ReturnType<typeof httpClient>;
  let signingKey: CryptoKey;
  let privateJwk: JsonWebKey;
  const logs = captureLogs();
  /** Every password and token this file used; none may ever appear in a log line. */
  const secrets = new Set<string>([ADMIN.password]);
  const remember = (...values: (string | undefined)[]) => {
    for (const value of values) if (value !== undefined && value !== '') secrets.add(value);
  };

  beforeAll(async () => {
    const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    signingKey = pair.privateKey;
    privateJwk = (await exportJWK(pair.privateKey)) as JsonWebKey;
    remember(privateJwk.d);
    db = await createMigratedDatabase();
    const config = testConfig({
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: uniqueRedisPrefix(),
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      JWT_PRIVATE_KEY: JSON.stringify({ ...privateJwk, kid: KID }),
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
      ACCESS_TOKEN_TTL_S: String(ACCESS_TTL_S),
      LOGIN_MAX_FAILURES: String(LOGIN_MAX_FAILURES),
      LOGIN_IP_MAX_FAILURES: '100000',
      LOGIN_WINDOW_S: String(LOGIN_WINDOW_S),
      RATE_LIMIT_PER_MINUTE: '100000',
    });
    node = await startNode(config, logs.log, { pid: process.pid });
    api = httpClient(node.baseUrl);
  });
  afterAll(async () => {
    await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    await db.drop();
  });

  /** A fresh account; its password and tokens are remembered for the log check. */
  const newUser = async (): Promise<Registered> => {
    const user = await registerUser(api);
    remember(user.password, user.accessToken, user.refreshToken);
    return user;
  };

  const login = async (loginName: string, password: string) => {
    remember(password);
    const response = await api.post<Tokens>('/v1/auth/login', { login: loginName, password });
    if (response.status === 200) remember(response.body.accessToken, response.body.refreshToken);
    return response;
  };

  const me = (token: string) => {
    remember(token);
    return api.get('/v1/me', token);
  };

  const expectProblem = (response: HttpResult, status: number, code: string) => {
    expect(response.status, JSON.stringify(response.body)).toBe(status);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect(response.body).toMatchObject({
      type: `urn:gigwire:problem:${code}`,
      status,
      code,
      title: expect.any(String),
      detail: expect.any(String),
      instance: expect.any(String),
      requestId: response.headers.get('x-request-id'),
    });
  };

  const expectUnauthorized = async (token: string, label: string) => {
    const response = await me(token);
    expect(response.status, `${label}: ${JSON.stringify(response.body)}`).toBe(401);
    expectProblem(response, 401, 'UNAUTHORIZED');
    expect(response.body.instance).toBe('/v1/me');
    return response;
  };

  /** Signs `payload` with the node's own key (or another one) as an access token. */
  const mint = (
    payload: JWTPayload,
    header: { alg?: string; kid?: string; typ?: string } = {},
    key: CryptoKey = signingKey,
  ) => {
    const protectedHeader = { alg: 'EdDSA', kid: KID, typ: 'at+jwt', ...header };
    return new SignJWT(payload).setProtectedHeader(protectedHeader).sign(key);
  };

  /** The claims of a real token the server issued (a live session: sub, sid, sv, roles, …). */
  const claimsOf = (token: string): JWTPayload => decodeJwt(token);

  describe('access tokens', () => {
    it('verify with fast-jwt using nothing but /.well-known/jwks.json', async () => {
      const user = await newUser();
      const jwksResponse = await fetch(`${node.baseUrl}/.well-known/jwks.json`);
      expect(jwksResponse.status).toBe(200);
      const jwks = (await jwksResponse.json()) as Jwks;
      // Exactly the public half of the configured key: never `d`.
      expect(jwks.keys).toEqual([
        { kty: 'OKP', crv: 'Ed25519', x: privateJwk.x, kid: KID, alg: 'EdDSA', use: 'sig' },
      ]);

      const header = decodeProtectedHeader(user.accessToken);
      expect(header).toEqual({ alg: 'EdDSA', kid: KID, typ: 'at+jwt' });
      const jwk = jwks.keys.find((k) => k.kid === header.kid);
      expect(jwk).toBeDefined();
      const pem = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
        .export({ type: 'spki', format: 'pem' })
        .toString();
      const verify = createVerifier({
        key: pem,
        algorithms: ['EdDSA'],
        allowedIss: ISSUER,
        allowedAud: AUDIENCE,
        requiredClaims: ['sub', 'sid', 'exp', 'iat', 'jti'],
        complete: true,
      });
      const { payload } = verify(user.accessToken) as { payload: Record<string, unknown> };
      expect(payload.sub).toBe(user.id);
      expect(payload).toMatchObject({
        iss: ISSUER,
        aud: AUDIENCE,
        sid: expect.stringMatching(/^[0-9a-f-]{36}$/),
        roles: ['worker'],
        sv: expect.any(Number),
        jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      });
      expect(Number(payload.exp) - Number(payload.iat)).toBe(ACCESS_TTL_S);
      expect(Math.abs(Number(payload.iat) - nowS())).toBeLessThan(60);

      // The verifier is not a pass-through: another audience or a changed payload fails it.
      const strict = createVerifier({ key: pem, algorithms: ['EdDSA'], allowedAud: 'someone-else' });
      expect(() => strict(user.accessToken)).toThrow();
      const [h, , s] = user.accessToken.split('.');
      const tampered = `${h}.${b64url({ ...payload, roles: ['admin'] })}.${s}`;
      expect(() => verify(tampered)).toThrow(/signature/i);

      const profile = await me(user.accessToken);
      expect(profile.status).toBe(200);
      expect(profile.body.id).toBe(user.id);
    });

    it('accepts a token minted with the server key and real session claims (control for the forgeries)', async () => {
      const user = await newUser();
      const forged = await mint({ ...claimsOf(user.accessToken), exp: nowS() + 60 });
      const response = await me(forged);
      expect(response.status).toBe(200);
      expect(response.body.id).toBe(user.id);
    });

    it('refuses alg none', async () => {
      const user = await newUser();
      const claims = claimsOf(user.accessToken);
      for (const header of [
        { alg: 'none' },
        { alg: 'none', kid: KID, typ: 'at+jwt' },
        { alg: 'None', kid: KID, typ: 'at+jwt' },
      ]) {
        await expectUnauthorized(`${b64url(header)}.${b64url(claims)}.`, `alg ${header.alg}`);
      }
      // The signature of the real token, glued to an alg-none header, is refused as well.
      const signature = user.accessToken.split('.')[2];
      await expectUnauthorized(
        `${b64url({ alg: 'none', kid: KID, typ: 'at+jwt' })}.${b64url(claims)}.${signature}`,
        'alg none with a signature',
      );
      expect((await me(user.accessToken)).status).toBe(200);
    });

    it('refuses HS256 tokens keyed with the public key (algorithm confusion)', async () => {
      const user = await newUser();
      const claims = claimsOf(user.accessToken);
      const jwks = (await api.get<Jwks>('/.well-known/jwks.json')).body;
      const jwk = jwks.keys[0] as JsonWebKey;
      const pem = createPublicKey({ key: jwk, format: 'jwk' })
        .export({ type: 'spki', format: 'pem' })
        .toString();
      const der = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
      const secretsToTry: [string, string | Buffer][] = [
        ['raw x bytes', Buffer.from(String(jwk.x), 'base64url')],
        ['x as base64url text', String(jwk.x)],
        ['PEM text', pem],
        ['SPKI DER', der],
        ['JWK JSON', JSON.stringify(jwk)],
      ];
      for (const [label, secret] of secretsToTry) {
        for (const header of [
          { alg: 'HS256', kid: KID, typ: 'at+jwt' },
          { alg: 'HS256', typ: 'JWT' },
        ]) {
          await expectUnauthorized(hs256(header, claims, secret), `HS256 with ${label}`);
        }
      }
    });

    it('refuses an unknown kid, and a foreign key under the known kid', async () => {
      const user = await newUser();
      const claims = claimsOf(user.accessToken);
      const foreign = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
      const unknownKid = await mint(claims, { kid: 'not-in-the-jwks' }, foreign.privateKey);
      const response = await expectUnauthorized(unknownKid, 'unknown kid');
      expect(response.body.detail).toBe('invalid access token');
      await expectUnauthorized(await mint(claims, {}, foreign.privateKey), 'foreign key, known kid');
      await expectUnauthorized(await mint(claims, { kid: undefined }), 'no kid at all');
      await expectUnauthorized(await mint(claims, { kid: 'x'.repeat(200) }), 'oversized kid');
    });

    it('refuses expired, wrong-audience, wrong-issuer, wrong-typ and incomplete tokens signed with the server key', async () => {
      const user = await newUser();
      const claims = claimsOf(user.accessToken);
      const now = nowS();

      const expired = await expectUnauthorized(
        await mint({ ...claims, iat: now - 600, exp: now - 60 }),
        'expired a minute ago',
      );
      expect(expired.body.detail).toBe('access token expired');
      await expectUnauthorized(await mint({ ...claims, aud: 'gigwire' }), 'default audience, not ours');
      await expectUnauthorized(await mint({ ...claims, aud: 'another-service' }), 'foreign audience');
      await expectUnauthorized(await mint({ ...claims, iss: 'gigwire' }), 'default issuer, not ours');
      await expectUnauthorized(await mint({ ...claims, iss: 'https://evil.test' }), 'foreign issuer');
      await expectUnauthorized(await mint(claims, { typ: 'JWT' }), 'typ JWT (e.g. an ID token)');
      for (const claim of ['exp', 'sub', 'sid', 'sv', 'jti', 'iat', 'roles'] as const) {
        const { [claim]: _dropped, ...rest } = claims;
        await expectUnauthorized(await mint(rest), `without ${claim}`);
      }
      await expectUnauthorized(await mint({ ...claims, sub: 'not-a-uuid' }), 'sub not a uuid');
      await expectUnauthorized(await mint({ ...claims, roles: ['root'] }), 'unknown role');
      // The real token is still fine.
      expect((await me(user.accessToken)).status).toBe(200);
    });

    it('refuses tampered tokens: payload changed under the old signature, or a flipped signature', async () => {
      const [alice, bob] = [await newUser(), await newUser()];
      const [header, payload, signature] = alice.accessToken.split('.') as [string, string, string];
      const claims = claimsOf(alice.accessToken);
      for (const [label, changed] of [
        ['sub of another user', { ...claims, sub: bob.id }],
        ['roles raised to admin', { ...claims, roles: ['admin'] }],
        ['expiry pushed out', { ...claims, exp: Number(claims.exp) + 86_400 }],
      ] as const) {
        await expectUnauthorized(`${header}.${b64url(changed)}.${signature}`, label);
      }
      const flipped = `${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BA' : 'AA'}`;
      await expectUnauthorized(`${header}.${payload}.${flipped}`, 'flipped signature');
      await expectUnauthorized(`${header}.${payload}`, 'signature cut off');
      await expectUnauthorized(`${header}.${payload}.${signature}.${signature}`, 'four segments');
      expect((await me(alice.accessToken)).status).toBe(200);
    });

    it('refuses validly signed tokens whose session does not match: other user, stale sv, unknown sid', async () => {
      const [alice, bob] = [await newUser(), await newUser()];
      const a = claimsOf(alice.accessToken);
      const b = claimsOf(bob.accessToken);
      const exp = nowS() + 60;
      await expectUnauthorized(await mint({ ...a, sid: b.sid, exp }), "alice's sub with bob's session");
      await expectUnauthorized(await mint({ ...a, sv: Number(a.sv) + 1, exp }), 'session version ahead');
      await expectUnauthorized(
        await mint({ ...a, sid: '00000000-0000-4000-8000-000000000000', exp }),
        'unknown session',
      );
      // Roles in a (validly signed) token grant nothing: they come from the account.
      const raised = await mint({ ...a, roles: ['admin'], exp });
      remember(raised);
      const adminOnly = await api.get('/v1/admin/users', raised);
      expectProblem(adminOnly, 403, 'FORBIDDEN');
    });

    it("refuses a locked user's tokens at once, also re-minted ones, and keeps them dead after unlock", async () => {
      const adminLogin = await login(ADMIN.email, ADMIN.password);
      expect(adminLogin.status).toBe(200);
      const adminToken = adminLogin.body.accessToken;
      const user = await newUser();
      expect((await me(user.accessToken)).status).toBe(200);

      const lock = await api.post(`/v1/admin/users/${user.id}/lock`, undefined, adminToken);
      expect(lock.status).toBe(204);
      await expectUnauthorized(user.accessToken, 'token of a locked user');
      const claims = claimsOf(user.accessToken);
      for (const sv of [Number(claims.sv), Number(claims.sv) + 1]) {
        await expectUnauthorized(await mint({ ...claims, sv, exp: nowS() + 60 }), `locked, sv ${sv}`);
      }
      expectProblem(await login(user.email, user.password), 401, 'UNAUTHORIZED');

      expect((await api.post(`/v1/admin/users/${user.id}/unlock`, undefined, adminToken)).status).toBe(204);
      await expectUnauthorized(user.accessToken, 'pre-lock token after unlock');
      const again = await login(user.email, user.password);
      expect(again.status).toBe(200);
      expect((await me(again.body.accessToken)).status).toBe(200);
    });

    it('refuses tokens issued before a password change; the new password logs in', async () => {
      const user = await newUser();
      const second = await login(user.username, user.password);
      expect(second.status).toBe(200);
      const newPassword = `Juniper-Falcon-${suffix()}!`;
      remember(newPassword);
      const change = await api.call('PUT', '/v1/auth/password', {
        token: user.accessToken,
        body: { currentPassword: user.password, newPassword },
      });
      expect(change.status).toBe(204);

      await expectUnauthorized(user.accessToken, 'token that changed the password');
      await expectUnauthorized(second.body.accessToken, 'token of another session');
      const claims = claimsOf(user.accessToken);
      await expectUnauthorized(await mint({ ...claims, exp: nowS() + 60 }), 're-minted pre-change token');
      expectProblem(await login(user.email, user.password), 401, 'UNAUTHORIZED');

      const fresh = await login(user.email, newPassword);
      expect(fresh.status).toBe(200);
      const profile = await me(fresh.body.accessToken);
      expect(profile.status).toBe(200);
      expect(profile.body.id).toBe(user.id);
    });
  });

  describe('login failures', () => {
    it(`answers the ${LOGIN_MAX_FAILURES + 1}th failed login of an account with 429 and Retry-After`, async () => {
      const user = await newUser();
      const bystander = await newUser();
      for (let i = 1; i <= LOGIN_MAX_FAILURES; i++) {
        const failed = await login(user.username, `Wrong-Guess-${i}-${suffix()}`);
        expect(failed.status, `attempt ${i}`).toBe(401);
      }
      const blocked = await login(user.username, `Wrong-Guess-last-${suffix()}`);
      expectProblem(blocked, 429, 'RATE_LIMITED');
      const retryAfter = blocked.headers.get('retry-after');
      expect(retryAfter).toMatch(/^\d+$/);
      expect(Number(retryAfter)).toBeGreaterThan(0);
      expect(Number(retryAfter)).toBeLessThanOrEqual(LOGIN_WINDOW_S);
      expect(blocked.body.retryAfterS).toBe(Number(retryAfter));

      // While blocked, even the right password is refused (no oracle), in any spelling of the login.
      expectProblem(await login(user.username, user.password), 429, 'RATE_LIMITED');
      expectProblem(await login(` ${user.username.toUpperCase()} `, user.password), 429, 'RATE_LIMITED');
      // Other accounts are not affected, and the blocked account's sessions live on.
      expect((await login(bystander.email, bystander.password)).status).toBe(200);
      expect((await me(user.accessToken)).status).toBe(200);
    });

    // Review 25: the counter was keyed by account, so a username's exhausted budget made its email
    // answer 429 and any other address 401: one guess per candidate linked a public username to its
    // private email. Each login name has its own budget (the per-IP limit still covers them all).
    it('counts failures per login name: a username throttled tells nothing of its email', async () => {
      const user = await newUser();
      const stranger = await newUser();
      for (let i = 1; i <= LOGIN_MAX_FAILURES; i++) {
        const failed = await login(user.username, `Wrong-Guess-${i}-${suffix()}`);
        expect(failed.status, `attempt ${i}`).toBe(401);
      }
      expectProblem(
        await login(` ${user.username.toUpperCase()} `, `Wrong-${suffix()}`),
        429,
        'RATE_LIMITED',
      );
      // The account's email and an unrelated one answer alike.
      expect((await login(user.email, `Wrong-Guess-email-${suffix()}`)).status).toBe(401);
      expect((await login(stranger.email, `Wrong-Guess-email-${suffix()}`)).status).toBe(401);
      // The email's own budget runs out the same way.
      for (let i = 2; i <= LOGIN_MAX_FAILURES; i++) {
        expect((await login(user.email, `Wrong-Guess-${i}-${suffix()}`)).status, `email attempt ${i}`).toBe(
          401,
        );
      }
      expectProblem(await login(user.email, `Wrong-Guess-last-${suffix()}`), 429, 'RATE_LIMITED');
    });

    // Regression: the limit was checked (peek) before the password was verified and counted (hit)
    // after, so parallel guesses all passed the check: 30 at once were all evaluated (401, none 429).
    it('limits parallel failed logins too: at most LOGIN_MAX_FAILURES guesses are evaluated', async () => {
      const user = await newUser();
      const results = await Promise.all(
        Array.from({ length: 3 * LOGIN_MAX_FAILURES }, (_, i) =>
          login(user.username, `Wrong-Guess-${i}-${suffix()}`),
        ),
      );
      const evaluated = results.filter((r) => r.status === 401).length;
      expect(evaluated).toBeLessThanOrEqual(LOGIN_MAX_FAILURES);
    });

    it('answers an unknown user, a wrong password and a locked account identically', async () => {
      const user = await newUser();
      const locked = await newUser();
      const adminLogin = await login(ADMIN.email, ADMIN.password);
      expect(
        (await api.post(`/v1/admin/users/${locked.id}/lock`, undefined, adminLogin.body.accessToken)).status,
      ).toBe(204);
      const unknown = await login(`nobody-${suffix()}@example.test`, user.password);
      const wrong = await login(user.email, `Not-The-Password-${suffix()}`);
      const lockedOut = await login(locked.email, locked.password);
      const comparable = (r: HttpResult) => ({
        status: r.status,
        contentType: r.headers.get('content-type'),
        retryAfter: r.headers.get('retry-after'),
        keys: Object.keys(r.body).sort(),
        type: r.body.type,
        code: r.body.code,
        title: r.body.title,
        detail: r.body.detail,
        bodyStatus: r.body.status,
        instance: r.body.instance,
      });
      expectProblem(unknown, 401, 'UNAUTHORIZED');
      expect(comparable(wrong)).toEqual(comparable(unknown));
      expect(comparable(lockedOut)).toEqual(comparable(unknown));
      expect(unknown.body.requestId).not.toBe(wrong.body.requestId);
    });
  });

  describe('request validation', () => {
    const raw = (path: string, body: string | Buffer, contentType = 'application/json') =>
      fetch(`${node.baseUrl}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body });
    const asResult = async (response: Response): Promise<HttpResult> => ({
      status: response.status,
      headers: response.headers,
      body: (await response.json()) as Record<string, unknown>,
    });
    const paths = (r: HttpResult) => ((r.body.errors ?? []) as { path: string }[]).map((e) => e.path).sort();

    it('answers malformed or empty JSON with 400 VALIDATION_FAILED', async () => {
      const leakyPassword = `Tangerine-Walrus-${suffix()}`;
      remember(leakyPassword);
      for (const body of [
        `{"login":"someone","password":${leakyPassword}}`,
        `{"login":"someone","password":"${leakyPassword}",}`,
        '{"login":',
        'not json at all',
      ]) {
        const response = await asResult(await raw('/v1/auth/login', body));
        expectProblem(response, 400, 'VALIDATION_FAILED');
        expect(JSON.stringify(response.body)).not.toContain(leakyPassword);
      }
      expectProblem(await asResult(await raw('/v1/auth/login', '')), 400, 'VALIDATION_FAILED');
      expectProblem(
        await asResult(await raw('/v1/auth/login', 'login=a&password=b', 'text/plain')),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      );
    });

    it('names each missing, mistyped or unknown field as body.<field>', async () => {
      const missing = await api.post('/v1/auth/login', {});
      expectProblem(missing, 400, 'VALIDATION_FAILED');
      expect(paths(missing)).toEqual(['body.login', 'body.password']);

      const mistyped = await api.post('/v1/auth/login', { login: 42, password: ['x'] });
      expectProblem(mistyped, 400, 'VALIDATION_FAILED');
      expect(paths(mistyped)).toEqual(['body.login', 'body.password']);

      const name = `fresh${suffix()}`;
      const badRegister = await api.post('/v1/auth/register', {
        username: 'a b',
        email: 'not-an-email',
        password: 'short',
      });
      expectProblem(badRegister, 400, 'VALIDATION_FAILED');
      expect(paths(badRegister)).toEqual(['body.email', 'body.password', 'body.username']);

      const password = `Vermilion-Otter-${suffix()}!`;
      remember(password);
      const unknownField = await api.post('/v1/auth/register', {
        username: name,
        email: `${name}@example.test`,
        password,
        isAdmin: true,
      });
      expectProblem(unknownField, 400, 'VALIDATION_FAILED');
      expect(paths(unknownField)).toEqual(['body']);
      expect(JSON.stringify(unknownField.body.errors)).toContain('isAdmin');
      // Nothing was created: the same registration without the extra field succeeds.
      const clean = await api.post('/v1/auth/register', {
        username: name,
        email: `${name}@example.test`,
        password,
      });
      expect(clean.status).toBe(202);
      expect((await login(name, password)).status).toBe(200);

      const elevated = await api.post('/v1/auth/register', {
        username: `x${name}`,
        email: `x${name}@example.test`,
        password,
        roles: ['admin'],
      });
      expectProblem(elevated, 400, 'VALIDATION_FAILED');
      expect(paths(elevated)[0]).toMatch(/^body\.roles/);
    });

    it('answers a 1 MiB body with 413 PAYLOAD_TOO_LARGE', async () => {
      const big = JSON.stringify({ login: 'x'.repeat(1024 * 1024), password: 'irrelevant-pw' });
      const response = await asResult(await raw('/v1/auth/login', big));
      expectProblem(response, 413, 'PAYLOAD_TOO_LARGE');
      // The server still answers afterwards.
      expect((await fetch(`${node.baseUrl}/health/live`)).status).toBe(200);
    });

    it('answers unknown routes with 404 NOT_FOUND problem+json', async () => {
      for (const [method, path] of [
        ['GET', '/v1/nope'],
        ['POST', '/v1/auth/nope'],
        ['PATCH', '/v1/users/00000000-0000-4000-8000-000000000000/nope'],
      ] as const) {
        const response = await api.call(method, path);
        expectProblem(response, 404, 'NOT_FOUND');
        expect(response.body.detail).toBe(`No route ${method} ${path}`);
      }
    });

    it('answers a known path with the wrong method 405 METHOD_NOT_ALLOWED naming the methods it answers', async () => {
      for (const [method, path, allow] of [
        ['DELETE', '/v1/me', ['GET', 'HEAD', 'PATCH']],
        ['GET', '/v1/auth/login', ['POST']],
        ['PUT', '/v1/users/00000000-0000-4000-8000-000000000000', ['GET', 'HEAD']],
      ] as const) {
        const response = await api.call(method, path);
        expectProblem(response, 405, 'METHOD_NOT_ALLOWED');
        expect(response.headers.get('allow'), `${method} ${path}`).toBe(allow.join(', '));
        expect(response.body).toMatchObject({ allow, instance: path });
      }
    });
  });

  describe('OpenAPI and docs', () => {
    const EXPECTED: Record<string, string[]> = {
      '/v1/auth/register': ['post'],
      '/v1/auth/login': ['post'],
      '/v1/auth/refresh': ['post'],
      '/v1/auth/logout': ['post'],
      '/v1/auth/logout-all': ['post'],
      '/v1/auth/password': ['put'],
      '/v1/auth/verify-email': ['post'],
      '/v1/auth/resend-verification': ['post'],
      '/v1/auth/forgot-password': ['post'],
      '/v1/auth/reset-password': ['post'],
      '/v1/me': ['get', 'patch'],
      '/v1/users': ['get'],
      '/v1/users/{id}': ['get'],
      '/v1/me/contacts': ['get'],
      '/v1/me/contacts/{userId}': ['delete', 'post'],
      '/v1/admin/users': ['get'],
      '/v1/admin/users/{id}/lock': ['post'],
      '/v1/admin/users/{id}/unlock': ['post'],
      '/v1/admin/emails': ['get'],
      '/v1/rooms': ['get', 'post'],
      '/v1/rooms/{id}': ['get'],
      '/v1/rooms/{id}/members/{userId}': ['delete', 'post'],
      '/v1/rooms/{id}/messages': ['get'],
      '/v1/wallet/top-ups': ['post'],
      '/v1/wallet/withdrawals': ['post'],
      '/v1/payments/{id}': ['get'],
      '/v1/payments/webhook': ['post'],
      '/v1/admin/payments': ['get'],
      '/v1/admin/payments/{id}/void-parked': ['post'],
      '/v1/wallet': ['get'],
      '/v1/wallet/transactions': ['get'],
      '/v1/wallet/transfers': ['post'],
      '/v1/admin/ledger/audit': ['get'],
      '/v1/categories': ['get'],
      '/v1/jobs': ['get', 'post'],
      '/v1/jobs/{id}': ['get', 'patch'],
      '/v1/jobs/{id}/close': ['post'],
      '/v1/jobs/{id}/bids': ['get', 'post'],
      '/v1/me/bids': ['get'],
      '/v1/bids/{id}': ['get', 'patch'],
      '/v1/bids/{id}/withdraw': ['post'],
      '/v1/contracts/{id}/review': ['post'],
      '/v1/contracts/{id}/reviews': ['get'],
      '/v1/users/{id}/reviews': ['get'],
      '/v1/admin/reviews/{id}': ['get'],
      '/v1/admin/reviews/{id}/hide': ['post'],
      '/v1/admin/categories': ['post'],
      '/v1/admin/categories/{id}': ['patch'],
      '/v1/notifications': ['get'],
      '/v1/notifications/unread-count': ['get'],
      '/v1/notifications/read': ['post'],
      '/v1/notifications/unsubscribe': ['get', 'post'],
      '/v1/me/notification-preferences': ['get', 'put'],
      '/v1/bids/{id}/accept': ['post'],
      '/v1/contracts/{id}': ['get'],
      '/v1/contracts/{id}/deliver': ['post'],
      '/v1/contracts/{id}/request-changes': ['post'],
      '/v1/contracts/{id}/approve': ['post'],
      '/v1/contracts/{id}/cancel': ['post'],
      '/v1/contracts/{id}/dispute': ['post'],
      '/v1/admin/contracts/{id}/resolve': ['post'],
      '/v1/me/contracts': ['get'],
    };
    const PUBLIC = new Set([
      'post /v1/auth/register',
      'post /v1/auth/login',
      'post /v1/auth/refresh',
      'post /v1/auth/logout',
      'post /v1/auth/verify-email',
      'post /v1/auth/forgot-password',
      'post /v1/auth/reset-password',
      // Authenticated by its Standard Webhooks signature, not a bearer token.
      'post /v1/payments/webhook',
      // Authenticated by the signed token of a digest mail's one-click unsubscribe link.
      'get /v1/notifications/unsubscribe',
      'post /v1/notifications/unsubscribe',
    ]);
    type Operation = { security?: unknown[] };

    it('/openapi.json is valid OpenAPI 3.1 and lists every /v1 route, each really served', async () => {
      const response = await fetch(`${node.baseUrl}/openapi.json`);
      expect(response.status).toBe(200);
      const doc = (await response.json()) as Record<string, unknown> & {
        openapi: string;
        paths: Record<string, Record<string, Operation>>;
      };
      expect(doc.openapi).toMatch(/^3\.1\./);
      const validator = new Validator();
      const result = await validator.validate(doc);
      expect(result.errors, JSON.stringify(result.errors, null, 2)).toBeUndefined();
      expect(result.valid).toBe(true);
      expect(validator.version).toMatch(/^3\.1/);

      const listed = Object.fromEntries(
        Object.entries(doc.paths)
          .filter(([path]) => path.startsWith('/v1/'))
          .map(([path, item]) => [path, Object.keys(item).sort()]),
      );
      expect(listed).toEqual(EXPECTED);

      for (const [path, methods] of Object.entries(EXPECTED)) {
        for (const method of methods) {
          const operation = doc.paths[path]?.[method];
          const key = `${method} ${path}`;
          // Public operations say so explicitly (`[]`), so generators do not guess.
          if (PUBLIC.has(key)) expect(operation?.security, key).toEqual([]);
          else expect(operation?.security, key).toEqual([{ bearerAuth: [] }]);
          // The route exists: without credentials it answers 401 (or 400 for a public route), never 404.
          const url = path.replace(/\{[^}]+\}/g, '00000000-0000-4000-8000-000000000000');
          const probe = await api.call(method.toUpperCase(), url);
          expect(probe.status, key).toBe(PUBLIC.has(key) ? 400 : 401);
        }
      }
    });

    it('/docs serves Swagger UI with every asset it references, and /docs/json the same document', async () => {
      const page = await fetch(`${node.baseUrl}/docs`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toContain('text/html');
      const html = await page.text();
      expect(html).toContain('swagger-ui');
      const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '');
      expect(assets.some((a) => a.includes('swagger-initializer.js'))).toBe(true);
      for (const asset of assets) {
        const assetResponse = await fetch(new URL(asset, page.url));
        expect(assetResponse.status, asset).toBe(200);
        await assetResponse.arrayBuffer();
      }

      const initializer = await fetch(`${node.baseUrl}/docs/static/swagger-initializer.js`);
      expect(initializer.status).toBe(200);
      expect(initializer.headers.get('content-type')).toContain('javascript');
      expect(await initializer.text()).toContain('SwaggerUIBundle');

      const docsJson = await api.get<{ paths: Record<string, unknown> }>('/docs/json');
      expect(docsJson.status).toBe(200);
      const openapi = await api.get<{ paths: Record<string, unknown> }>('/openapi.json');
      expect(Object.keys(docsJson.body.paths).sort()).toEqual(Object.keys(openapi.body.paths).sort());
    });
  });

  // Runs last (tests in a file run in order): everything above has been logged by now.
  it('never logs a password, a token or the signing key', () => {
    const text = logs.text();
    // The capture saw the traffic: failed logins were logged, with their request ids.
    const lines = logs.lines();
    expect(lines.some((l) => l.msg === 'request failed' && l.code === 'UNAUTHORIZED')).toBe(true);
    expect(lines.some((l) => l.msg === 'request failed' && l.code === 'RATE_LIMITED')).toBe(true);
    expect(secrets.size).toBeGreaterThan(40);
    const leaked: string[] = [];
    for (const secret of secrets) {
      // A JWT's signature alone is as bad as the whole token; check it separately.
      const parts = secret.split('.');
      const candidates = parts.length === 3 && parts[2] !== '' ? [secret, parts[2] as string] : [secret];
      for (const candidate of candidates) if (text.includes(candidate)) leaked.push(candidate);
    }
    expect(leaked).toEqual([]);
  });
});
