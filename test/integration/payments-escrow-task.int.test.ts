/**
 * The `payments.escrow` task (release or refund scheduled by the marketplace) run by the payments
 * worker's task function against real PostgreSQL: it moves the money once, a rerun changes nothing,
 * a task the contract's state did not decide (a refund of a completed contract, a release of one
 * still running: a task nobody's transition enqueued) fails for good and moves nothing, and an
 * unknown contract fails for good instead of retrying.
 */
import { randomUUID } from 'node:crypto';
import { UnrecoverableError } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { findEscrow } from '../../src/db/repositories/ledger.repo.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import { holdEscrow } from '../../src/domain/payments/escrow.js';
import type { PaymentsDeps } from '../../src/domain/payments/ledger.js';
import { topUp, walletBalance } from '../../src/domain/payments/wallet.js';
import { escrowTask, type PaymentsWorkerDeps } from '../../src/workers/payments/processor.js';
import { captureLogs } from '../support/context.js';
import {
  insertContract,
  insertUsers,
  openPaymentsTestDb,
  type PaymentsTestDb,
} from '../support/payments-db.js';

let testDb: PaymentsTestDb;
let payments: PaymentsDeps;
const announced: string[][] = [];
let worker: Pick<PaymentsWorkerDeps, 'payments' | 'log' | 'announce'>;

beforeAll(async () => {
  testDb = await openPaymentsTestDb(4);
  payments = testDb.deps;
  worker = { payments, log: captureLogs().log, announce: (userIds) => announced.push([...userIds]) };
});

afterAll(async () => {
  await testDb?.close();
});

async function contractWithEscrow(amount: bigint, state: string) {
  const [hirerId, workerId] = (await insertUsers(payments.db, 2, 'escrow')) as [UserId, UserId];
  await topUp(payments, { opKey: randomUUID(), userId: hirerId, amount });
  const contractId = await insertContract(payments.db, { hirerId, workerId, amount, state });
  await holdEscrow(payments, { contractId, hirerId, workerId, amount });
  return { contractId, hirerId, workerId };
}

describe('payments.escrow task', () => {
  it('releases once (fee to the platform), a rerun is a no-op, and tells both parties', async () => {
    const { contractId, hirerId, workerId } = await contractWithEscrow(1_000n, 'completed');
    await escrowTask(worker, { contractId, action: 'release' });
    await escrowTask(worker, { contractId, action: 'release' });
    expect((await walletBalance(payments, workerId)).available).toBe(900n);
    expect((await walletBalance(payments, hirerId)).available).toBe(0n);
    expect(announced).toContainEqual([hirerId, workerId]);
    expect((await auditLedger(payments.db)).findings).toEqual([]);
  });

  it('a refund task after a release fails for good without undoing it', async () => {
    const { contractId, hirerId, workerId } = await contractWithEscrow(500n, 'completed');
    await escrowTask(worker, { contractId, action: 'release' });
    await expect(escrowTask(worker, { contractId, action: 'refund' })).rejects.toBeInstanceOf(
      UnrecoverableError,
    );
    expect((await walletBalance(payments, workerId)).available).toBe(450n);
    expect((await walletBalance(payments, hirerId)).available).toBe(0n);
  });

  it("moves nothing for a task the contract's state did not decide (a release of a running contract)", async () => {
    for (const state of ['active', 'delivered', 'disputed']) {
      const { contractId, hirerId, workerId } = await contractWithEscrow(700n, state);
      for (const action of ['release', 'refund', 'split'] as const) {
        await expect(escrowTask(worker, { contractId, action }), `${state} ${action}`).rejects.toBeInstanceOf(
          UnrecoverableError,
        );
      }
      expect((await walletBalance(payments, workerId)).available).toBe(0n);
      expect((await walletBalance(payments, hirerId)).available).toBe(0n);
      expect((await walletBalance(payments, hirerId)).pending).toBe(0n);
    }
    // A cancelled contract refunds; it never releases.
    const cancelled = await contractWithEscrow(200n, 'cancelled');
    await expect(
      escrowTask(worker, { contractId: cancelled.contractId, action: 'release' }),
    ).rejects.toBeInstanceOf(UnrecoverableError);
    await escrowTask(worker, { contractId: cancelled.contractId, action: 'refund' });
    expect((await walletBalance(payments, cancelled.hirerId)).available).toBe(200n);
    expect((await auditLedger(payments.db)).findings).toEqual([]);
  });

  it('releases with the share parked when the receiving wallet is at its balance limit (review 17b)', async () => {
    const { contractId, workerId } = await contractWithEscrow(1_000n, 'completed');
    // The worker's wallet is one minor unit short of 2^53 - 1: the 900 net of fee does not fit.
    await topUp(payments, {
      opKey: randomUUID(),
      userId: workerId,
      amount: BigInt(Number.MAX_SAFE_INTEGER) - 1n,
    });
    // Parked (money-review17b-escrow-parked.int.test.ts), not refused: the contract settles.
    await escrowTask(worker, { contractId, action: 'release' });
    expect((await findEscrow(payments.db, contractId))?.status).toBe('released');
    expect((await walletBalance(payments, workerId)).posted).toBe(BigInt(Number.MAX_SAFE_INTEGER) - 1n);
    expect((await auditLedger(payments.db)).findings).toEqual([]);
  });

  it('refunds the hirer in full; an unknown contract fails for good', async () => {
    const { contractId, hirerId } = await contractWithEscrow(300n, 'cancelled');
    await escrowTask(worker, { contractId, action: 'refund' });
    expect((await walletBalance(payments, hirerId)).available).toBe(300n);
    await expect(escrowTask(worker, { contractId: randomUUID(), action: 'release' })).rejects.toBeInstanceOf(
      UnrecoverableError,
    );
    expect((await auditLedger(payments.db)).findings).toEqual([]);
  });
});
