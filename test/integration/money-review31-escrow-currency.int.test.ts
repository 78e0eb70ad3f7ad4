/**
 * Money review 31, on real PostgreSQL through the domain: a bid accepted on a job priced in another
 * currency than the platform's (CURRENCY changed since the job was posted, or an api process
 * configured apart) was held in escrow as the same number in the platform's currency — a silent
 * 1:1 conversion: the contract said 5 000 EUR, the hirer's USD wallet paid 5 000 USD. Now the accept
 * is refused 409 CONFLICT `reason: CURRENCY_MISMATCH` and nothing is held or started.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CategoryId } from '../../protocol/src/ids.js';
import { findCategoryBySlug } from '../../src/db/repositories/jobs.repo.js';
import { placeBid } from '../../src/domain/marketplace/bids.js';
import { acceptBid, type ContractDeps } from '../../src/domain/marketplace/contracts.js';
import { createJob } from '../../src/domain/marketplace/jobs.js';
import { topUp, walletBalance } from '../../src/domain/payments/wallet.js';
import { insertActor, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';

describe('accepting a bid on a job priced in another currency than the platform', () => {
  let t: PaymentsTestDb;
  let design: CategoryId;
  const contractDeps = (currency: string): ContractDeps => ({
    db: t.db,
    clock: t.deps.clock,
    settings: { currency, platformFeeBps: 1000, autoApproveMs: 3_600_000, reviewWindowMs: 7_200_000 },
  });

  beforeAll(async () => {
    t = await openPaymentsTestDb(4);
    design = (await findCategoryBySlug(t.db, 'design'))?.id as CategoryId;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('is refused 409 CURRENCY_MISMATCH: no escrow, no contract, the wallet untouched', async () => {
    const hirer = await insertActor(t.db, 'cur31_h', 'hirer');
    const worker = await insertActor(t.db, 'cur31_w', 'worker');
    await topUp(t.deps, { opKey: `seed:${hirer.userId}`, userId: hirer.userId, amount: 10_000n });
    // Posted while the platform priced in EUR.
    const job = await createJob(contractDeps('EUR'), hirer, {
      categoryId: design,
      title: 'Logo',
      description: 'A logo.',
      skills: ['design'],
      budget: { kind: 'fixed', amount: 5_000n, currency: 'EUR' },
      location: null,
      remote: true,
      deadline: null,
    });
    const bid = await placeBid(contractDeps('EUR'), worker, job.id, {
      amount: 5_000n,
      deliveryDays: 2,
      coverLetter: 'yes',
    });

    // Accepted now that wallets and escrow hold USD.
    await expect(acceptBid(contractDeps('USD'), hirer, bid.id, bid.version)).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'CURRENCY_MISMATCH', currency: 'EUR', platformCurrency: 'USD' },
    });
    expect(await walletBalance(t.deps, hirer.userId)).toMatchObject({ available: 10_000n, posted: 10_000n });
    const escrows = await t.db.selectFrom('ledger_escrows').select('contract_id').execute();
    expect(escrows).toEqual([]);
    const contracts = await t.db.selectFrom('contracts').select('id').where('job_id', '=', job.id).execute();
    expect(contracts).toEqual([]);
  });
});
