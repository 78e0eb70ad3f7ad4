/**
 * Payments review 32, on real PostgreSQL through the domain:
 * - a withdrawal requested just before an admin locked the account (the lock waited for it) was
 *   still paid out by its submit task: a locked account moved money. A payment never handed to the
 *   provider when the lock lands is now never sent (failed `account_locked`, the reservation back in
 *   the wallet); one sent before is left to the provider (it may have paid);
 * - a paid withdrawal its bank returned read `failed` with the `settledAt` of its payout: it now
 *   reads settled at the return;
 * - the reconciler's read of unapplied provider events sent its left-out ids as one bind parameter
 *   each (PostgreSQL takes 65 535 at most); they are one text[] parameter now.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { findPayment, unappliedProviderEvents } from '../../src/db/repositories/payments.repo.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import { runLedgerTransaction } from '../../src/domain/payments/ledger.js';
import {
  applyProviderEvent,
  requestWithdrawalIn,
  submitPayment,
} from '../../src/domain/payments/payments.js';
import type { PaymentProvider } from '../../src/domain/payments/provider.js';
import { topUp, walletBalance } from '../../src/domain/payments/wallet.js';
import {
  insertActor,
  openPaymentsTestDb,
  type PaymentsTestDb,
  providerEvent,
} from '../support/payments-db.js';

let t: PaymentsTestDb;
beforeAll(async () => {
  t = await openPaymentsTestDb(4);
});
afterAll(async () => {
  await t?.close();
});

/** A funded user with a withdrawal of 400 requested (reserved), as the REST route does. */
async function withdrawalOfNewUser(prefix: string) {
  const userId = (await insertActor(t.db, prefix)).userId as UserId;
  await topUp(t.deps, { opKey: `fund:${randomUUID()}`, userId, amount: 1_000n });
  const payment = await runLedgerTransaction(t.deps, (trx) =>
    requestWithdrawalIn(trx, t.deps, { userId, amount: 400n, bankAccount: 'NL00BANK1234' }),
  );
  return { userId, payment };
}

const lockAccount = (userId: UserId) =>
  t.db.updateTable('users').set({ locked_at: new Date() }).where('id', '=', userId).execute();

/** A provider that records the payouts it is asked for; `down` makes every call fail. */
function recordingProvider(options: { down?: boolean } = {}) {
  const payouts: string[] = [];
  const provider: PaymentProvider = {
    resendOutcome: async () => undefined,
    charge: async () => {
      throw new Error('no charge expected');
    },
    payout: async (request) => {
      payouts.push(request.paymentId);
      if (options.down === true) throw new Error('provider unreachable');
      return { accepted: true, providerRef: `po_${request.paymentId}` };
    },
  };
  return { provider, payouts };
}

it('never sends a withdrawal whose account was locked before it was sent; its money is back in the wallet', async () => {
  const { userId, payment } = await withdrawalOfNewUser('review32locked');
  expect((await walletBalance(t.deps, userId)).available).toBe(600n);
  await lockAccount(userId);

  const { provider, payouts } = recordingProvider();
  expect(await submitPayment(t.deps, provider, payment.id)).toBe('declined');
  expect(payouts).toEqual([]);
  expect(await findPayment(t.db, payment.id)).toMatchObject({
    status: 'failed',
    failureCode: 'account_locked',
  });
  expect(await walletBalance(t.deps, userId)).toMatchObject({ available: 1_000n, pending: 0n });
  // Its task run again (or queued again by the reconciler) sends nothing either.
  expect(await submitPayment(t.deps, provider, payment.id)).toBe('already-done');
  expect(payouts).toEqual([]);
  expect((await auditLedger(t.db)).findings).toEqual([]);
});

it('leaves a withdrawal sent before the lock to the provider, which may have paid it', async () => {
  const { userId, payment } = await withdrawalOfNewUser('review32sent');
  // The first call's outcome is unknown (it may have gone through), then the account is locked.
  const down = recordingProvider({ down: true });
  await expect(submitPayment(t.deps, down.provider, payment.id)).rejects.toThrow('provider unreachable');
  await lockAccount(userId);

  const up = recordingProvider();
  expect(await submitPayment(t.deps, up.provider, payment.id)).toBe('submitted');
  expect(up.payouts).toEqual([payment.id]);
  expect(await findPayment(t.db, payment.id)).toMatchObject({ status: 'pending', failureCode: null });
  expect((await walletBalance(t.deps, userId)).pending).toBe(400n);
});

it('reads a returned payout as failed at the return, not at its payout', async () => {
  const { payment } = await withdrawalOfNewUser('review32return');
  const at = (iso: string) => ({ ...t.deps, clock: { now: () => new Date(iso) } });
  const paid = providerEvent(payment.id, 'payout.paid', 400, { tag: 'review32' });
  expect(await applyProviderEvent(at('2026-12-01T10:00:00Z'), paid)).toBe('applied');
  expect((await findPayment(t.db, payment.id))?.settledAt).toEqual(new Date('2026-12-01T10:00:00Z'));
  const returned = providerEvent(payment.id, 'payout.failed', 400, { tag: 'review32' });
  expect(await applyProviderEvent(at('2026-12-03T09:00:00Z'), returned)).toBe('applied');
  expect(await findPayment(t.db, payment.id)).toMatchObject({
    status: 'failed',
    failureCode: 'payout_failed',
    settledAt: new Date('2026-12-03T09:00:00Z'),
  });
});

it('leaves out 70 000 provider events in one read of the unapplied ones', async () => {
  const exceptIds = Array.from({ length: 70_000 }, (_, i) => `evt_review32_${i}`);
  await expect(unappliedProviderEvents(t.db, new Date(), 10, exceptIds)).resolves.toEqual(expect.any(Array));
});
