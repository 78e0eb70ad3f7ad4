/**
 * Money review 21: a top-up was credited in the process's configured CURRENCY whatever currency the
 * provider took the money in. A payment made while CURRENCY was EUR and settled after it became USD
 * credited the USD wallet 1:1; a charge the provider reported in another currency than the payment's
 * was dropped as "ignored" with the payment pending for good (the money taken, nowhere in the
 * ledger, the provider asked again every pass). Now neither is credited: the money is parked in the
 * ledger in the currency received (a pending hold from that currency's provider clearing to the
 * user's wallet of it, reason `top_up_currency_parked`, which the reconciler never posts), the
 * payment fails as `currency_mismatch`, and the reconciler reports it every pass for an operator.
 * Real PostgreSQL, the real receive/apply path and reconciler.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { findPayment } from '../../src/db/repositories/payments.repo.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import { type PaymentsDeps, runLedgerTransaction } from '../../src/domain/payments/ledger.js';
import {
  applyReceivedProviderEvent,
  receiveProviderEventIn,
  requestTopUpIn,
} from '../../src/domain/payments/payments.js';
import type { ProviderEvent } from '../../src/domain/payments/provider.js';
import { startPaymentReconciler } from '../../src/domain/payments/reconciler.js';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { systemTimers } from '../../src/platform/timers.js';
import { captureLogs } from '../support/context.js';
import { insertActor, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';

describe('a top-up charged in another currency than the wallet', () => {
  let t: PaymentsTestDb;
  const logs = captureLogs();

  beforeAll(async () => {
    t = await openPaymentsTestDb();
  });
  afterAll(async () => {
    await t?.close();
  });

  const withCurrency = (currency: string): PaymentsDeps => ({
    ...t.deps,
    settings: { ...t.deps.settings, currency },
    log: logs.log,
  });
  const charged = (paymentId: string, currency: string, amount = 1_000): ProviderEvent => ({
    id: `evt_review21_${randomUUID()}`,
    type: 'charge.succeeded',
    createdAt: Math.floor(Date.now() / 1000),
    data: { paymentId, providerRef: 'ch_review21', amount, currency },
  });
  /** The webhook's path: recorded, then applied by the payments task of a `processCurrency` process. */
  const receiveAndApply = async (event: ProviderEvent, processCurrency: string) => {
    await t.db.transaction().execute((trx) => receiveProviderEventIn(trx, event));
    return applyReceivedProviderEvent(withCurrency(processCurrency), event.id);
  };
  const requestTopUp = (userId: UserId, currency: string) =>
    runLedgerTransaction(t.deps, (trx) =>
      requestTopUpIn(trx, withCurrency(currency), { userId, amount: 1_000n, card: SandboxCard.SUCCEEDS }),
    );
  /** Every account of the user: currency, posted, pending credits. */
  const walletsOf = async (userId: UserId) =>
    (
      await sql<{ currency: string; posted: string; pending_credits: string }>`
        select currency, posted::text, pending_credits::text from ledger_accounts
        where kind = 'wallet' and user_id = ${userId} order by currency`.execute(t.db)
    ).rows;

  it('is never credited as the wallet currency: parked in the currency received, the payment failed, reported', async () => {
    // Made while CURRENCY was EUR; its success applied after CURRENCY became USD.
    const euro = (await insertActor(t.db, 'euro')).userId as UserId;
    const eurPayment = await requestTopUp(euro, 'EUR');
    expect(eurPayment.currency).toBe('EUR');
    expect(await receiveAndApply(charged(eurPayment.id, 'EUR'), 'USD')).toBe('applied');
    // Reported taken in GBP (1 000 USD cents converted: 790 pence) for a USD payment, CURRENCY USD.
    const pound = (await insertActor(t.db, 'pound')).userId as UserId;
    const usdPayment = await requestTopUp(pound, 'USD');
    expect(await receiveAndApply(charged(usdPayment.id, 'GBP', 790), 'USD')).toBe('applied');
    // Another amount in the payment's own currency: money-review21b-amount-parked.int.test.ts.

    for (const [payment, userId, currency, amount] of [
      [eurPayment, euro, 'EUR', '1000'],
      [usdPayment, pound, 'GBP', '790'],
    ] as const) {
      expect(await findPayment(t.db, payment.id)).toMatchObject({
        status: 'failed',
        failureCode: 'currency_mismatch',
        transactionId: null,
      });
      // Nothing posted to any wallet; the money waits in the currency received.
      const wallets = await walletsOf(userId);
      expect(wallets.map((wallet) => wallet.posted)).toEqual(wallets.map(() => '0'));
      expect(wallets).toContainEqual({ currency, posted: '0', pending_credits: amount });
      const hold = await t.db
        .selectFrom('ledger_holds')
        .select(['reason', 'status', 'currency', 'amount'])
        .where('op_key', '=', `payment:currency-parked:${payment.id}`)
        .executeTakeFirstOrThrow();
      expect({ ...hold, amount: String(hold.amount) }).toEqual({
        reason: 'top_up_currency_parked',
        status: 'pending',
        currency,
        amount,
      });
      const told = await sql<{ payload: Record<string, unknown> }>`select payload from outbox_events
        where type = 'payment.failed' and payload->>'paymentId' = ${payment.id}`.execute(t.db);
      expect(told.rows.map((row) => row.payload)).toEqual([
        expect.objectContaining({ kind: 'top_up', failureCode: 'currency_mismatch' }),
      ]);
    }
    expect((await auditLedger(t.db)).findings).toEqual([]);

    // Another success for it (a new event id) does not credit or park it again.
    expect(await receiveAndApply(charged(eurPayment.id, 'EUR'), 'USD')).toBe(
      'ignored: already parked for its currency',
    );

    // The reconciler never posts it (that would credit a currency the wallet is not in); it reports it.
    const reconciler = startPaymentReconciler({
      db: t.db,
      provider: { resendOutcome: async () => undefined },
      timers: systemTimers,
      log: logs.log,
      afterMs: 60_000,
      payoutReturnWindowMs: 0,
    });
    try {
      const run = await reconciler.runOnce();
      expect(run).toMatchObject({ parkedPosted: 0, currencyParked: 2, asked: 0 });
    } finally {
      await reconciler.stop();
    }
    expect(await walletsOf(euro)).toEqual([{ currency: 'EUR', posted: '0', pending_credits: '1000' }]);
    expect(logs.lines().some((line) => String(line.msg).includes('another currency than the wallet'))).toBe(
      true,
    );
  });
});
