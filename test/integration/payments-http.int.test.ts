/**
 * Payments over REST on one whole node (role all: API, outbox relay, `payments` worker and the
 * sandbox provider, which POSTs its signed webhooks back to the node over real HTTP): the sandbox's
 * cards and bank accounts, the delayed webhook, Idempotency-Key, ownership, the admin list, and the
 * webhook endpoint's refusals (bad signature, ±301 s, replay, out of order) — a refused webhook
 * changes nothing in the database.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import type { Database } from '../../src/db/database.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import {
  applyReceivedProviderEvent,
  receiveProviderEventIn,
  requestTopUpIn,
  requestWithdrawalIn,
} from '../../src/domain/payments/payments.js';
import type { ProviderEvent } from '../../src/domain/payments/provider.js';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { walletBalance } from '../../src/domain/payments/wallet.js';
import { signWebhook } from '../../src/domain/payments/webhook-signature.js';
import { systemClock } from '../../src/platform/clock.js';
import { submitExhausted } from '../../src/workers/payments/processor.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';

const secret = () => `whsec_${randomBytes(32).toString('base64')}`;
const CURRENT_SECRET = secret();
const PREVIOUS_SECRET = secret();
const ADMIN = { email: 'payments-admin@example.test', password: 'Admin-Password-123!' };
const DELAY_MS = 2_000;

let node: TestNode;
let api: ReturnType<typeof httpClient>;
let handle: DbHandle;
let db: Kysely<Database>;
let adminToken: string;

beforeAll(async () => {
  node = await startTestNode({
    PAYMENTS_WEBHOOK_SECRETS: `${CURRENT_SECRET},${PREVIOUS_SECRET}`,
    SANDBOX_WEBHOOK_DELAY_MS: String(DELAY_MS),
    OUTBOX_POLL_MS: '20',
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
  });
  api = httpClient(node.node.baseUrl);
  handle = await createDb({ kind: 'postgres', url: node.db.url, poolMax: 2 }, captureLogs().log);
  db = handle.db;
  const login = await api.post<{ accessToken: string }>('/v1/auth/login', {
    login: ADMIN.email,
    password: ADMIN.password,
  });
  adminToken = login.body.accessToken;
}, 60_000);

afterAll(async () => {
  await handle?.close();
  await node?.stop();
});

interface PaymentBody {
  id: string;
  kind: string;
  status: 'pending' | 'succeeded' | 'failed';
  amount: number;
  failureCode?: string;
  settledAt?: string;
}

/** `key: null` sends no Idempotency-Key. */
const post = (path: string, user: Registered, body: unknown, key: string | null = randomUUID()) =>
  api.call<{ payment: PaymentBody; code?: string; shortfall?: number }>('POST', path, {
    body,
    token: user.accessToken,
    ...(key === null ? {} : { headers: { 'idempotency-key': key } }),
  });

async function settled(user: Registered, id: string): Promise<PaymentBody> {
  for (;;) {
    const got = await api.get<{ payment: PaymentBody }>(`/v1/payments/${id}`, user.accessToken);
    expect(got.status).toBe(200);
    if (got.body.payment.status !== 'pending') return got.body.payment;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function topUp(user: Registered, amount: number, card: string = SandboxCard.SUCCEEDS) {
  const response = await post('/v1/wallet/top-ups', user, { amount, card });
  expect(response.status).toBe(202);
  expect(response.body.payment).toMatchObject({ kind: 'top_up', status: 'pending', amount });
  return settled(user, response.body.payment.id);
}

const balance = (user: Registered) =>
  walletBalance({ db, settings: { currency: 'USD', platformFeeBps: 1000 } }, user.id as UserId);

/** Everything a webhook could change. */
const snapshot = async () => ({
  transactions: (
    await db.selectFrom('ledger_transactions').select(db.fn.countAll().as('n')).executeTakeFirst()
  )?.n,
  events: (await db.selectFrom('provider_events').select(db.fn.countAll().as('n')).executeTakeFirst())?.n,
  payments: await db.selectFrom('payments').select(['id', 'status', 'failure_code']).orderBy('id').execute(),
  outbox: (await db.selectFrom('outbox_events').select(db.fn.countAll().as('n')).executeTakeFirst())?.n,
});

function signed(event: ProviderEvent, options: { secret?: string; timestamp?: number; body?: string } = {}) {
  const body = options.body ?? JSON.stringify(event);
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'webhook-id': event.id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signWebhook({
        secret: options.secret ?? CURRENT_SECRET,
        id: event.id,
        timestamp,
        body: JSON.stringify(event),
      }),
    },
  };
}

