/**
 * Money review 25, on real PostgreSQL through the domain:
 * - `GET /v1/wallet` (and the `wallet` push) computes `parked` as the wallet's pending
 * credits minus those parked for an operator (a top-up charged for another amount or currency, to be
 * refunded). The two were read by separate statements: a top-up parked for an operator between them
 * was subtracted without having been counted, `parked` came out negative, and the answer failed its
 * own schema (`parked ≥ 0`): a 500. Now both are read in one snapshot. The second parking is
 * committed by another connection exactly between the wallet's reads (a Kysely plugin on the reading
 * handle only times it);
 * - the platform's fee account was capped at 2^53 − 1 like a wallet, though never shown nor spent:
 *   once full, every release or split with a fee was refused (BALANCE_LIMIT, the escrow task failed
 *   for good, the escrow held and the worker unpaid, for every contract). With the sandbox's free
 *   money, eleven escrows of 2^53 − 1 released at the default 10 % fee filled it. Now it is not capped;
 * - the audit's I3 ("no account but provider clearing below 0") trusted each row's `allow_negative`
 * flag: a wallet whose flag was set (by hand, or by a bug) passed the funds check, was overdrawn by
 * a transfer, and the audit stayed clean. Now I3 goes by the account's kind and reports the flag.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { Wallet } from '../../protocol/src/rest/payments.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import { holdEscrow, releaseEscrow } from '../../src/domain/payments/escrow.js';
import { applyProviderEvent } from '../../src/domain/payments/payments.js';
import { createPaymentsApi } from '../../src/domain/payments/payments-service.js';
import { MAX_AMOUNT } from '../../src/domain/payments/rules.js';
import { topUp, transfer } from '../../src/domain/payments/wallet.js';
import { createWalletApi } from '../../src/domain/payments/wallet-service.js';
import {
  insertActor,
  insertUsers,
  openPaymentsTestDb,
  type PaymentsTestDb,
  providerEvent,
  requestSandboxTopUp,
} from '../support/payments-db.js';

let t: PaymentsTestDb;
beforeAll(async () => {
  t = await openPaymentsTestDb(4);
});
afterAll(async () => {
  await t?.close();
});

it('never shows a negative `parked` when a top-up is parked for an operator while the wallet is read', async () => {
  const { userId } = await insertActor(t.db, 'review25parked');
  const uid = userId as UserId;
  const overcharge = (paymentId: string, amount: number) =>
    applyProviderEvent(t.deps, providerEvent(paymentId, 'charge.succeeded', amount, { tag: 'review25' }));
  // One top-up already parked for an operator (charged 1 099 for 1 000): pending credits, none shown.
  expect(await overcharge((await requestSandboxTopUp(t.deps, uid, 1_000n)).id, 1_099)).toBe('applied');
  const second = await requestSandboxTopUp(t.deps, uid, 2_000n);

  // Right after the wallet row is read, another top-up is parked for an operator (committed).
  let armed = true;
  const db = t.db.withPlugin({
    transformQuery: (args) => args.node,
    transformResult: async (args) => {
      const row = args.result.rows[0] as Record<string, unknown> | undefined;
      if (armed && row !== undefined && 'pending_credits' in row) {
        armed = false;
        expect(await overcharge(second.id, 2_222)).toBe('applied');
      }
      return args.result;
    },
  });
  const balance = await createWalletApi({ ...t.deps, db }).balance(uid);
  expect(armed).toBe(false);
  expect(balance).toMatchObject({ available: 0, pending: 0, posted: 0, parked: 0 });
  expect(Wallet.safeParse(balance).success).toBe(true);
  // Read again afterwards: still nothing shown as coming (both go back to the card).
  expect((await createWalletApi(t.deps).balance(uid)).parked).toBe(0);
});

it("keeps releasing escrows once the platform's fee account holds more than 2^53 - 1", async () => {
  const [hirer, worker] = (await insertUsers(t.db, 2, 'review25fee')) as [UserId, UserId];
  // 10 % of 2^53 − 1 per release: ten fill the fee account, the eleventh used to be refused. (The
  // worker's wallet, which is shown, stays capped: its shares are parked once it is full.)
  for (let round = 0; round < 11; round++) {
    await topUp(t.deps, { opKey: `seed:${randomUUID()}`, userId: hirer, amount: MAX_AMOUNT });
    const contractId = randomUUID();
    await holdEscrow(t.deps, { contractId, hirerId: hirer, workerId: worker, amount: MAX_AMOUNT });
    expect(await releaseEscrow(t.deps, contractId)).toMatchObject({ replayed: false, toHirer: 0n });
  }
  const fees = await t.db
    .selectFrom('ledger_accounts')
    .select('posted')
    .where('kind', '=', 'platform_fees')
    .executeTakeFirstOrThrow();
  expect(BigInt(fees.posted)).toBeGreaterThan(MAX_AMOUNT);
});

it('reports a wallet allowed to go below 0, and the overdraft it let through (I3)', async () => {
  const [from, to] = (await insertUsers(t.db, 2, 'review25i3')) as [UserId, UserId];
  await topUp(t.deps, { opKey: `seed:${randomUUID()}`, userId: from, amount: 100n });
  await sql`update ledger_accounts set allow_negative = true where kind = 'wallet' and user_id = ${from}`.execute(
    t.db,
  );
  const i3 = async () => (await auditLedger(t.db)).findings.filter((f) => f.invariant === 'I3');
  expect(await i3()).toEqual([
    expect.objectContaining({
      message: 'account allowed to go below 0',
      details: expect.objectContaining({ kind: 'wallet', available: '100' }),
    }),
  ]);
  // The funds check trusts the flag: 250 out of a wallet holding 100.
  await transfer(t.deps, { opKey: `review25:${randomUUID()}`, fromUserId: from, toUserId: to, amount: 250n });
  expect(await i3()).toEqual([
    expect.objectContaining({
      message: 'available balance below 0',
      details: expect.objectContaining({ kind: 'wallet', available: '-150' }),
    }),
  ]);
});

/**
 * Review 27: a locked account moved money. The auth layer refuses a locked user's requests once it
 * knows of the lock (other nodes within about a second), so a transfer, withdrawal or top-up
 * authenticated just before an admin's lock committed after it (an accept's escrow hold too): the
 * money of an account the admin had just stopped went to another user, into a contract or out to a
 * bank. Now each reads its user's row FOR SHARE and is refused 401 (as a bid is), and a lock waits
 * for a request already past that read.
 */
