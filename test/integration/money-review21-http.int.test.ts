/**
 * Money review 21, over real HTTP on one node:
 * - GET /v1/admin/ledger/audit took any query parameter and ignored it, so `?invariant=I3` answered
 *   the whole audit as if it were filtered, while every other admin list (and every route with a
 *   query) refuses an unknown parameter with 400 problem+json. Now its query is declared empty and
 *   strict, the same way.
 * - The payment webhook reads its body as raw bytes for the media types it declares (JSON and
 *   `+json`), but fastify's own text/plain parser still ran for `text/plain`: a correctly signed
 *   event sent so reached the signature check as an empty body and was answered 401
 *   "bad-signature", which sends an operator rotating secrets that are right. Now it is 415
 *   UNSUPPORTED_MEDIA_TYPE, as any other type the webhook does not read.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook } from '../../src/domain/payments/webhook-signature.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient } from '../support/http.js';

const ADMIN = { email: 'review21-admin@example.test', password: 'Admin-Password-123!' };
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

let node: TestNode;
let api: ReturnType<typeof httpClient>;
let adminToken: string;

beforeAll(async () => {
  node = await startTestNode({
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    PAYMENTS_WEBHOOK_SECRETS: SECRET,
  });
  api = httpClient(node.node.baseUrl);
  const login = await api.post<{ accessToken: string }>('/v1/auth/login', {
    login: ADMIN.email,
    password: ADMIN.password,
  });
  adminToken = login.body.accessToken;
}, 60_000);

afterAll(async () => {
  await node?.stop();
});

describe('GET /v1/admin/ledger/audit', () => {
  it('refuses an unknown query parameter with 400 problem+json, as the admin payments list does', async () => {
    for (const path of ['/v1/admin/ledger/audit?invariant=I3', '/v1/admin/payments?invariant=I3']) {
      const refused = await api.get<Record<string, unknown>>(path, adminToken);
      expect(refused.status, path).toBe(400);
      expect(refused.headers.get('content-type'), path).toMatch(/^application\/problem\+json/);
      expect(refused.body, path).toMatchObject({ code: 'VALIDATION_FAILED' });
    }
    const audit = await api.get<{ clean: boolean; findings: unknown[] }>(
      '/v1/admin/ledger/audit',
      adminToken,
    );
    expect(audit.status).toBe(200);
    expect(audit.body).toMatchObject({ clean: true, findings: [] });
    // OpenAPI still documents it as taking no parameters.
    const doc = await api.get<{ paths: Record<string, { get?: { parameters?: unknown[] } }> }>(
      '/openapi.json',
    );
    expect(doc.body.paths['/v1/admin/ledger/audit']?.get?.parameters ?? []).toEqual([]);
  });
});

describe('POST /v1/payments/webhook', () => {
  it('answers a signed event sent as text/plain 415 (the media type), not 401 (the signature)', async () => {
    const id = `evt_review21_${randomUUID()}`;
    const timestamp = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({
      id,
      type: 'charge.succeeded',
      createdAt: timestamp,
      data: { paymentId: randomUUID(), providerRef: 'ch_review21', amount: 100, currency: 'USD' },
    });
    const send = async (contentType: string) => {
      const response = await fetch(`${node.node.baseUrl}/v1/payments/webhook`, {
        method: 'POST',
        headers: {
          'content-type': contentType,
          'webhook-id': id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook({ secret: SECRET, id, timestamp, body }),
        },
        body,
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/xml']) {
      const refused = await send(type);
      expect(refused.status, type).toBe(415);
      expect(refused.body, type).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
    }
    // The same bytes as JSON are taken (the signature was right all along).
    expect(await send('application/json')).toEqual({
      status: 200,
      body: { received: true, outcome: 'queued' },
    });
  });
});
