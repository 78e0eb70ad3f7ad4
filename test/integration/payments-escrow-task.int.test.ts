/**
 * The `payments.escrow` task (release or refund scheduled by the marketplace) run by the payments
 * worker's task function against real PostgreSQL: it moves the money once, a rerun changes nothing,
 * a task that finds the contract settled the other way ends without undoing it, and an unknown
 * escrow fails for good instead of retrying.
 */
import { randomUUID } from 'node:crypto';
import { UnrecoverableError } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import { holdEscrow } from '../../src/domain/payments/escrow.js';
import type { PaymentsDeps } from '../../src/domain/payments/ledger.js';
import { topUp, walletBalance } from '../../src/domain/payments/wallet.js';
import { escrowTask, type PaymentsWorkerDeps } from '../../src/workers/payments/processor.js';
import { captureLogs } from '../support/context.js';
import { insertUsers, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';

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

async function contractWithEscrow(amount: bigint) {
  const [hirerId, workerId] = (await insertUsers(payments.db, 2, 'escrow')) as [UserId, UserId];
  await topUp(payments, { opKey: randomUUID(), userId: hirerId, amount });
  const contractId = randomUUID();
  await holdEscrow(payments, { contractId, hirerId, workerId, amount });
  return { contractId, hirerId, workerId };
}

describe('payments.escrow task', () => {
  it('releases once (fee to the platform), a rerun is a no-op, and tells both parties', async () => {
    const { contractId, hirerId, workerId } = await contractWithEscrow(1_000n);
    await escrowTask(worker, { contractId, action: 'release' });
    await escrowTask(worker, { contractId, action: 'release' });
    expect((await walletBalance(payments, workerId)).available).toBe(900n);
    expect((await walletBalance(payments, hirerId)).available).toBe(0n);
    expect(announced).toContainEqual([hirerId, workerId]);
    expect((await auditLedger(payments.db)).findings).toEqual([]);
  });

  it('a refund task after a release ends without undoing it', async () => {
    const { contractId, hirerId, workerId } = await contractWithEscrow(500n);
    await escrowTask(worker, { contractId, action: 'release' });
    await expect(escrowTask(worker, { contractId, action: 'refund' })).resolves.toBeUndefined();
    expect((await walletBalance(payments, workerId)).available).toBe(450n);
    expect((await walletBalance(payments, hirerId)).available).toBe(0n);
  });

  it('refunds the hirer in full; an unknown contract fails for good', async () => {
    const { contractId, hirerId } = await contractWithEscrow(300n);
    await escrowTask(worker, { contractId, action: 'refund' });
    expect((await walletBalance(payments, hirerId)).available).toBe(300n);
    await expect(escrowTask(worker, { contractId: randomUUID(), action: 'release' })).rejects.toBeInstanceOf(
      UnrecoverableError,
    );
    expect((await auditLedger(payments.db)).findings).toEqual([]);
  });
});
