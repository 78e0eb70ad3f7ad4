/**
 * Money review 22b, on real PostgreSQL through the domain: the balance limit at a top-up's start
 * counted the wallet's pending credits, meant as money parked for want of room (the user's already),
 * but a top-up parked for an operator (`amount_mismatch`, `currency_mismatch`: refunded to the card,
 * not shown as the wallet's `parked`) is a pending credit of the wallet too. Such a top-up refused
 * the user's next top-ups, with nothing they could see explaining it, until an operator voided it.
 * It no longer counts; money parked for want of room and top-ups still pending still do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { ensureAccounts, insertTransaction } from '../../src/db/repositories/ledger.repo.js';
import { findPayment, pendingTopUpTotal } from '../../src/db/repositories/payments.repo.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import { type PaymentsDeps, runLedgerTransaction } from '../../src/domain/payments/ledger.js';
import { applyProviderEvent } from '../../src/domain/payments/payments.js';
import { MAX_AMOUNT } from '../../src/domain/payments/rules.js';
import { topUp, walletBalanceWithParked } from '../../src/domain/payments/wallet.js';
import { captureLogs } from '../support/context.js';
import {
  insertActor,
  openPaymentsTestDb,
  type PaymentsTestDb,
  providerEvent,
  requestSandboxTopUp,
} from '../support/payments-db.js';

describe('the top-up balance limit and money parked for an operator', () => {
  let t: PaymentsTestDb;
  let deps: PaymentsDeps;

  beforeAll(async () => {
    t = await openPaymentsTestDb(4);
    deps = { ...t.deps, log: captureLogs().log };
  });
  afterAll(async () => {
    await t?.close();
  });

  const succeeded = (paymentId: string, amount: number) =>
    providerEvent(paymentId, 'charge.succeeded', amount, { tag: 'review22b' });
  const requestTopUp = (userId: UserId, amount: bigint) => requestSandboxTopUp(deps, userId, amount);

  it('does not count a top-up parked for its amount against the next top-up', async () => {
    const { userId } = await insertActor(t.db, 'cap22b');
    const uid = userId as UserId;
    await topUp(deps, {
      opKey: `seed:${uid}`,
      userId: uid,
      amount: MAX_AMOUNT - 2_000n,
      externalRef: `s_${uid}`,
    });

    // Charged 1 001 for a top-up of 1 000: parked for an operator, to be refunded to the card.
    const odd = await requestTopUp(uid, 1_000n);
    expect(await applyProviderEvent(deps, succeeded(odd.id, 1_001))).toBe('applied');
    expect(await findPayment(t.db, odd.id)).toMatchObject({
      status: 'failed',
      failureCode: 'amount_mismatch',
    });
    expect(await walletBalanceWithParked(deps, uid)).toMatchObject({
      posted: MAX_AMOUNT - 2_000n,
      parked: 0n,
    });

    // The user's balance plus this top-up fits: accepted.
    expect(await requestTopUp(uid, 1_500n)).toMatchObject({ status: 'pending' });
    // The top-up still pending counts: one more that would pass the limit with it is refused.
    await expect(requestTopUp(uid, 600n)).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'BALANCE_LIMIT', pendingTopUps: 1_500 },
    });
    expect((await auditLedger(t.db)).findings).toEqual([]);
  });

  // Review 30: each wallet is capped, but the money inside the platform was not, and provider
  // clearing (−money inside) is a bigint: with the sandbox's free money 1 024 accounts topped up to
  // their cap took it past −2^63, and every user's top-up after that was charged and never credited
  // (its credit failing with `bigint out of range` on every pass). Now a top-up's start refuses it.
  it('refuses a top-up that would take the money inside the platform past what its books count', async () => {
    const { userId } = await insertActor(t.db, 'plat30');
    const uid = userId as UserId;
    const [clearing, fees] = await ensureAccounts(t.db, [
      { kind: 'provider_clearing', currency: 'USD' },
      { kind: 'platform_fees', currency: 'USD' },
    ]);
    if (clearing === undefined || fees === undefined) throw new Error('accounts missing');
    // What ~1 000 wallets at their cap hold, as one posting to the (uncapped) fee account.
    const move = (opKey: string, amount: bigint) =>
      runLedgerTransaction(deps, (trx) =>
        insertTransaction(trx, {
          opKey,
          kind: 'top_up',
          currency: 'USD',
          entries: [
            { accountId: clearing.id, amount: -amount },
            { accountId: fees.id, amount },
          ],
        }),
      );
    const inside = 2n ** 63n - 2n ** 52n;
    await move('review30:in', inside + clearing.posted);

    await expect(requestTopUp(uid, MAX_AMOUNT)).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'PLATFORM_LIMIT', currency: 'USD' },
    });
    expect(await pendingTopUpTotal(t.db, uid, 'USD')).toBe(0n);

    // Once the money is out again, top-ups are taken and credited.
    await move('review30:out', -(inside - 2n ** 60n));
    const payment = await requestTopUp(uid, MAX_AMOUNT);
    expect(await applyProviderEvent(deps, succeeded(payment.id, Number(MAX_AMOUNT)))).toBe('applied');
    expect(await walletBalanceWithParked(deps, uid)).toMatchObject({ posted: MAX_AMOUNT });
    expect((await auditLedger(t.db)).findings).toEqual([]);
  });
});
