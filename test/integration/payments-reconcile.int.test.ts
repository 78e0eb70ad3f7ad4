/**
 * A payment whose outcome never arrives (its webhook lost: the provider gave up while our endpoint
 * was down, or the sandbox holding it restarted) is not left as it stands for good: the worker's
 * reconciliation asks the provider to send it again — for a pending payment, and for a withdrawal
 * paid within PAYMENTS_PAYOUT_RETURN_WINDOW_S, whose bank may have returned it since. Real
 * PostgreSQL, Redis, payments queue and signed webhooks over HTTP; a lost webhook is one the sandbox
 * holds for SANDBOX_WEBHOOK_DELAY_MS = an hour (the delayed card, the late failure of a payout to an
 * account ending 0000), which never leaves during the test, as after a worker restart. A top-up
 * failed as `provider_unavailable` (its charge calls all timed out here) is asked about too: a charge
 * the provider made is credited once, one it never took stays failed.
 */
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { insertPayment } from '../../src/db/repositories/payments.repo.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import { applyProviderEvent, failUnsubmittedPayment } from '../../src/domain/payments/payments.js';
import type { ProviderEvent, ResendRequest } from '../../src/domain/payments/provider.js';
import { startPaymentReconciler } from '../../src/domain/payments/reconciler.js';
import { createSandboxProvider, SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { walletBalance } from '../../src/domain/payments/wallet.js';
import { createManualTimers } from '../../src/platform/timers.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { insertActor, TEST_PAYMENT_SETTINGS } from '../support/payments-db.js';
import { untilDefined } from '../support/poll.js';

const ASKED_PAID = 'asked the provider again about a paid withdrawal (a bank return may be lost)';

describe('payments reconciliation', () => {
  let node: TestNode;
  let api: ReturnType<typeof httpClient>;
  let handle: DbHandle;

  beforeAll(async () => {
    node = await startTestNode({
      OUTBOX_POLL_MS: '20',
      SANDBOX_WEBHOOK_DELAY_MS: '3600000',
      PAYMENTS_RECONCILE_AFTER_S: '1',
    });
    api = httpClient(node.node.baseUrl);
    handle = await createDb({ kind: 'postgres', url: node.db.url, poolMax: 2 }, node.logs.log);
  }, 60_000);
  afterAll(async () => {
    await handle?.close();
    await node?.stop();
  });

  const payment = async (user: Registered, id: string) =>
    (
      await api.get<{ payment: { status: string; failureCode?: string } }>(
        `/v1/payments/${id}`,
        user.accessToken,
      )
    ).body.payment;

  const settled = (user: Registered, id: string) =>
    untilDefined(async () => {
      const found = await payment(user, id);
      return found.status === 'pending' ? undefined : found;
    }, `payment ${id} settled`);

  const wallet = async (user: Registered) =>
    (await api.get<{ available: number; pending: number }>('/v1/wallet', user.accessToken)).body;

  const request = async (user: Registered, path: string, body: Record<string, unknown>) => {
    const response = await api.call<{ payment: { id: string } }>('POST', path, {
      token: user.accessToken,
      body,
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(response.status).toBe(202);
    return response.body.payment.id;
  };

  /** A user with `amount` in the wallet, withdrawn in full to `bankAccount` and paid. */
  const paidWithdrawal = async (amount: number, bankAccount: string) => {
    const user = await registerUser(api);
    const topUp = await request(user, '/v1/wallet/top-ups', { amount, card: SandboxCard.SUCCEEDS });
    expect((await settled(user, topUp)).status).toBe('succeeded');
    const withdrawal = await request(user, '/v1/wallet/withdrawals', { amount, bankAccount });
    expect((await settled(user, withdrawal)).status).toBe('succeeded');
    expect(await wallet(user)).toMatchObject({ available: 0, pending: 0 });
    return { user, withdrawal };
  };

  const askedPaid = (paymentId: string) =>
    node.logs.lines().filter((line) => line.msg === ASKED_PAID && line.paymentId === paymentId).length;

  it('credits a top-up whose webhook never came, once', async () => {
    const user = await registerUser(api);
    const started = await api.call<{ payment: { id: string } }>('POST', '/v1/wallet/top-ups', {
      token: user.accessToken,
      body: { amount: 1_234, card: SandboxCard.DELAYED_WEBHOOK },
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(started.status).toBe(202);
    let status = 'pending';
    for (let i = 0; i < 300 && status === 'pending'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      status = (
        await api.get<{ payment: { status: string } }>(
          `/v1/payments/${started.body.payment.id}`,
          user.accessToken,
        )
      ).body.payment.status;
    }
    expect(status).toBe('succeeded');
    const wallet = await api.get<{ available: number }>('/v1/wallet', user.accessToken);
    expect(wallet.body.available).toBe(1_234);
    expect(node.logs.lines().some((line) => line.msg === 'asked the provider to resend a lost outcome')).toBe(
      true,
    );
    // Asked again later (the payment is settled now), nothing moves twice.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await api.get<{ available: number }>('/v1/wallet', user.accessToken)).body.available).toBe(1_234);
  }, 40_000);

  it('credits back a paid withdrawal the bank returned when the "payout failed" webhook was lost', async () => {
    // DE0000: the sandbox pays it, then fails it SANDBOX_WEBHOOK_DELAY_MS (an hour) later: lost here.
    const { user, withdrawal } = await paidWithdrawal(5_000, 'DE0000');
    // The reconciler (every second here) asks the provider again, which reports the return.
    const returned = await untilDefined(async () => {
      const found = await payment(user, withdrawal);
      return found.status === 'succeeded' ? undefined : found;
    }, 'the returned payout to be applied');
    expect(returned).toMatchObject({ status: 'failed', failureCode: 'payout_failed' });
    expect(askedPaid(withdrawal)).toBeGreaterThanOrEqual(1);
    expect(await wallet(user)).toMatchObject({ available: 5_000, pending: 0 });
    // Passes go on; the payment is no longer paid, so nothing moves again.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(await wallet(user)).toMatchObject({ available: 5_000, pending: 0 });
    // The payout reversed in the ledger (the money back from provider clearing), once.
    expect((await paymentRow(withdrawal)).reversal_transaction_id).not.toBeNull();
    expect((await auditLedger(handle.db)).findings).toEqual([]);
  }, 40_000);

  it('a paid withdrawal asked about again stays paid, nothing moved', async () => {
    const { user, withdrawal } = await paidWithdrawal(3_000, 'DE89370400440532013000');
    await untilDefined(
      async () => (askedPaid(withdrawal) >= 1 ? true : undefined),
      'the provider to be asked again about the paid withdrawal',
    );
    // Its `payout.paid` came again: a duplicate.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await payment(user, withdrawal)).toMatchObject({ status: 'succeeded' });
    expect(await wallet(user)).toMatchObject({ available: 0, pending: 0 });
    expect((await auditLedger(handle.db)).findings).toEqual([]);
  }, 40_000);

  it('asks about a paid withdrawal at doubling ages, and only within the return window', async () => {
    const { withdrawal } = await paidWithdrawal(700, 'DE89370400440532014000');
    const paidAt = (await paymentRow(withdrawal)).settled_at?.getTime() ?? 0;
    const timers = createManualTimers(paidAt);
    const resends: ResendRequest[] = [];
    const reconciler = startPaymentReconciler({
      db: handle.db,
      provider: { resendOutcome: async (request) => void resends.push(request) },
      timers,
      log: node.logs.log,
      afterMs: 5_000,
      payoutReturnWindowMs: 60_000,
    });
    /** Moves to `ageS` seconds after the payment was paid, runs a pass: how often it was asked in all. */
    const askedAt = async (ageS: number) => {
      timers.advance(paidAt + ageS * 1000 - timers.now());
      await reconciler.runOnce();
      return resends.filter((request) => request.paymentId === withdrawal).length;
    };
    expect(await askedAt(4)).toBe(0); // younger than afterMs
    expect(await askedAt(10)).toBe(1); // asked at age 10 s: not again before 20 s
    expect(await askedAt(19)).toBe(1);
    expect(await askedAt(21)).toBe(2); // … then not before 42 s
    expect(await askedAt(41)).toBe(2);
    expect(await askedAt(43)).toBe(3); // … then not before 86 s, past the window: so last at 55 s
    expect(await askedAt(54)).toBe(3);
    expect(await askedAt(56)).toBe(4); // the last ask, afterMs before the window closes
    expect(await askedAt(59)).toBe(4);
    expect(await askedAt(61)).toBe(4);
    expect(await askedAt(100)).toBe(4);
    expect(resends.find((request) => request.paymentId === withdrawal)).toMatchObject({
      kind: 'withdrawal',
      amount: 700n,
      bankAccount: 'DE89370400440532014000',
    });
    await reconciler.stop();
  }, 40_000);

  it('asks the provider about a top-up failed as provider_unavailable: charged, it is credited once; never charged, it stays failed', async () => {
    const timers = createManualTimers(Date.now());
    const deps = {
      db: handle.db,
      clock: { now: () => new Date(timers.now()) },
      settings: TEST_PAYMENT_SETTINGS,
      log: node.logs.log,
    };
    // Our webhook endpoint was down until the provider gave up: what it sends meanwhile is lost.
    let endpointDown = true;
    const lost: ProviderEvent[] = [];
    const applied: Promise<unknown>[] = [];
    const sandbox = createSandboxProvider({
      timers,
      deliver: async (event) => {
        if (endpointDown) lost.push(event);
        else applied.push(applyProviderEvent(deps, event));
      },
      newId: (seed) => createHash('sha256').update(seed).digest('base64url').slice(0, 24),
      delayedWebhookMs: 0,
      duplicateEvery: 0,
    });
    const user = await insertActor(handle.db, 'unconfirmed');
    // Two top-ups whose submit task gave up (no outbox event: the node's worker never sees them).
    const [charged, untouched] = await handle.db.transaction().execute(async (trx) => {
      const topUp = (amount: bigint) =>
        insertPayment(trx, {
          userId: user.userId,
          kind: 'top_up',
          amount,
          currency: 'USD',
          instrument: SandboxCard.SUCCEEDS,
          holdId: null,
        });
      return [await topUp(800n), await topUp(300n)];
    });
    // The first one's call timed out here but went through: the provider charged it.
    const answer = await sandbox.charge({
      paymentId: charged.id,
      amount: charged.amount,
      currency: 'USD',
      card: SandboxCard.SUCCEEDS,
    });
    expect(answer.accepted).toBe(true);
    timers.advance(0);
    expect(lost.map((event) => event.data.paymentId)).toEqual([charged.id]);
    expect(await failUnsubmittedPayment(deps, charged.id)).toBe(true);
    expect(await failUnsubmittedPayment(deps, untouched.id)).toBe(true);
    endpointDown = false;

    const asked: ResendRequest[] = [];
    const reconciler = startPaymentReconciler({
      db: handle.db,
      provider: {
        resendOutcome: (request) => {
          asked.push(request);
          return sandbox.resendOutcome(request);
        },
      },
      timers,
      log: node.logs.log,
      afterMs: 5_000,
      payoutReturnWindowMs: 0,
    });
    timers.advance(6_000);
    await reconciler.runOnce();
    timers.advance(0); // the sandbox sends what it was asked for
    await Promise.all(applied);
    expect(await paymentRow(charged.id)).toMatchObject({ status: 'succeeded', failure_code: null });
    expect(await paymentRow(untouched.id)).toMatchObject({
      status: 'failed',
      failure_code: 'provider_unavailable',
    });
    expect((await walletBalance(deps, user.userId)).available).toBe(800n);
    const mine = (id: string) => asked.filter((request) => request.paymentId === id);
    expect(mine(charged.id)).toMatchObject([{ kind: 'top_up', unconfirmed: true }]);
    expect(mine(untouched.id)).toMatchObject([{ kind: 'top_up', unconfirmed: true }]);

    // The lost webhook arrives after all, and later passes run: nothing moves twice.
    expect(await applyProviderEvent(deps, lost[0] as ProviderEvent)).toBe('duplicate');
    timers.advance(60_000);
    await reconciler.runOnce();
    timers.advance(0);
    await Promise.all(applied);
    expect(mine(untouched.id).length).toBeGreaterThanOrEqual(2);
    expect(await paymentRow(untouched.id)).toMatchObject({ status: 'failed' });
    expect((await walletBalance(deps, user.userId)).available).toBe(800n);
    expect((await auditLedger(handle.db)).findings).toEqual([]);
    await reconciler.stop();
  }, 40_000);

  const paymentRow = (id: string) =>
    handle.db.selectFrom('payments').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
});
