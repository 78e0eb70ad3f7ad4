/**
 * Money review 22b, on real PostgreSQL through the domain: a top-up whose `charge.failed` named
 * another amount or currency than the payment's was ignored, so it stayed pending for good (the
 * reconciler asked the provider again every pass and got the same event back) and kept counting as
 * coming against the balance limit. A failed charge moves no money: the pending top-up now fails
 * whatever figures its failure names, nothing moves, and a success that still arrives later is
 * handled as after any failure (credited once; parked for an operator when its own figures differ).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { findPayment, pendingTopUpTotal } from '../../src/db/repositories/payments.repo.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import type { PaymentsDeps } from '../../src/domain/payments/ledger.js';
import { applyProviderEvent } from '../../src/domain/payments/payments.js';
import type { ProviderEvent } from '../../src/domain/payments/provider.js';
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

describe("a top-up's failure for another amount or currency than the payment", () => {
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

  const event = (
    paymentId: string,
    type: ProviderEvent['type'],
    amount: number,
    currency = 'USD',
    failureCode?: 'card_declined' | 'insufficient_funds',
  ) => providerEvent(paymentId, type, amount, { currency, failureCode, tag: 'review22b' });
  const requestTopUp = (userId: UserId, amount: bigint) => requestSandboxTopUp(deps, userId, amount);
  const newUser = async (seed: bigint) => {
    const { userId } = await insertActor(t.db, 'fail22b');
    const uid = userId as UserId;
    await topUp(deps, { opKey: `seed:${uid}`, userId: uid, amount: seed, externalRef: `seed_${uid}` });
    return uid;
  };

  it('fails the pending top-up (no money moves) and frees its room under the balance limit', async () => {
    const uid = await newUser(MAX_AMOUNT - 2_000n);
    const payment = await requestTopUp(uid, 1_000n);
    // Balance + pending top-up + 1 500 would pass the limit.
    await expect(requestTopUp(uid, 1_500n)).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'BALANCE_LIMIT' },
    });

    const failed = event(payment.id, 'charge.failed', 999, 'USD', 'insufficient_funds');
    expect(await applyProviderEvent(deps, failed)).toBe('applied');
    expect(await applyProviderEvent(deps, failed)).toBe('duplicate');
    expect(await findPayment(t.db, payment.id)).toMatchObject({
      status: 'failed',
      failureCode: 'insufficient_funds',
      transactionId: null,
    });
    expect(await pendingTopUpTotal(t.db, uid, 'USD')).toBe(0n);
    expect(await walletBalanceWithParked(deps, uid)).toMatchObject({
      posted: MAX_AMOUNT - 2_000n,
      parked: 0n,
    });
    // The room it held is free again.
    expect(await requestTopUp(uid, 1_500n)).toMatchObject({ status: 'pending' });
    expect(
      logs.lines().some((line) => line.level === 40 && line.paymentId === payment.id && line.amount === 999),
    ).toBe(true);
    expect((await auditLedger(t.db)).findings).toEqual([]);
  });

  it('a failure in another currency fails it too; a later success of its figures is credited once', async () => {
    const uid = await newUser(500n);
    const payment = await requestTopUp(uid, 1_000n);
    expect(await applyProviderEvent(deps, event(payment.id, 'charge.failed', 1_000, 'EUR'))).toBe('applied');
    expect(await findPayment(t.db, payment.id)).toMatchObject({
      status: 'failed',
      failureCode: 'card_declined',
    });

    // The provider took the money after all: honoured as after any failure, once.
    const succeeded = event(payment.id, 'charge.succeeded', 1_000);
    expect(await applyProviderEvent(deps, succeeded)).toBe('applied');
    expect(await applyProviderEvent(deps, succeeded)).toBe('duplicate');
    expect(await applyProviderEvent(deps, event(payment.id, 'charge.succeeded', 1_000))).toBe(
      'ignored: already succeeded',
    );
    expect(await applyProviderEvent(deps, event(payment.id, 'charge.failed', 7))).toMatch(/^ignored/);
    expect(await findPayment(t.db, payment.id)).toMatchObject({ status: 'succeeded', failureCode: null });
    expect(await walletBalanceWithParked(deps, uid)).toMatchObject({ posted: 1_500n, parked: 0n });
    expect((await auditLedger(t.db)).findings).toEqual([]);
  });

  it('a later success of another amount is parked for an operator, never credited', async () => {
    const uid = await newUser(500n);
    const payment = await requestTopUp(uid, 1_000n);
    expect(await applyProviderEvent(deps, event(payment.id, 'charge.failed', 1_001))).toBe('applied');
    expect(await applyProviderEvent(deps, event(payment.id, 'charge.succeeded', 1_001))).toBe('applied');
    expect(await findPayment(t.db, payment.id)).toMatchObject({
      status: 'failed',
      failureCode: 'amount_mismatch',
      transactionId: null,
    });
    expect(await walletBalanceWithParked(deps, uid)).toMatchObject({ posted: 500n, parked: 0n });
    expect((await auditLedger(t.db)).findings).toEqual([]);
  });
});
