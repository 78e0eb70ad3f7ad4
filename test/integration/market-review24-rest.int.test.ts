/**
 * Marketplace, payments and notifications review 24, over real HTTP on one node:
 *
 * - `GET /v1/admin/payments?cursor=` with a cursor that names no payment (well-formed: the
 *   base64url of a UUID) answered an empty 200 page, which reads as "no more payments", instead of
 *   the 400 VALIDATION_FAILED naming `querystring.cursor` that every other list answers for a cursor it did
 *   not make.
 * - a transfer to oneself, and a card or bank account that is not 4–34 letters or digits, were
 *   VALIDATION_FAILED with a lone `details.field`: like every other field error they name the field
 *   in `errors` (`body.toUserId`, `body.card`, `body.bankAccount`), which clients mark.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { type HttpClient, httpClient, registerUser } from '../support/http.js';

const ADMIN = { email: 'review24-admin@example.test', password: 'Admin-Password-123!' };

let testNode: TestNode;
let api: HttpClient;
let adminToken: string;

beforeAll(async () => {
  testNode = await startTestNode({ ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password });
  api = httpClient(testNode.node.baseUrl);
  const login = await api.post<{ accessToken: string }>('/v1/auth/login', {
    login: ADMIN.email,
    password: ADMIN.password,
  });
  expect(login.status).toBe(200);
  adminToken = login.body.accessToken;
}, 60_000);

afterAll(async () => {
  await testNode?.stop();
});

describe('GET /v1/admin/payments with a cursor it did not make', () => {
  it('answers 400 VALIDATION_FAILED naming querystring.cursor for a cursor naming no payment, not an empty page', async () => {
    const cursors = [
      Buffer.from(randomUUID()).toString('base64url'),
      Buffer.from('not-a-payment').toString('base64url'),
    ];
    for (const cursor of cursors) {
      const refused = await api.get<Record<string, unknown>>(
        `/v1/admin/payments?cursor=${cursor}`,
        adminToken,
      );
      expect(refused.status, cursor).toBe(400);
      expect(refused.headers.get('content-type'), cursor).toMatch(/^application\/problem\+json/);
      expect(refused.body, cursor).toMatchObject({
        code: 'VALIDATION_FAILED',
        errors: [{ path: 'querystring.cursor', message: 'is not a cursor from this API' }],
      });
    }
  });
});

describe('money field errors name their field in errors', () => {
  it('names body.toUserId for a transfer to oneself, body.card and body.bankAccount for bad instruments', async () => {
    const user = await registerUser(api);
    const send = (path: string, body: unknown) =>
      api.call<Record<string, unknown>>('POST', path, {
        token: user.accessToken,
        body,
        headers: { 'idempotency-key': randomUUID() },
      });
    for (const [path, body, field] of [
      ['/v1/wallet/transfers', { toUserId: user.id, amount: 100 }, 'body.toUserId'],
      ['/v1/wallet/top-ups', { amount: 100, card: 'no spaces allowed' }, 'body.card'],
      ['/v1/wallet/withdrawals', { amount: 100, bankAccount: 'DE-89' }, 'body.bankAccount'],
    ] as const) {
      const refused = await send(path, body);
      expect(refused.status, path).toBe(400);
      expect(refused.body, path).toMatchObject({
        code: 'VALIDATION_FAILED',
        errors: [{ path: field, message: expect.any(String) }],
      });
    }
  });
});
