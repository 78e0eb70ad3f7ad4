/**
 * Money review 17b: parked money, continued.
 * - An escrow payout (approve, auto-approve, dispute split) or refund to a party whose wallet is at
 *   the balance limit (2^53 − 1) failed its `payments.escrow` task for good, the escrow stayed held,
 *   and the reconciler queued the task again every PAYMENTS_RECONCILE_AFTER_S with an error each
 *   time: the contract never settled. Now the escrow is resolved and the share that does not fit is
 *   parked (kept in the escrow account under a pending hold to the wallet; the audit checks it), and
 *   the reconciler credits it once the wallet has room.
 * - Parked money was invisible: `GET /v1/wallet` now shows it as `parked`.
 * - The reconciler crediting parked money told nobody: the user's sockets now get `wallet.changed`.
 * Real PostgreSQL, the real escrow task, reconciler and wallet API.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { Wallet } from '../../protocol/src/rest/payments.js';
import { ensureAccounts, findEscrow } from '../../src/db/repositories/ledger.repo.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import { holdEscrow, refundEscrow, splitEscrow } from '../../src/domain/payments/escrow.js';
import { walletTransactions } from '../../src/domain/payments/history.js';
import { createHold, postTransaction, runLedgerTransaction } from '../../src/domain/payments/ledger.js';
import {
  applyReceivedProviderEvent,
  receiveProviderEventIn,
  requestTopUpIn,
} from '../../src/domain/payments/payments.js';
import { startPaymentReconciler } from '../../src/domain/payments/reconciler.js';
import { MAX_AMOUNT } from '../../src/domain/payments/rules.js';
import { topUp, transfer, walletBalance } from '../../src/domain/payments/wallet.js';
import { createWalletApi } from '../../src/domain/payments/wallet-service.js';
import { systemTimers } from '../../src/platform/timers.js';
import { escrowTask } from '../../src/workers/payments/processor.js';
import { captureLogs } from '../support/context.js';
import {
  insertContract,
  insertUsers,
  openPaymentsTestDb,
  type PaymentsTestDb,
} from '../support/payments-db.js';

let t: PaymentsTestDb;
const logs = captureLogs();

beforeAll(async () => {
  t = await openPaymentsTestDb(6);
});
afterAll(async () => {
  await t?.close();
});

async function contractWithEscrow(amount: bigint, state: string) {
  const [hirerId, workerId, otherId] = (await insertUsers(t.db, 3, 'parked')) as [UserId, UserId, UserId];
  await topUp(t.deps, { opKey: randomUUID(), userId: hirerId, amount });
  const contractId = await insertContract(t.db, { hirerId, workerId, amount, state });
  await holdEscrow(t.deps, { contractId, hirerId, workerId, amount });
  return { contractId, hirerId, workerId, otherId };
}

const accountOf = async (userId: UserId) => {
  const row = await t.db
    .selectFrom('ledger_accounts')
    .select(['posted', 'pending_credits'])
    .where('kind', '=', 'wallet')
    .where('user_id', '=', userId)
    .executeTakeFirstOrThrow();
  return { posted: BigInt(row.posted), pendingCredits: BigInt(row.pending_credits) };
};

const startReconciler = (announced: string[][]) =>
  startPaymentReconciler({
    db: t.db,
    provider: { resendOutcome: async () => undefined },
    timers: systemTimers,
    log: logs.log,
    afterMs: 1,
    payoutReturnWindowMs: 0,
    announce: (userIds) => announced.push([...userIds]),
  });

/** Past `afterMs` (1 ms), so the reconciler looks at the same parked hold again. */
const tick = () => sql`select pg_sleep(0.01)`.execute(t.db);

