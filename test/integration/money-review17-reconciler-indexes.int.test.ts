/**
 * Money review 17: the payments reconciler's two contract looks (an ended contract whose escrow is
 * still held; a delivery past its auto-approve instant) read every escrow and every contract on each
 * pass, once a minute, on every worker process, for good. Migration 0021 gives each a partial index
 * matching its WHERE clause (and one to the parked returned payouts the reconciler now credits); here the planner is asked (sequential scans discouraged, as on a large
 * table) for the plans of the very queries the repositories send, and the rows they answer are
 * checked. Real PostgreSQL.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { overdueAutoApprovals } from '../../src/db/repositories/contracts.repo.js';
import { parkedCreditHolds, unsettledEscrows } from '../../src/db/repositories/ledger.repo.js';
import { holdEscrow, releaseEscrow } from '../../src/domain/payments/escrow.js';
import { topUp } from '../../src/domain/payments/wallet.js';
import { capturingDb, explain } from '../support/explain.js';
import {
  insertActor,
  insertContract,
  openPaymentsTestDb,
  type PaymentsTestDb,
} from '../support/payments-db.js';

describe('the reconciler contract queries (migration 0021)', () => {
  let t: PaymentsTestDb;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    t = await openPaymentsTestDb();
    const hirer = await insertActor(t.db, 'hirer');
    const worker = await insertActor(t.db, 'worker');
    await topUp(t.deps, { opKey: `top:${randomUUID()}`, userId: hirer.userId, amount: 10_000n });
    const contract = async (name: string, state: string, escrow: 'held' | 'released' | 'none') => {
      const id = await insertContract(t.db, {
        hirerId: hirer.userId,
        workerId: worker.userId,
        amount: 100n,
        state: 'active',
      });
      if (escrow !== 'none') {
        await holdEscrow(t.deps, {
          contractId: id,
          hirerId: hirer.userId,
          workerId: worker.userId,
          amount: 100n,
        });
      }
      if (escrow === 'released') await releaseEscrow(t.deps, id);
      await sql`update contracts set state = ${state} where id = ${id}::uuid`.execute(t.db);
      ids[name] = id;
      return id;
    };
    await contract('completedHeld', 'completed', 'held');
    await contract('completedReleased', 'completed', 'released');
    await contract('activeHeld', 'active', 'held');
    await contract('deliveredDue', 'delivered', 'held');
    await contract('deliveredLater', 'delivered', 'held');
    await sql`update contracts set updated_at = now() - interval '1 hour'`.execute(t.db);
    await sql`update contracts set auto_approve_at = now() - interval '1 hour', delivered_at = now() - interval '2 days'
      where id = ${ids.deliveredDue}::uuid`.execute(t.db);
    await sql`update contracts set auto_approve_at = now() + interval '1 day', delivered_at = now()
      where id = ${ids.deliveredLater}::uuid`.execute(t.db);
    await sql`analyze contracts`.execute(t.db);
    await sql`analyze ledger_escrows`.execute(t.db);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('unsettledEscrows reads the held escrows through their partial index and answers the ended ones', async () => {
    const capture = capturingDb(t.db);
    const rows = await unsettledEscrows(capture.db, new Date(), 100, [randomUUID()]);
    expect(rows).toEqual([{ contractId: ids.completedHeld, action: 'release' }]);
    const [query] = capture.take();
    if (query === undefined) throw new Error('no query captured');
    const plan = await explain(t.db, query, { enable_seqscan: 'off' });
    expect(plan).toContain('ledger_escrows_held_idx');
  });

  it('overdueAutoApprovals reads the delivered contracts through their partial index, in its order', async () => {
    const capture = capturingDb(t.db);
    const rows = await overdueAutoApprovals(capture.db, new Date(), 100, [randomUUID()]);
    expect(rows.map((row) => row.contractId)).toEqual([ids.deliveredDue]);
    const [query] = capture.take();
    if (query === undefined) throw new Error('no query captured');
    const plan = await explain(t.db, query, { enable_seqscan: 'off' });
    expect(plan).toContain('contracts_delivered_auto_approve_idx');
    // The index gives the query's order: no sort step on top of it.
    expect(plan).not.toMatch(/Sort/);
  });

  it('parkedCreditHolds reads the parked credits through their partial index', async () => {
    const capture = capturingDb(t.db);
    expect(await parkedCreditHolds(capture.db, 100, ['1'])).toEqual([]);
    const [query] = capture.take();
    if (query === undefined) throw new Error('no query captured');
    const plan = await explain(t.db, query, { enable_seqscan: 'off' });
    expect(plan).toContain('ledger_holds_parked_credits_idx');
  });
});
