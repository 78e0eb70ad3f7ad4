/**
 * Money review 22: a withdrawal reserves its amount at once (its wallet push says so); when the
 * provider declines the payout outright (`submitPayment` → `declined`), the reservation is voided
 * and the money is spendable again — but the `payments.submit` task told nobody, so the user's
 * sockets kept showing the amount as reserved (PROTOCOL.md `wallet`: pushed after every change, a
 * withdrawal settled too). Now the task announces the owner's wallet change, as the apply-event task
 * does for a payout settled by webhook. Real PostgreSQL; the provider (an outside party) declines.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestTopUpIn, requestWithdrawalIn } from '../../src/domain/payments/payments.js';
import type { PaymentProvider } from '../../src/domain/payments/provider.js';
import { topUp, walletBalance } from '../../src/domain/payments/wallet.js';
import { submitPaymentTask } from '../../src/workers/payments/processor.js';
import { captureLogs } from '../support/context.js';
import { insertActor, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';

let t: PaymentsTestDb;

beforeAll(async () => {
  t = await openPaymentsTestDb();
});

afterAll(async () => {
  await t?.close();
});

const declining: PaymentProvider = {
  charge: async () => ({ accepted: false, failureCode: 'card_declined' }),
  payout: async () => ({ accepted: false, failureCode: 'payout_failed' }),
  resendOutcome: async () => undefined,
};

describe('a payout the provider declines at once', () => {
  it("gives the reservation back and pushes the owner's new balance", async () => {
    const { userId } = await insertActor(t.db, 'review22payout');
    await topUp(t.deps, { opKey: `seed:${randomUUID()}`, userId, amount: 5_000n });
    const payment = await t.db
      .transaction()
      .execute((trx) =>
        requestWithdrawalIn(trx, t.deps, { userId, amount: 2_000n, bankAccount: 'DE89370400' }),
      );
    expect(await walletBalance(t.deps, userId)).toMatchObject({ available: 3_000n, pending: 2_000n });

    const announced: string[][] = [];
    await submitPaymentTask(
      {
        payments: t.deps,
        provider: declining,
        log: captureLogs().log,
        announce: (userIds) => void announced.push([...userIds]),
      },
      { paymentId: payment.id },
      1,
    );

    expect(await walletBalance(t.deps, userId)).toMatchObject({ available: 5_000n, pending: 0n });
    expect(announced).toEqual([[userId]]);
  });

  it('announces nothing for a declined top-up (no balance changed)', async () => {
    const { userId } = await insertActor(t.db, 'review22charge');
    const payment = await t.db
      .transaction()
      .execute((trx) => requestTopUpIn(trx, t.deps, { userId, amount: 700n, card: '4000000000000002' }));
    const announced: string[][] = [];
    await submitPaymentTask(
      {
        payments: t.deps,
        provider: declining,
        log: captureLogs().log,
        announce: (userIds) => void announced.push([...userIds]),
      },
      { paymentId: payment.id },
      1,
    );
    expect(announced).toEqual([]);
  });
});