describe('an escrow payout to a wallet at its balance limit', () => {
  it('completes: the worker share is parked, shown as parked, credited once there is room, and the worker told', async () => {
    const { contractId, hirerId, workerId, otherId } = await contractWithEscrow(1_000n, 'completed');
    await topUp(t.deps, { opKey: randomUUID(), userId: workerId, amount: MAX_AMOUNT - 1n });
    const worker = { payments: t.deps, log: logs.log, announce: () => {} };

    // The task succeeds (before: failed for good, escrow held, queued again every pass).
    await escrowTask(worker, { contractId, action: 'release' });
    expect((await findEscrow(t.db, contractId))?.status).toBe('released');
    // Run again (a retry, the relay): nothing moves twice.
    await escrowTask(worker, { contractId, action: 'release' });
    expect(await accountOf(workerId)).toEqual({ posted: MAX_AMOUNT - 1n, pendingCredits: 900n });
    expect((await walletBalance(t.deps, hirerId)).posted).toBe(0n);
    expect((await auditLedger(t.db)).findings).toEqual([]);

    // The worker sees the money parked.
    const api = createWalletApi(t.deps);
    expect(await api.balance(workerId)).toEqual({
      currency: 'USD',
      available: Number(MAX_AMOUNT - 1n),
      pending: 0,
      posted: Number(MAX_AMOUNT - 1n),
      parked: 900,
    });

    const announced: string[][] = [];
    const reconciler = startReconciler(announced);
    try {
      expect((await reconciler.runOnce()).parkedPosted).toBe(0);
      expect(announced.flat()).not.toContain(workerId);
      await transfer(t.deps, {
        opKey: randomUUID(),
        fromUserId: workerId,
        toUserId: otherId,
        amount: 1_000n,
      });
      await tick();
      expect((await reconciler.runOnce()).parkedPosted).toBe(1);
      expect(await accountOf(workerId)).toEqual({
        posted: MAX_AMOUNT - 1n - 1_000n + 900n,
        pendingCredits: 0n,
      });
      expect(announced.flat()).toContain(workerId);
      expect((await api.balance(workerId)).parked).toBe(0);
      // The worker's history shows the release from the hirer's contract.
      const history = await walletTransactions(t.deps, workerId, { cursor: undefined, limit: 1 });
      expect(history.data[0]).toMatchObject({
        reason: 'escrow-release',
        amount: 900n,
        counterpartyId: hirerId,
      });
      await tick();
      expect((await reconciler.runOnce()).parkedPosted).toBe(0);
      expect((await auditLedger(t.db)).findings).toEqual([]);
    } finally {
      await reconciler.stop();
    }
  }, 60_000);

  it('a refund to a hirer at the limit settles the contract with the whole escrow parked', async () => {
    const { contractId, hirerId, otherId } = await contractWithEscrow(300n, 'cancelled');
    await topUp(t.deps, { opKey: randomUUID(), userId: hirerId, amount: MAX_AMOUNT });
    const worker = { payments: t.deps, log: logs.log, announce: () => {} };
    await escrowTask(worker, { contractId, action: 'refund' });
    await escrowTask(worker, { contractId, action: 'refund' });
    expect((await findEscrow(t.db, contractId))?.status).toBe('refunded');
    expect(await accountOf(hirerId)).toEqual({ posted: MAX_AMOUNT, pendingCredits: 300n });
    expect((await auditLedger(t.db)).findings).toEqual([]);

    const announced: string[][] = [];
    const reconciler = startReconciler(announced);
    try {
      await transfer(t.deps, { opKey: randomUUID(), fromUserId: hirerId, toUserId: otherId, amount: 500n });
      expect((await reconciler.runOnce()).parkedPosted).toBe(1);
      expect(await accountOf(hirerId)).toEqual({ posted: MAX_AMOUNT - 200n, pendingCredits: 0n });
      expect(announced.flat()).toContain(hirerId);
      expect((await auditLedger(t.db)).findings).toEqual([]);
    } finally {
      await reconciler.stop();
    }
  }, 60_000);
});

describe('a dispute split with the worker at the limit', () => {
  it('pays the hirer their part now and parks only the worker share', async () => {
    const { contractId, hirerId, workerId } = await contractWithEscrow(1_000n, 'resolved');
    await topUp(t.deps, { opKey: randomUUID(), userId: workerId, amount: MAX_AMOUNT });
    const split = await splitEscrow(t.deps, { contractId, toWorker: 600n, toHirer: 400n });
    expect(split).toMatchObject({ toWorker: 540n, fee: 60n, toHirer: 400n, replayed: false });
    expect((await splitEscrow(t.deps, { contractId, toWorker: 600n, toHirer: 400n })).replayed).toBe(true);
    expect(await accountOf(hirerId)).toEqual({ posted: 400n, pendingCredits: 0n });
    expect(await accountOf(workerId)).toEqual({ posted: MAX_AMOUNT, pendingCredits: 540n });
    // Another outcome after it is still refused.
    await expect(refundEscrow(t.deps, contractId)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await auditLedger(t.db)).findings).toEqual([]);
  });
});

