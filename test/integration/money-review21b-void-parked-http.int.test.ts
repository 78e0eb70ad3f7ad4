/**
 * Money review 21b, over real HTTP on one node: a top-up parked for an operator (charged for another
 * amount or in another currency than asked) had no operator path — the hold stayed pending and the
 * reconciler warned about it for ever, even after the charge was refunded at the provider. Now
 * `POST /v1/admin/payments/:id/void-parked` (admin, Idempotency-Key) voids its hold once; a second
 * time, or any other payment, is 409 problem+json with its reason; the audit stays clean. The payment
 * itself reads `amount_mismatch` for its user (the schema knew only the codes before).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { type PaymentsDeps, runLedgerTransaction } from '../../src/domain/payments/ledger.js';
import { applyProviderEvent, requestTopUpIn } from '../../src/domain/payments/payments.js';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { systemClock } from '../../src/platform/clock.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { TEST_PAYMENT_SETTINGS } from '../support/payments-db.js';

const ADMIN = { email: 'review21b-admin@example.test', password: 'Admin-Password-123!' };

let node: TestNode;
let api: ReturnType<typeof httpClient>;
let handle: DbHandle;
let deps: PaymentsDeps;
let adminToken: string;
let user: Registered;

beforeAll(async () => {
  node = await startTestNode({
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    PAYMENTS_WEBHOOK_SECRETS: `whsec_${randomBytes(32).toString('base64')}`,
  });
  api = httpClient(node.node.baseUrl);
  handle = await createDb({ kind: 'postgres', url: node.db.url, poolMax: 2 }, captureLogs().log);
  deps = { db: handle.db, clock: systemClock, settings: TEST_PAYMENT_SETTINGS };
  const login = await api.post<{ accessToken: string }>('/v1/auth/login', {
    login: ADMIN.email,
    password: ADMIN.password,
  });
  adminToken = login.body.accessToken;
  user = await registerUser(api);
}, 60_000);

afterAll(async () => {
  await handle?.close();
  await node?.stop();
});

/** A pending top-up of 1 000 cents of `user` (its submit task never queued: no provider involved). */
const pendingTopUp = () =>
  runLedgerTransaction(deps, (trx) =>
    requestTopUpIn(trx, deps, { userId: user.id as UserId, amount: 1_000n, card: SandboxCard.SUCCEEDS }),
  );

const voidParked = (paymentId: string, options: { key?: string; token?: string } = {}) =>
  api.call<Record<string, unknown>>('POST', `/v1/admin/payments/${paymentId}/void-parked`, {
    token: options.token ?? adminToken,
    body: { refundRef: 're_review21b' },
    headers: options.key === undefined ? {} : { 'idempotency-key': options.key },
  });

describe('POST /v1/admin/payments/:id/void-parked', () => {
  it('voids a parked top-up once, admin only, and refuses anything else with problem+json', async () => {
    const payment = await pendingTopUp();
    // The provider reports 1 099 cents taken for it: parked, the payment failed.
    expect(
      await applyProviderEvent(deps, {
        id: `evt_review21b_${randomUUID()}`,
        type: 'charge.succeeded',
        createdAt: Math.floor(Date.now() / 1000),
        data: { paymentId: payment.id, providerRef: 'ch_review21b', amount: 1_099, currency: 'USD' },
      }),
    ).toBe('applied');
    const seen = await api.get<{ payment: Record<string, unknown> }>(
      `/v1/payments/${payment.id}`,
      user.accessToken,
    );
    expect(seen.status).toBe(200);
    expect(seen.body.payment).toMatchObject({ status: 'failed', failureCode: 'amount_mismatch' });
    expect((await api.get('/v1/wallet', user.accessToken)).body).toMatchObject({ posted: 0, parked: 0 });

    expect((await voidParked(payment.id)).status).toBe(400); // no Idempotency-Key
    expect((await voidParked(payment.id, { key: randomUUID(), token: user.accessToken })).status).toBe(403);

    const key = randomUUID();
    const voided = await voidParked(payment.id, { key });
    expect(voided.status).toBe(200);
    expect(voided.body).toMatchObject({
      payment: { id: payment.id, userId: user.id, status: 'failed', failureCode: 'amount_mismatch' },
      voided: { amount: 1_099, currency: 'USD' },
    });
    const replayed = await voidParked(payment.id, { key });
    expect(replayed.status).toBe(200);
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(replayed.body).toEqual(voided.body);

    const again = await voidParked(payment.id, { key: randomUUID() });
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(again.body).toMatchObject({ code: 'CONFLICT', reason: 'ALREADY_VOIDED' });

    const other = await voidParked((await pendingTopUp()).id, { key: randomUUID() });
    expect(other.status).toBe(409);
    expect(other.body).toMatchObject({ code: 'CONFLICT', reason: 'NOT_PARKED' });
    const unknown = await voidParked(randomUUID(), { key: randomUUID() });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toMatch(/^application\/problem\+json/);

    const audit = await api.get<{ clean: boolean }>('/v1/admin/ledger/audit', adminToken);
    expect(audit.body).toMatchObject({ clean: true, findings: [] });
    expect(
      node.logs.lines().some((line) => line.refundRef === 're_review21b' && line.paymentId === payment.id),
    ).toBe(true);

    const doc = await api.get<{ paths: Record<string, { post?: { requestBody?: unknown } }> }>(
      '/openapi.json',
    );
    expect(doc.body.paths['/v1/admin/payments/{id}/void-parked']?.post?.requestBody).toBeDefined();
  });

  it('refuses hostile refundRef values and a malformed payment id with 400 problem+json', async () => {
    const payment = await pendingTopUp();
    for (const refundRef of ['', 'a'.repeat(201), 're\u0000x', 're\nx', 123, { $ne: null }, ['re']]) {
      const answer = await api.call<Record<string, unknown>>(
        'POST',
        `/v1/admin/payments/${payment.id}/void-parked`,
        { token: adminToken, body: { refundRef }, headers: { 'idempotency-key': randomUUID() } },
      );
      expect(answer.status, JSON.stringify(refundRef).slice(0, 40)).toBe(400);
      expect(answer.body.code).toBe('VALIDATION_FAILED');
    }
    const malformed = await voidParked('not-a-payment-id', { key: randomUUID() });
    expect(malformed.status).toBe(400);
  });
});