it('review27: a locked account moves no money, even by a request authenticated just before the lock', async () => {
  const [payer, payee] = (await insertUsers(t.db, 2, 'review27lock')) as [UserId, UserId];
  await topUp(t.deps, { opKey: `seed:${randomUUID()}`, userId: payer, amount: 1_000n });
  const wallet = createWalletApi(t.deps);
  const payments = createPaymentsApi({ ...t.deps, webhookSecrets: [] });
  const send = (trx: Parameters<typeof wallet.transferIn>[0]) =>
    wallet.transferIn(trx, payer, { toUserId: payee, amount: 100 }, `transfer:${payer}:${randomUUID()}`);

  // A lock cannot slip in under a transfer in flight: it waits for it (here: refused at once).
  let commit = () => {};
  const held = new Promise<void>((resolve) => {
    commit = resolve;
  });
  let started = () => {};
  const running = new Promise<void>((resolve) => {
    started = resolve;
  });
  const inFlight = t.db.transaction().execute(async (trx) => {
    const sent = await send(trx);
    started();
    await held;
    return sent;
  });
  await running;
  const lock = (timeout: string) =>
    t.db.transaction().execute(async (trx) => {
      await sql`select set_config('lock_timeout', ${timeout}, true)`.execute(trx);
      await trx.updateTable('users').set({ locked_at: new Date() }).where('id', '=', payer).execute();
    });
  await expect(lock('100ms')).rejects.toMatchObject({ code: '55P03' });
  commit();
  expect(await inFlight).toMatchObject({ amount: 100 });

  // Locked now; what was authenticated before reaches the domain after: refused, nothing moves.
  await lock('0');
  const refused = { code: 'UNAUTHORIZED' };
  await expect(t.db.transaction().execute(send)).rejects.toMatchObject(refused);
  await expect(
    t.db
      .transaction()
      .execute((trx) =>
        payments.requestWithdrawalIn(
          trx,
          payer,
          { amount: 100, bankAccount: 'DE89370400440532013000' },
          randomUUID(),
        ),
      ),
  ).rejects.toMatchObject(refused);
  await expect(
    t.db
      .transaction()
      .execute((trx) =>
        payments.requestTopUpIn(trx, payer, { amount: 100, card: '4242424242424242' }, randomUUID()),
      ),
  ).rejects.toMatchObject(refused);
  // Nor does an accept of a bid fund a contract's escrow from the locked hirer's wallet.
  await expect(
    holdEscrow(t.deps, { contractId: randomUUID(), hirerId: payer, workerId: payee, amount: 100n }),
  ).rejects.toMatchObject(refused);
  expect(await wallet.balance(payer)).toMatchObject({ available: 900, pending: 0, posted: 900 });
  expect(await t.db.selectFrom('payments').select('id').where('user_id', '=', payer).execute()).toEqual([]);
});