describe('parked money from outside', () => {
  it('a charged top-up parked is shown as parked, and its crediting is pushed to the user', async () => {
    const [userId, richId] = (await insertUsers(t.db, 2, 'topup')) as [UserId, UserId];
    const payment = await runLedgerTransaction(t.deps, (trx) =>
      requestTopUpIn(trx, t.deps, { userId, amount: 300n, card: '4242424242424242' }),
    );
    await topUp(t.deps, { opKey: randomUUID(), userId: richId, amount: MAX_AMOUNT });
    await transfer(t.deps, { opKey: randomUUID(), fromUserId: richId, toUserId: userId, amount: MAX_AMOUNT });
    const id = `evt_charge_${randomUUID()}`;
    await t.db.transaction().execute((trx) =>
      receiveProviderEventIn(trx, {
        id,
        type: 'charge.succeeded',
        createdAt: Math.floor(Date.now() / 1000),
        data: { paymentId: payment.id, providerRef: 'ch_review17b', amount: 300, currency: 'USD' },
      }),
    );
    expect(await applyReceivedProviderEvent(t.deps, id)).toBe('applied');
    // GET /v1/wallet's body: the schema keeps `parked` (an unknown key would be dropped).
    const view = await createWalletApi(t.deps).balance(userId);
    expect(Wallet.parse(view)).toMatchObject({ posted: Number(MAX_AMOUNT), parked: 300 });

    const announced: string[][] = [];
    const reconciler = startReconciler(announced);
    try {
      await transfer(t.deps, { opKey: randomUUID(), fromUserId: userId, toUserId: richId, amount: 1_000n });
      expect((await reconciler.runOnce()).parkedPosted).toBe(1);
      expect(announced.flat()).toEqual([userId]);
      expect(await createWalletApi(t.deps).balance(userId)).toMatchObject({
        posted: Number(MAX_AMOUNT - 700n),
        parked: 0,
      });
    } finally {
      await reconciler.stop();
    }
  }, 60_000);
});

describe('the audit of escrow accounts (I7)', () => {
  // Last: it leaves findings in this database on purpose.
  it('still flags money left in a resolved escrow that no parked share reserves', async () => {
    const { contractId, hirerId, otherId } = await contractWithEscrow(100n, 'cancelled');
    await refundEscrow(t.deps, contractId);
    const escrow = await findEscrow(t.db, contractId);
    if (escrow === undefined) throw new Error('no escrow');
    await topUp(t.deps, { opKey: randomUUID(), userId: otherId, amount: 50n });
    const [from] = await ensureAccounts(t.db, [{ kind: 'wallet', userId: otherId, currency: 'USD' }]);
    if (from === undefined) throw new Error('no wallet');
    // Money moved into the resolved escrow's account by hand: stranded, not parked for anyone.
    await postTransaction(t.deps, {
      opKey: randomUUID(),
      kind: 'transfer',
      currency: 'USD',
      entries: [
        { accountId: from.id, amount: -50n },
        { accountId: escrow.accountId, amount: 50n },
      ],
    });
    const findings = (await auditLedger(t.db)).findings.filter((f) => f.details.contract_id === contractId);
    expect(findings.map((f) => f.invariant)).toEqual(['I7']);
    // Reserved for the hirer, but not as a parked share: still flagged.
    const [hirerWallet] = await ensureAccounts(t.db, [{ kind: 'wallet', userId: hirerId, currency: 'USD' }]);
    if (hirerWallet === undefined) throw new Error('no wallet');
    await createHold(t.deps, {
      opKey: randomUUID(),
      reason: 'withdrawal',
      debitAccountId: escrow.accountId,
      creditAccountId: hirerWallet.id,
      amount: 50n,
      currency: 'USD',
    });
    const again = (await auditLedger(t.db)).findings.filter((f) => f.details.contract_id === contractId);
    expect(again.map((f) => f.invariant)).toEqual(['I7']);
  });
});
