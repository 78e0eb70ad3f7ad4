/**
 * The ledger on embedded PGlite (the zero-install default, PostgreSQL 18 in WASM): the triggers and
 * the payments operations behave as on PostgreSQL 15 (ledger.int.test.ts has the concurrency tests).
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, expect, it } from 'vitest';
import type { DbHandle } from '../../src/db/create-db.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import { holdEscrow, releaseEscrow } from '../../src/domain/payments/escrow.js';
import type { PaymentsDeps } from '../../src/domain/payments/ledger.js';
import {
  completeWithdrawal,
  startWithdrawal,
  topUp,
  transfer,
  walletBalance,
} from '../../src/domain/payments/wallet.js';
import { systemClock } from '../../src/platform/clock.js';
import { captureLogs, openMigratedPglite } from '../support/context.js';

let handle: DbHandle | undefined;
afterAll(async () => {
  await handle?.close();
});

it('moves money, enforces the guards and audits clean on PGlite', async () => {
  const { log } = captureLogs();
  handle = await openMigratedPglite(log);
  const db = handle.db;
  const deps: PaymentsDeps = { db, clock: systemClock, settings: { currency: 'USD', platformFeeBps: 1000 } };
  const users = await db
    .insertInto('users')
    .values(
      ['hirer', 'worker'].map((name) => ({
        username: name,
        email: `${name}@example.test`,
        password_hash: 'x',
        search_document: name,
      })),
    )
    .returning('id')
    .execute();
  const [hirer, worker] = users.map((u) => u.id);
  if (hirer === undefined || worker === undefined) throw new Error('users missing');

  await topUp(deps, { opKey: 'top-1', userId: hirer, amount: 2_000n });
  await transfer(deps, { opKey: 't-1', fromUserId: hirer, toUserId: worker, amount: 500n });
  await expect(
    transfer(deps, { opKey: 't-2', fromUserId: worker, toUserId: hirer, amount: 501n }),
  ).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS', details: { shortfall: 1 } });
  const contractId = randomUUID();
  await holdEscrow(deps, { contractId, hirerId: hirer, workerId: worker, amount: 1_000n });
  expect(await releaseEscrow(deps, contractId)).toMatchObject({ toWorker: 900n, fee: 100n });
  const { hold } = await startWithdrawal(deps, { opKey: 'w-1', userId: worker, amount: 1_400n });
  await completeWithdrawal(deps, { holdId: hold.id });

  expect(await walletBalance(deps, hirer)).toMatchObject({ posted: 500n, available: 500n });
  expect(await walletBalance(deps, worker)).toMatchObject({ posted: 0n, available: 0n });
  await expect(sql`delete from ledger_entries`.execute(db)).rejects.toMatchObject({ code: '23001' });
  const report = await auditLedger(db);
  expect(report.findings).toEqual([]);
});