/** What the payments task made of a received event, once it ran. */
async function outcomeOf(eventId: string): Promise<string> {
  for (;;) {
    const row = await db
      .selectFrom('provider_events')
      .select('outcome')
      .where('id', '=', eventId)
      .executeTakeFirst();
    if (row !== undefined && row.outcome !== 'received') return row.outcome;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function sendWebhook(message: { body: string; headers: Record<string, string> }) {
  const response = await fetch(`${node.node.baseUrl}/v1/payments/webhook`, {
    method: 'POST',
    headers: message.headers,
    body: message.body,
  });
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    body: (await response.json()) as { outcome?: string; code?: string },
  };
}

describe('payments over REST with the sandbox provider', () => {
  it('top-ups: 4242 succeeds, 0002 is declined, 9995 fails for insufficient funds; the wallet holds only the success', async () => {
    const user = await registerUser(api);
    expect(await topUp(user, 10_000)).toMatchObject({ status: 'succeeded', amount: 10_000 });
    const declined = await topUp(user, 500, SandboxCard.DECLINED);
    expect(declined).toMatchObject({ status: 'failed', failureCode: 'card_declined' });
    expect(declined.settledAt).toEqual(expect.any(String));
    expect(await topUp(user, 700, SandboxCard.INSUFFICIENT_FUNDS)).toMatchObject({
      status: 'failed',
      failureCode: 'insufficient_funds',
    });
    expect(await balance(user)).toMatchObject({ posted: 10_000n, available: 10_000n, pending: 0n });
    const outbox = await db
      .selectFrom('outbox_events')
      .select(['type', 'payload'])
      .where('type', 'in', ['payment.succeeded', 'payment.failed'])
      .where(({ ref, eb }) => eb(ref('payload', '->>').key('userId'), '=', user.id))
      .execute();
    expect(outbox.map((e) => e.type).sort()).toEqual([
      'payment.failed',
      'payment.failed',
      'payment.succeeded',
    ]);
  });

  it('the 0077 card is accepted but its webhook comes SANDBOX_WEBHOOK_DELAY_MS later: pending until then, then succeeded', async () => {
    const user = await registerUser(api);
    const response = await post('/v1/wallet/top-ups', user, {
      amount: 1_234,
      card: SandboxCard.DELAYED_WEBHOOK,
    });
    expect(response.status).toBe(202);
    const id = response.body.payment.id;
    // Submitted: the provider accepted the charge; its success webhook is still on its way.
    for (;;) {
      const row = await db
        .selectFrom('payments')
        .select(['submitted_at', 'status'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      if (row.submitted_at !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const meanwhile = await api.get<{ payment: PaymentBody }>(`/v1/payments/${id}`, user.accessToken);
    expect(meanwhile.body.payment.status).toBe('pending');
    expect(meanwhile.body.payment.settledAt).toBeUndefined();
    expect((await balance(user)).posted).toBe(0n);
    expect(await settled(user, id)).toMatchObject({ status: 'succeeded', settledAt: expect.any(String) });
    expect((await balance(user)).posted).toBe(1_234n);
  });

  it('withdrawals: reserved at once (409 when not covered), paid; an account ending 0000 is paid then fails and the money comes back once', async () => {
    const user = await registerUser(api);
    await topUp(user, 10_000);
    const tooMuch = await post('/v1/wallet/withdrawals', user, {
      amount: 10_001,
      bankAccount: 'DE89370400440532013001',
    });
    expect(tooMuch.status).toBe(409);
    expect(tooMuch.body).toMatchObject({ code: 'INSUFFICIENT_FUNDS' });

    const paid = await post('/v1/wallet/withdrawals', user, {
      amount: 3_000,
      bankAccount: 'DE89370400440532013001',
    });
    expect(paid.status).toBe(202);
    expect(await settled(user, paid.body.payment.id)).toMatchObject({
      kind: 'withdrawal',
      status: 'succeeded',
    });
    expect(await balance(user)).toMatchObject({ posted: 7_000n, available: 7_000n, pending: 0n });

    const bounced = await post('/v1/wallet/withdrawals', user, {
      amount: 2_000,
      bankAccount: 'GB33BUKB20201555550000',
    });
    expect(bounced.status).toBe(202);
    // Reserved at once: only 5 000 can leave while it is in flight.
    const meanwhile = await post('/v1/wallet/withdrawals', user, {
      amount: 5_001,
      bankAccount: 'DE89370400440532013001',
    });
    expect(meanwhile.status).toBe(409);
    // Paid first (the hold posts), then the payout fails: reversed.
    expect(await settled(user, bounced.body.payment.id)).toMatchObject({ status: 'succeeded' });
    for (;;) {
      const got = await api.get<{ payment: PaymentBody }>(
        `/v1/payments/${bounced.body.payment.id}`,
        user.accessToken,
      );
      if (got.body.payment.status === 'failed') {
        expect(got.body.payment.failureCode).toBe('payout_failed');
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(await balance(user)).toMatchObject({ posted: 7_000n, available: 7_000n, pending: 0n });
    const row = await db
      .selectFrom('payments')
      .selectAll()
      .where('id', '=', bounced.body.payment.id)
      .executeTakeFirstOrThrow();
    expect(row.transaction_id).not.toBeNull();
    expect(row.reversal_transaction_id).not.toBeNull();
  });

  it('Idempotency-Key: required (400), a retry replays the first answer (one payment), another body under it is 422', async () => {
    const user = await registerUser(api);
    const missing = await post('/v1/wallet/top-ups', user, { amount: 100, card: SandboxCard.SUCCEEDS }, null);
    expect(missing.status).toBe(400);
    const key = randomUUID();
    const first = await post('/v1/wallet/top-ups', user, { amount: 100, card: SandboxCard.SUCCEEDS }, key);
    const again = await post('/v1/wallet/top-ups', user, { amount: 100, card: SandboxCard.SUCCEEDS }, key);
    expect(again.status).toBe(202);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const other = await post('/v1/wallet/top-ups', user, { amount: 101, card: SandboxCard.SUCCEEDS }, key);
    expect(other.status).toBe(422);
    await settled(user, first.body.payment.id);
    const rows = await db
      .selectFrom('payments')
      .select('id')
      .where('user_id', '=', user.id as UserId)
      .execute();
    expect(rows).toHaveLength(1);
    expect((await balance(user)).posted).toBe(100n);
  });

  it("another user's payment is 404, like one that does not exist; the admin list filters by status and is admin-only", async () => {
    const owner = await registerUser(api);
    const stranger = await registerUser(api);
    const payment = await topUp(owner, 300, SandboxCard.DECLINED);
    const foreign = await api.get(`/v1/payments/${payment.id}`, stranger.accessToken);
    const unknown = await api.get(`/v1/payments/${randomUUID()}`, stranger.accessToken);
    expect(foreign.status).toBe(404);
    expect(unknown.status).toBe(404);
    expect({ ...foreign.body, instance: '', requestId: '' }).toEqual({
      ...unknown.body,
      instance: '',
      requestId: '',
    });

    expect((await api.get('/v1/admin/payments', stranger.accessToken)).status).toBe(403);
    const failed = await api.get<{ data: (PaymentBody & { userId: string })[] }>(
      '/v1/admin/payments?status=failed&limit=100',
      adminToken,
    );
    expect(failed.status).toBe(200);
    expect(failed.body.data.every((p) => p.status === 'failed')).toBe(true);
    expect(failed.body.data).toContainEqual(expect.objectContaining({ id: payment.id, userId: owner.id }));
    const firstPage = await api.get<{ data: PaymentBody[]; nextCursor: string | null }>(
      '/v1/admin/payments?limit=1',
      adminToken,
    );
    expect(firstPage.body.data).toHaveLength(1);
    const second = await api.get<{ data: PaymentBody[] }>(
      `/v1/admin/payments?limit=1&cursor=${firstPage.body.nextCursor}`,
      adminToken,
    );
    expect(second.body.data[0]?.id).not.toBe(firstPage.body.data[0]?.id);
  });
});

describe('the webhook endpoint', () => {
  it('refuses a bad signature, a changed body, ±301 s, missing headers and a mismatched id — and nothing changes; the right one applies once, a replay is a duplicate', async () => {
    const user = await registerUser(api);
    // A top-up the provider declined: a late success for it would credit the wallet (a success
    // after a failure is honoured), so every refused forgery below would show in the ledger.
    const declined = await topUp(user, 4_200, SandboxCard.DECLINED);
    const event: ProviderEvent = {
      id: `evt_test_${randomUUID()}`,
      type: 'charge.succeeded',
      createdAt: Math.floor(Date.now() / 1000),
      data: { paymentId: declined.id, providerRef: 'ch_test', amount: 4_200, currency: 'USD' },
    };
    const before = await snapshot();
    // Start right after a second boundary, so "now" is the same whole second for us and the server
    // while these few requests run (a later second would shrink "301 s in the future" to 300).
    await new Promise((resolve) => setTimeout(resolve, 1_000 - (Date.now() % 1_000) + 5));
    const now = Math.floor(Date.now() / 1000);
    const refusals: [string, { body: string; headers: Record<string, string> }, number][] = [
      ['301 s in the future', signed(event, { timestamp: now + 301 }), 401],
      ['unknown secret', signed(event, { secret: secret() }), 401],
      [
        'body changed after signing',
        signed(event, { body: JSON.stringify({ ...event, data: { ...event.data, amount: 9_999 } }) }),
        401,
      ],
      ['301 s old', signed(event, { timestamp: now - 301 }), 401],
      [
        'no signature',
        (() => {
          const message = signed(event);
          const { 'webhook-signature': _, ...headers } = message.headers;
          return { body: message.body, headers };
        })(),
        400,
      ],
    ];
    for (const [label, message, status] of refusals) {
      const answer = await sendWebhook(message);
      expect({ label, status: answer.status }).toEqual({ label, status });
      expect(answer.type).toContain('application/problem+json');
    }
    const otherId = { ...event, id: `evt_other_${randomUUID()}` };
    const mismatched = signed(event, { body: JSON.stringify(otherId) });
    mismatched.headers['webhook-signature'] = signWebhook({
      secret: CURRENT_SECRET,
      id: event.id,
      timestamp: Number(mismatched.headers['webhook-timestamp']),
      body: mismatched.body,
    });
    expect((await sendWebhook(mismatched)).status).toBe(400);
    expect(await snapshot()).toEqual(before);
    expect((await balance(user)).posted).toBe(0n);

    // Signed with the previous secret (rotation): accepted, applied once.
    const accepted = await sendWebhook(signed(event, { secret: PREVIOUS_SECRET }));
    expect(accepted).toMatchObject({ status: 200, body: { outcome: 'queued' } });
    expect(await outcomeOf(event.id)).toBe('applied');
    expect(await settled(user, declined.id)).toMatchObject({ status: 'succeeded' });
    expect((await balance(user)).posted).toBe(4_200n);
    // Kept with what the provider said.
    expect(
      await db
        .selectFrom('provider_events')
        .select(['type', 'outcome', 'payment_id', 'payload'])
        .where('id', '=', event.id)
        .executeTakeFirst(),
    ).toEqual({ type: event.type, outcome: 'applied', payment_id: declined.id, payload: event });
    const after = await snapshot();
    // Replayed inside the window (same id, new timestamp): a duplicate, nothing changes.
    for (let i = 0; i < 3; i++) {
      expect(await sendWebhook(signed(event, { timestamp: now + i }))).toMatchObject({
        status: 200,
        body: { outcome: 'duplicate' },
      });
    }
    expect(await snapshot()).toEqual(after);
    expect((await balance(user)).posted).toBe(4_200n);
  });

  it('an authentic event of a type not handled here is acknowledged 200 ignored and changes nothing; unsigned it is 401, a known type malformed is 400', async () => {
    const user = await registerUser(api);
    const declined = await topUp(user, 300, SandboxCard.DECLINED);
    const base = {
      id: `evt_new_type_${randomUUID()}`,
      createdAt: Math.floor(Date.now() / 1000),
      data: { paymentId: declined.id, providerRef: 'ch_new', amount: 300, currency: 'USD' },
    };
    const unknownType = { ...base, type: 'charge.refund.updated' } as unknown as ProviderEvent;
    const malformedKnown = { ...base, type: 'charge.succeeded', data: { ...base.data, amount: '300' } };
    const before = await snapshot();
    expect(await sendWebhook(signed(unknownType))).toMatchObject({
      status: 200,
      body: { received: true, outcome: 'ignored' },
    });
    expect((await sendWebhook(signed(unknownType, { secret: secret() }))).status).toBe(401);
    expect((await sendWebhook(signed(malformedKnown as unknown as ProviderEvent))).status).toBe(400);
    expect(await snapshot()).toEqual(before);
    expect((await balance(user)).posted).toBe(0n);
  });

  it('a received event applied by several task runs at once (a redelivered task, a worker killed after its commit) moves money once', async () => {
    const user = await registerUser(api);
    const declined = await topUp(user, 650, SandboxCard.DECLINED);
    const event: ProviderEvent = {
      id: `evt_twice_${randomUUID()}`,
      type: 'charge.succeeded',
      createdAt: Math.floor(Date.now() / 1000),
      data: { paymentId: declined.id, providerRef: 'ch_twice', amount: 650, currency: 'USD' },
    };
    // Recorded as the endpoint does, but without its outbox line: only these runs apply it.
    await db.transaction().execute((trx) => receiveProviderEventIn(trx, event));
    const deps = { db, clock: systemClock, settings: { currency: 'USD', platformFeeBps: 1000 } };
    const runs = await Promise.all([1, 2, 3].map(() => applyReceivedProviderEvent(deps, event.id)));
    expect(runs.sort()).toEqual(['applied', 'duplicate', 'duplicate']);
    expect(await applyReceivedProviderEvent(deps, event.id)).toBe('duplicate');
    expect(await balance(user)).toMatchObject({ posted: 650n });
    const credits = await db
      .selectFrom('ledger_transactions')
      .select('id')
      .where('external_ref', '=', event.id)
      .execute();
    expect(credits).toHaveLength(1);
  });

  it('a submit task out of retries: a top-up fails as provider_unavailable; a withdrawal stays pending, its amount still reserved', async () => {
    const user = await registerUser(api);
    await topUp(user, 1_000);
    const deps = { db, clock: systemClock, settings: { currency: 'USD', platformFeeBps: 1000 } };
    // Requested as the routes do, minus the outbox line: no task will ever submit these.
    const [charge, payout] = await db.transaction().execute(async (trx) => [
      await requestTopUpIn(trx, deps, {
        userId: user.id as UserId,
        amount: 300n,
        card: SandboxCard.SUCCEEDS,
      }),
      await requestWithdrawalIn(trx, deps, {
        userId: user.id as UserId,
        amount: 400n,
        bankAccount: 'DE89370400440532013001',
      }),
    ]);
    const worker = { payments: deps, log: captureLogs().log };
    await submitExhausted(worker, charge.id);
    await submitExhausted(worker, payout.id);
    expect(await settled(user, charge.id)).toMatchObject({
      status: 'failed',
      failureCode: 'provider_unavailable',
    });
    const still = await api.get<{ payment: PaymentBody }>(`/v1/payments/${payout.id}`, user.accessToken);
    expect(still.body.payment.status).toBe('pending');
    expect(await balance(user)).toMatchObject({ posted: 1_000n, pending: 400n, available: 600n });
  });

  it('out of order: a failure after a success is ignored for a top-up; a payout paid after it failed changes nothing; concurrent twins apply once', async () => {
    const user = await registerUser(api);
    const ok = await topUp(user, 900);
    const lateFailure: ProviderEvent = {
      id: `evt_late_${randomUUID()}`,
      type: 'charge.failed',
      createdAt: Math.floor(Date.now() / 1000),
      data: {
        paymentId: ok.id,
        providerRef: 'ch_x',
        amount: 900,
        currency: 'USD',
        failureCode: 'card_declined',
      },
    };
    const before = await snapshot();
    const twins = await Promise.all([1, 2, 3, 4].map(() => sendWebhook(signed(lateFailure))));
    expect(twins.map((t) => t.status)).toEqual([200, 200, 200, 200]);
    expect(twins.map((t) => t.body.outcome).sort()).toEqual([
      'duplicate',
      'duplicate',
      'duplicate',
      'queued',
    ]);
    expect(await outcomeOf(lateFailure.id)).toBe('ignored: failure after succeeded');
    expect(await settled(user, ok.id)).toMatchObject({ status: 'succeeded' });
    expect((await snapshot()).transactions).toEqual(before.transactions);

    // A payout that was paid and then failed (reversed): another payout.paid for it moves nothing.
    const out = await post('/v1/wallet/withdrawals', user, {
      amount: 400,
      bankAccount: 'NL91ABNA0417160000',
    });
    expect(out.status).toBe(202);
    for (;;) {
      const got = await api.get<{ payment: PaymentBody }>(
        `/v1/payments/${out.body.payment.id}`,
        user.accessToken,
      );
      if (got.body.payment.status === 'failed') break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const mid = await snapshot();
    const latePaid: ProviderEvent = {
      id: `evt_paid_${randomUUID()}`,
      type: 'payout.paid',
      createdAt: Math.floor(Date.now() / 1000),
      data: { paymentId: out.body.payment.id, providerRef: 'po_x', amount: 400, currency: 'USD' },
    };
    const late = await sendWebhook(signed(latePaid));
    expect(late).toMatchObject({ status: 200, body: { outcome: 'queued' } });
    expect(await outcomeOf(latePaid.id)).toBe('ignored: paid after failed');
    const end = await snapshot();
    // Only the event itself (and the outbox line that queued its task) was added.
    expect({ ...end, events: mid.events, outbox: mid.outbox }).toEqual(mid);
    expect(await balance(user)).toMatchObject({ posted: 900n, available: 900n, pending: 0n });
    expect((await auditLedger(db)).findings).toEqual([]);
  });
});
