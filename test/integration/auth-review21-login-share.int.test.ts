/**
 * Password hashing is a line of 2 running and 64 waiting per process (passwords.ts); one client
 * filled it alone (review 21): login throttling counts failures per (account, network) and per
 * network, reserving a slot before the hash, so one network could still have up to
 * LOGIN_IP_MAX_FAILURES (100) logins of different names in the line at once — and right passwords
 * give their slots back, so a flood of good logins was never throttled at all. Everyone else's
 * sign-in was refused 503 meanwhile. Now one network (`clientNetwork`) holds at most 8 places of
 * the line; more are refused 429 RATE_LIMITED at once, for that network alone, and such a refused
 * attempt — its password never checked — gives its failure slots back instead of counting as a
 * failed login (a busy moment must not spend a network's failure budget).
 *
 * A password reset hashed for any number of requests carrying one valid link (the hash comes before
 * the token is spent, and a weak password never spends it), outside any share: the same now.
 *
 * One node trusts one proxy hop (TRUST_PROXY=1), so each request names its client in
 * X-Forwarded-For.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedRedisUrl, startTestNode, type TestNode, uniqueRedisPrefix } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';
import { insertResetLink } from '../support/tokens.js';

const FLOODER = '198.51.100.7';
const OWNER = '203.0.113.9';
const prefix = uniqueRedisPrefix();
let testNode: TestNode;
let api: ReturnType<typeof httpClient>;
let redis: Redis;

beforeAll(async () => {
  testNode = await startTestNode({ TRUST_PROXY: '1', REDIS_PREFIX: prefix, PASSWORD_HASHES_PER_IP: '8' });
  api = httpClient(testNode.node.baseUrl);
  redis = new Redis(sharedRedisUrl(), { lazyConnect: true });
  await redis.connect();
}, 60_000);
afterAll(async () => {
  redis?.disconnect();
  await testNode?.stop();
});

const login = (from: string, body: { login: string; password: string }) =>
  api.call<{ code?: string }>('POST', '/v1/auth/login', { body, headers: { 'x-forwarded-for': from } });

describe('the password-hashing line under one network flooding logins', () => {
  it("serves another network's login and keeps the flood to its share, counting only checked failures", async () => {
    const owner = await registerUser(api);
    // More logins than the whole line holds, each under another name (so no (account, network)
    // pair stops them): before, they took every place and the owner's login was refused 503.
    const flood = Array.from({ length: 70 }, (_, i) =>
      login(FLOODER, { login: `nobody-${i}-${owner.username}`, password: 'Wrong-Horse-Battery-7' }),
    );
    const ownerLogin = login(OWNER, { login: owner.username, password: owner.password });
    const [answers, mine] = await Promise.all([Promise.all(flood), ownerLogin]);

    expect(mine.status).toBe(200);
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.every((status) => status === 401 || status === 429)).toBe(true);
    const refused = answers.filter((answer) => answer.status === 429);
    // Refused for the flooding network alone, at once, before any hash.
    expect(refused.length).toBeGreaterThan(0);
    for (const answer of refused) {
      expect(answer.body.code).toBe('RATE_LIMITED');
      expect(answer.headers.get('retry-after')).toBe('1');
    }
    // Only the logins whose password was checked count as failures of the network.
    const checked = statuses.filter((status) => status === 401).length;
    const counted = Number(await redis.get(`${prefix}:window:login-failures:ip:${FLOODER}`));
    expect(counted).toBe(checked);
  }, 30_000);

  it('keeps posts of one reset link to the same share', async () => {
    const owner = await registerUser(api);
    // A live reset link of the owner's (as the mail worker issues it: only its hash is stored).
    const token = await insertResetLink(testNode.db.url, owner.id);
    // A weak new password: refused after the hash, the link left unspent for the next post.
    const answers = await Promise.all(
      Array.from({ length: 30 }, () =>
        api.call<{ code?: string }>('POST', '/v1/auth/reset-password', {
          body: { token, newPassword: 'password123' },
          headers: { 'x-forwarded-for': FLOODER },
        }),
      ),
    );
    const codes = answers.map((answer) => answer.body.code);
    expect(codes.every((code) => code === 'VALIDATION_FAILED' || code === 'RATE_LIMITED')).toBe(true);
    expect(codes).toContain('RATE_LIMITED');
    // The link still works, from anywhere.
    const reset = await api.call('POST', '/v1/auth/reset-password', {
      body: { token, newPassword: 'Another-Battery-Staple-9' },
      headers: { 'x-forwarded-for': OWNER },
    });
    expect(reset.status).toBe(204);
  }, 30_000);
});
