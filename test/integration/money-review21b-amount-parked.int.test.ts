/**
 * Money review 21b, on real PostgreSQL through the domain:
 * - a top-up the provider reported charged in the payment's currency but for another amount was
 *   ignored: the payment stayed pending for good (the reconciler asked the provider again every
 *   pass), the money the provider took nowhere in the ledger. Now it is parked as taken (a pending
 *   hold from provider clearing to the wallet, reason `top_up_amount_parked`, never posted), the
 *   payment fails as `amount_mismatch`, the reconciler reports it, and the wallet's `parked` does not
 *   show it as coming (it is refunded to the card);
 * - a parked top-up had no way out: `voidParkedTopUpIn` (the admin action) voids its hold once,
 *   refuses a second time and any other payment, and leaves the audit clean;
 * - a withdrawal's outcome for another amount is still not applied (a payout is not posted or
 *   voided on figures that are not the payment's), but it is logged as an error, not dropped quietly.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { findPayment } from '../../src/db/repositories/payments.repo.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import { type PaymentsDeps, runLedgerTransaction } from '../../src/domain/payments/ledger.js';
import {
  applyProviderEvent,
  requestWithdrawalIn,
  voidParkedTopUpIn,
} from '../../src/domain/payments/payments.js';
import type { ProviderEvent } from '../../src/domain/payments/provider.js';
import { startPaymentReconciler } from '../../src/domain/payments/reconciler.js';
import { topUp, walletBalanceWithParked } from '../../src/domain/payments/wallet.js';
import { systemTimers } from '../../src/platform/timers.js';
import { captureLogs } from '../support/context.js';
import {
  insertActor,
  openPaymentsTestDb,
  type PaymentsTestDb,
  providerEvent,
  requestSandboxTopUp,
} from '../support/payments-db.js';

describe('a provider outcome for another amount than the payment', () => {
  let t: PaymentsTestDb;
  let deps: PaymentsDeps;
  const logs = captureLogs();

  beforeAll(async () => {
    t = await openPaymentsTestDb(4);
    deps = { ...t.deps, log: logs.log };
  });
  afterAll(async () => {
    await t?.close();
  });

  const event = (paymentId: string, type: ProviderEvent['type'], amount: number, currency = 'USD') =>
    providerEvent(paymentId, type, amount, { currency, tag: 'review21b' });
  const requestTopUp = (userId: UserId, amount = 1_000n) => requestSandboxTopUp(deps, userId, amount);
  const holdOf = async (paymentId: string) => {
    const row = await t.db
      .selectFrom('ledger_holds')
      .select(['reason', 'status', 'currency', 'amount'])
      .where('op_key', '=', `payment:amount-parked:${paymentId}`)
      .executeTakeFirst();
    return row === undefined ? undefined : { ...row, amount: String(row.amount) };
  };
  const voidParked = (paymentId: string) =>
    runLedgerTransaction(deps, (trx) => voidParkedTopUpIn(trx, deps, paymentId));

  it('parks a charged top-up of another amount for an operator, who voids it once', async () => {
    const { userId } = await insertActor(t.db, 'odd');
    const uid = userId as UserId;
    await topUp(deps, { opKey: `seed:${uid}`, userId: uid, amount: 500n, externalRef: `seed_${uid}` });
    const payment = await requestTopUp(uid);

    // Charged 1 099 cents for a top-up of 1 000.
    expect(await applyProviderEvent(deps, event(payment.id, 'charge.succeeded', 1_099))).toBe('applied');
    expect(await findPayment(t.db, payment.id)).toMatchObject({
      status: 'failed',
      failureCode: 'amount_mismatch',
      transactionId: null,
    });
    expect(await holdOf(payment.id)).toEqual({
      reason: 'top_up_amount_parked',
      status: 'pending',
      currency: 'USD',
      amount: '1099',
    });
    // Not credited, and not shown as coming: it goes back to the card.
    expect(await walletBalanceWithParked(deps, uid)).toMatchObject({ posted: 500n, parked: 0n });
    const told = await sql<{ payload: Record<string, unknown> }>`select payload from outbox_events
      where type = 'payment.failed' and payload->>'paymentId' = ${payment.id}`.execute(t.db);
    expect(told.rows.map((row) => row.payload)).toEqual([
      expect.objectContaining({ kind: 'top_up', failureCode: 'amount_mismatch', amount: 1_000 }),
    ]);
    expect((await auditLedger(t.db)).findings).toEqual([]);

    // A success of the right amount afterwards (another event id) credits nothing.
    expect(await applyProviderEvent(deps, event(payment.id, 'charge.succeeded', 1_000))).toBe(
      'ignored: already parked for its amount',
    );
    expect(await walletBalanceWithParked(deps, uid)).toMatchObject({ posted: 500n });

    // Reported by the reconciler, never posted.
    const reconcile = async () => {
      const reconciler = startPaymentReconciler({
        db: t.db,
        provider: { resendOutcome: async () => undefined },
        timers: systemTimers,
        log: logs.log,
        afterMs: 60_000,
        payoutReturnWindowMs: 0,
      });
      try {
        return await reconciler.runOnce();
      } finally {
        await reconciler.stop();
      }
    };
    expect(await reconcile()).toMatchObject({ parkedPosted: 0, currencyParked: 1 });

    // The operator refunded it at the provider: the hold is voided, once.
    expect(await voidParked(payment.id)).toMatchObject({ amount: 1_099n, currency: 'USD' });
    expect(await holdOf(payment.id)).toMatchObject({ status: 'voided' });
    await expect(voidParked(payment.id)).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'ALREADY_VOIDED' },
    });
    const wallet = await t.db
      .selectFrom('ledger_accounts')
      .select(['posted', 'pending_credits'])
      .where('kind', '=', 'wallet')
      .where('user_id', '=', uid)
      .executeTakeFirstOrThrow();
    expect({ posted: String(wallet.posted), pendingCredits: String(wallet.pending_credits) }).toEqual({
      posted: '500',
      pendingCredits: '0',
    });
    expect(await reconcile()).toMatchObject({ currencyParked: 0 });
    expect((await auditLedger(t.db)).findings).toEqual([]);

    // Nothing else can be voided this way.
    const pending = await requestTopUp(uid, 700n);
    await expect(voidParked(pending.id)).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'NOT_PARKED' },
    });
    await expect(voidParked(randomUUID())).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(voidParked('not-a-uuid')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it("logs a withdrawal's outcome of another amount as an error and leaves its reservation alone", async () => {
    const { userId } = await insertActor(t.db, 'payout');
    const uid = userId as UserId;
    await topUp(deps, { opKey: `seed:${uid}`, userId: uid, amount: 2_000n, externalRef: `seed_${uid}` });
    const withdrawal = await runLedgerTransaction(deps, (trx) =>
      requestWithdrawalIn(trx, deps, { userId: uid, amount: 1_500n, bankAccount: 'DE1234567890' }),
    );
    expect(await applyProviderEvent(deps, event(withdrawal.id, 'payout.paid', 1_400))).toBe(
      'ignored: amount or currency differs from the payment',
    );
    expect(await findPayment(t.db, withdrawal.id)).toMatchObject({ status: 'pending' });
    expect(await walletBalanceWithParked(deps, uid)).toMatchObject({ posted: 2_000n, available: 500n });
    expect(
      logs
        .lines()
        .some(
          (line) =>
            line.level === 50 &&
            line.paymentId === withdrawal.id &&
            String(line.msg).includes('another amount or currency'),
        ),
    ).toBe(true);
    // Its own outcome still settles it.
    expect(await applyProviderEvent(deps, event(withdrawal.id, 'payout.paid', 1_500))).toBe('applied');
    expect(await walletBalanceWithParked(deps, uid)).toMatchObject({ posted: 500n, available: 500n });
    expect((await auditLedger(t.db)).findings).toEqual([]);
  });
});
