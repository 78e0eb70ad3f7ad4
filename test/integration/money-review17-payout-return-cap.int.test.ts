/**
 * Money review 17: a paid withdrawal its bank returns (`payout.failed` after `payout.paid`) into a
 * wallet that was filled up to the balance limit (2^53 − 1) since: the reversal was refused
 * (BALANCE_LIMIT), so the event stayed `received`, its task failed for good, and the reconciler
 * queued it again every PAYMENTS_RECONCILE_AFTER_S, for ever, with the money nowhere in the ledger.
 * Now the event is applied: the returned money is parked in the ledger (a pending hold from provider
 * clearing to the wallet; the audit checks it), the payment fails (`payout_failed`), and the
 * reconciler credits it to the wallet once the wallet has room. Likewise a charged top-up whose
 * wallet was filled to the limit by a transfer after the top-up started: it stayed pending for good
 * (the money taken, never credited, the provider asked again every pass); now it is parked and
 * credited the same way. Real PostgreSQL, the real receive/apply path and reconciler.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { findPayment, unappliedProviderEvents } from '../../src/db/repositories/payments.repo.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import { runLedgerTransaction } from '../../src/domain/payments/ledger.js';
import {
  applyReceivedProviderEvent,
  receiveProviderEventIn,
  requestTopUpIn,
  requestWithdrawalIn,
} from '../../src/domain/payments/payments.js';
import type { ProviderEvent } from '../../src/domain/payments/provider.js';
import { startPaymentReconciler } from '../../src/domain/payments/reconciler.js';
import { MAX_AMOUNT } from '../../src/domain/payments/rules.js';
import { topUp, transfer, walletBalance } from '../../src/domain/payments/wallet.js';
import { systemTimers } from '../../src/platform/timers.js';
import { captureLogs } from '../support/context.js';
import { insertActor, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';

describe('a returned payout into a wallet at its balance limit', () => {
  let t: PaymentsTestDb;
  const logs = captureLogs();

  beforeAll(async () => {
    t = await openPaymentsTestDb();
  });
  afterAll(async () => {
    await t?.close();
  });

  const receiveAndApply = async (event: ProviderEvent) => {
    await t.db.transaction().execute((trx) => receiveProviderEventIn(trx, event));
    return applyReceivedProviderEvent({ ...t.deps, log: logs.log }, event.id);
  };
  const payoutEvent = (type: 'payout.paid' | 'payout.failed', paymentId: string): ProviderEvent => ({
    id: `evt_${type}_${randomUUID()}`,
    type,
    createdAt: Math.floor(Date.now() / 1000),
    data: {
      paymentId,
      providerRef: 'po_review17',
      amount: 500,
      currency: 'USD',
      ...(type === 'payout.failed' ? { failureCode: 'payout_failed' as const } : {}),
    },
  });

  it('is applied and parked in the ledger, then credited by the reconciler once the wallet has room', async () => {
    const user = await insertActor(t.db, 'returned');
    const friend = await insertActor(t.db, 'friend');
    const userId = user.userId as UserId;
    await topUp(t.deps, { opKey: `fund:${randomUUID()}`, userId, amount: 1_000n });
    const payment = await runLedgerTransaction(t.deps, (trx) =>
      requestWithdrawalIn(trx, t.deps, { userId, amount: 500n, bankAccount: 'NL00BANK0000' }),
    );
    expect(await receiveAndApply(payoutEvent('payout.paid', payment.id))).toBe('applied');
    // Filled up to the limit after the payout left.
    await topUp(t.deps, { opKey: `fill:${randomUUID()}`, userId, amount: MAX_AMOUNT - 500n });
    expect((await walletBalance(t.deps, userId)).posted).toBe(MAX_AMOUNT);

    // The bank returns the payout.
    const returned = payoutEvent('payout.failed', payment.id);
    expect(await receiveAndApply(returned)).toBe('applied');
    expect(await findPayment(t.db, payment.id)).toMatchObject({
      status: 'failed',
      failureCode: 'payout_failed',
      reversalTransactionId: null,
    });
    // Never above the limit; the money is in the ledger as a pending credit of the wallet.
    const wallet = await t.db
      .selectFrom('ledger_accounts')
      .select(['posted', 'pending_credits'])
      .where('kind', '=', 'wallet')
      .where('user_id', '=', userId)
      .executeTakeFirstOrThrow();
    expect({ posted: BigInt(wallet.posted), pendingCredits: BigInt(wallet.pending_credits) }).toEqual({
      posted: MAX_AMOUNT,
      pendingCredits: 500n,
    });
    expect((await auditLedger(t.db)).findings).toEqual([]);
    // The user is told it failed, and (parked) that the money is not in the wallet yet.
    const told = await sql<{ payload: Record<string, unknown> }>`select payload from outbox_events
      where type = 'payment.failed' and payload->>'paymentId' = ${payment.id}`.execute(t.db);
    expect(told.rows.map((row) => row.payload)).toEqual([
      expect.objectContaining({ kind: 'withdrawal', failureCode: 'payout_failed', parked: true }),
    ]);
    // Applied, so nothing queues it again; applying again changes nothing.
    expect(
      (await unappliedProviderEvents(t.db, new Date(Date.now() + 3_600_000), 100)).map((e) => e.id),
    ).not.toContain(returned.id);
    expect(await applyReceivedProviderEvent(t.deps, returned.id)).toBe('duplicate');

    const reconciler = startPaymentReconciler({
      db: t.db,
      provider: { resendOutcome: async () => undefined },
      timers: systemTimers,
      log: logs.log,
      afterMs: 1,
      payoutReturnWindowMs: 0,
    });
    try {
      // Still no room: stays parked.
      expect((await reconciler.runOnce()).parkedPosted).toBe(0);
      expect((await walletBalance(t.deps, userId)).posted).toBe(MAX_AMOUNT);
      // The user sends some away: room for the returned 500.
      await transfer(t.deps, {
        opKey: `out:${randomUUID()}`,
        fromUserId: userId,
        toUserId: friend.userId as UserId,
        amount: 700n,
      });
      await sql`select pg_sleep(0.01)`.execute(t.db); // past afterMs, so the hold is looked at again
      expect((await reconciler.runOnce()).parkedPosted).toBe(1);
      expect((await walletBalance(t.deps, userId)).posted).toBe(MAX_AMOUNT - 700n + 500n);
      const settled = await findPayment(t.db, payment.id);
      expect(settled?.reversalTransactionId).not.toBeNull();
      // Once only.
      await sql`select pg_sleep(0.01)`.execute(t.db);
      expect((await reconciler.runOnce()).parkedPosted).toBe(0);
      expect((await walletBalance(t.deps, userId)).posted).toBe(MAX_AMOUNT - 200n);
      expect((await auditLedger(t.db)).findings).toEqual([]);
    } finally {
      await reconciler.stop();
    }
  }, 60_000);

  it('a charged top-up whose wallet filled up meanwhile succeeds, parked, and is credited once there is room', async () => {
    const user = await insertActor(t.db, 'charged');
    const rich = await insertActor(t.db, 'rich');
    const userId = user.userId as UserId;
    const payment = await runLedgerTransaction(t.deps, (trx) =>
      requestTopUpIn(trx, t.deps, { userId, amount: 300n, card: '4242424242424242' }),
    );
    // After the start, a transfer fills the wallet to the limit.
    await topUp(t.deps, { opKey: `rich:${randomUUID()}`, userId: rich.userId as UserId, amount: MAX_AMOUNT });
    await transfer(t.deps, {
      opKey: `fill:${randomUUID()}`,
      fromUserId: rich.userId as UserId,
      toUserId: userId,
      amount: MAX_AMOUNT,
    });
    const charged: ProviderEvent = {
      id: `evt_charge_${randomUUID()}`,
      type: 'charge.succeeded',
      createdAt: Math.floor(Date.now() / 1000),
      data: { paymentId: payment.id, providerRef: 'ch_review17', amount: 300, currency: 'USD' },
    };
    expect(await receiveAndApply(charged)).toBe('applied');
    expect(await findPayment(t.db, payment.id)).toMatchObject({ status: 'succeeded', transactionId: null });
    expect((await walletBalance(t.deps, userId)).posted).toBe(MAX_AMOUNT);
    expect((await auditLedger(t.db)).findings).toEqual([]);

    const reconciler = startPaymentReconciler({
      db: t.db,
      provider: { resendOutcome: async () => undefined },
      timers: systemTimers,
      log: logs.log,
      afterMs: 1,
      payoutReturnWindowMs: 0,
    });
    try {
      expect((await reconciler.runOnce()).parkedPosted).toBe(0);
      await transfer(t.deps, {
        opKey: `back:${randomUUID()}`,
        fromUserId: userId,
        toUserId: rich.userId as UserId,
        amount: 1_000n,
      });
      await sql`select pg_sleep(0.01)`.execute(t.db);
      expect((await reconciler.runOnce()).parkedPosted).toBe(1);
      expect((await walletBalance(t.deps, userId)).posted).toBe(MAX_AMOUNT - 1_000n + 300n);
      expect((await findPayment(t.db, payment.id))?.transactionId).not.toBeNull();
      expect((await auditLedger(t.db)).findings).toEqual([]);
    } finally {
      await reconciler.stop();
    }
  }, 60_000);
});
