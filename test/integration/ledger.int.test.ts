/**
 * The ledger against real PostgreSQL 15, under concurrency: the database's own guards (balanced,
 * append-only, resolved once), the payments domain's operations, the races of issue 11's "Done when"
 * list, and a fast-check property test whose every step is checked by the auditor.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import type { Database } from '../../src/db/database.js';
import { ensureAccounts, findEscrow } from '../../src/db/repositories/ledger.repo.js';
import { type AuditReport, auditLedger } from '../../src/domain/payments/audit.js';
import { holdEscrow, refundEscrow, releaseEscrow, splitEscrow } from '../../src/domain/payments/escrow.js';
import { walletTransactions } from '../../src/domain/payments/history.js';
import { type PaymentsDeps, postTransaction, reverseTransaction } from '../../src/domain/payments/ledger.js';
import {
  completeWithdrawal,
  failWithdrawal,
  startWithdrawal,
  topUp,
  transfer,
  walletBalance,
} from '../../src/domain/payments/wallet.js';
import { isAppError } from '../../src/platform/errors.js';
import { insertUsers, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';

/** Fixed by default so CI is repeatable; `FUZZ_SEED=<n>` explores other sequences. */
const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261204);

let testDb: PaymentsTestDb;
let db: Kysely<Database>;
let deps: PaymentsDeps;

beforeAll(async () => {
  testDb = await openPaymentsTestDb();
  ({ db, deps } = testDb);
});

afterAll(async () => {
  await testDb?.close();
});

const newUsers = (n: number): Promise<UserId[]> => insertUsers(db, n, 'ledger');

const key = () => randomUUID();
const codeOf = (error: unknown) => (isAppError(error) ? error.code : (error as { code?: string }).code);

async function expectCleanAudit(): Promise<AuditReport> {
  const report = await auditLedger(db);
  expect(report.findings).toEqual([]);
  return report;
}

/** Σ posted of every account that is not the outside world = −(provider clearing) = money in − out. */
function insideTotal(report: AuditReport): bigint {
  return report.totals
    .filter((t) => t.kind !== 'provider_clearing')
    .reduce((sum, t) => sum + BigInt(t.posted), 0n);
}

describe('ledger schema guards', () => {
  it('refuses an unbalanced transaction at commit, and any update or delete of the journal', async () => {
    const [a, b] = await newUsers(2);
    const [wa, wb, clearing] = await ensureAccounts(db, [
      { kind: 'wallet', userId: a!, currency: 'USD' },
      { kind: 'wallet', userId: b!, currency: 'USD' },
      { kind: 'provider_clearing', currency: 'USD' },
    ]);
    // Entries summing to 1: each statement passes, the deferred constraint trigger refuses the commit.
    await expect(
      db.transaction().execute(async (trx) => {
        const t = await trx
          .insertInto('ledger_transactions')
          .values({ op_key: key(), kind: 'transfer', currency: 'USD' })
          .returning('id')
          .executeTakeFirstOrThrow();
        await trx
          .insertInto('ledger_entries')
          .values([
            { transaction_id: t.id, account_id: clearing!.id, amount: '-5' },
            { transaction_id: t.id, account_id: wa!.id, amount: '6' },
          ])
          .execute();
      }),
    ).rejects.toMatchObject({ code: '23514' });
    // A transaction with no entries at all is refused too.
    await expect(
      db
        .insertInto('ledger_transactions')
        .values({ op_key: key(), kind: 'transfer', currency: 'USD' })
        .execute(),
    ).rejects.toMatchObject({ code: '23514' });

    const posted = await topUp(deps, { opKey: key(), userId: a!, amount: 100n });
    await expect(
      sql`update ledger_entries set amount = amount * 2 where transaction_id = ${posted.transactionId}`.execute(
        db,
      ),
    ).rejects.toMatchObject({ code: '23001' });
    await expect(
      sql`delete from ledger_entries where transaction_id = ${posted.transactionId}`.execute(db),
    ).rejects.toMatchObject({ code: '23001' });
    await expect(
      sql`update ledger_transactions set memo = 'x' where id = ${posted.transactionId}`.execute(db),
    ).rejects.toMatchObject({ code: '23001' });
    await expect(sql`truncate ledger_entries cascade`.execute(db)).rejects.toMatchObject({ code: '23001' });

    // The account CHECK refuses an overdraft even when the code's funds check is bypassed.
    await expect(
      db.transaction().execute(async (trx) => {
        const t = await trx
          .insertInto('ledger_transactions')
          .values({ op_key: key(), kind: 'transfer', currency: 'USD' })
          .returning('id')
          .executeTakeFirstOrThrow();
        await trx
          .insertInto('ledger_entries')
          .values([
            { transaction_id: t.id, account_id: wa!.id, amount: '-101' },
            { transaction_id: t.id, account_id: wb!.id, amount: '101' },
          ])
          .execute();
      }),
    ).rejects.toMatchObject({ code: '23514', constraint: 'ledger_accounts_available' });

    // A hold is resolved at most once, even by hand.
    const { hold } = await startWithdrawal(deps, { opKey: key(), userId: a!, amount: 10n });
    await failWithdrawal(deps, { holdId: hold.id });
    await expect(
      sql`update ledger_holds set status = 'posted', resolved_at = now() where id = ${hold.id}`.execute(db),
    ).rejects.toMatchObject({ code: '23001' });
    await expectCleanAudit();
  });
});

describe('wallet operations', () => {
  it('shows a new user a wallet of 0, moves money, refuses overdrafts with the shortfall and replays op keys', async () => {
    const [a, b] = await newUsers(2);
    expect(await walletBalance(deps, a!)).toEqual({
      currency: 'USD',
      available: 0n,
      pending: 0n,
      posted: 0n,
    });

    await topUp(deps, { opKey: `top:${a}`, userId: a!, amount: 1_000n, externalRef: `evt_${a}` });
    // The same provider event again (another op key) cannot record a second transaction.
    await expect(
      topUp(deps, { opKey: key(), userId: a!, amount: 1_000n, externalRef: `evt_${a}` }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });

    const opKey = key();
    const first = await transfer(deps, { opKey, fromUserId: a!, toUserId: b!, amount: 300n });
    expect(first.replayed).toBe(false);
    expect(await transfer(deps, { opKey, fromUserId: a!, toUserId: b!, amount: 300n })).toEqual({
      transactionId: first.transactionId,
      replayed: true,
    });
    await expect(transfer(deps, { opKey, fromUserId: a!, toUserId: b!, amount: 301n })).rejects.toMatchObject(
      {
        code: 'CONFLICT',
      },
    );

    const { hold } = await startWithdrawal(deps, { opKey: key(), userId: a!, amount: 600n });
    expect(await walletBalance(deps, a!)).toEqual({
      currency: 'USD',
      available: 100n,
      pending: 600n,
      posted: 700n,
    });
    await expect(
      transfer(deps, { opKey: key(), fromUserId: a!, toUserId: b!, amount: 150n }),
    ).rejects.toMatchObject({
      code: 'INSUFFICIENT_FUNDS',
      details: { shortfall: 50, currency: 'USD' },
    });
    const paid = await completeWithdrawal(deps, { holdId: hold.id });
    expect(await completeWithdrawal(deps, { holdId: hold.id })).toEqual({ ...paid, replayed: true });
    await expect(failWithdrawal(deps, { holdId: hold.id })).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await walletBalance(deps, a!)).toEqual({
      currency: 'USD',
      available: 100n,
      pending: 0n,
      posted: 100n,
    });
    expect(await walletBalance(deps, b!)).toMatchObject({ available: 300n });

    await expect(
      transfer(deps, { opKey: key(), fromUserId: a!, toUserId: a!, amount: 1n }),
    ).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    await expect(
      transfer(deps, { opKey: key(), fromUserId: a!, toUserId: b!, amount: 0n }),
    ).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    await expectCleanAudit();
  });

  it('posts an n-entry transaction atomically or not at all', async () => {
    const [a, b, c] = await newUsers(3);
    await topUp(deps, { opKey: key(), userId: a!, amount: 100n });
    const [wa, wb, wc] = await ensureAccounts(
      db,
      [a!, b!, c!].map((userId) => ({ kind: 'wallet', userId, currency: 'USD' }) as const),
    );
    await postTransaction(deps, {
      opKey: key(),
      kind: 'transfer',
      currency: 'USD',
      entries: [
        { accountId: wa!.id, amount: -100n },
        { accountId: wb!.id, amount: 60n },
        { accountId: wc!.id, amount: 40n },
      ],
    });
    // b pays 61 of its 60: nothing of the three legs happens.
    await expect(
      postTransaction(deps, {
        opKey: key(),
        kind: 'transfer',
        currency: 'USD',
        entries: [
          { accountId: wb!.id, amount: -61n },
          { accountId: wc!.id, amount: -1n },
          { accountId: wa!.id, amount: 62n },
        ],
      }),
    ).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS', details: { shortfall: 1 } });
    expect((await walletBalance(deps, b!)).posted).toBe(60n);
    expect((await walletBalance(deps, c!)).posted).toBe(40n);
    expect((await walletBalance(deps, a!)).posted).toBe(0n);
  });
});

describe('reversals and events', () => {
  it('reverses a paid-out withdrawal once with a new transaction; escrow moves cannot be reversed', async () => {
    const [a, b] = await newUsers(2);
    await topUp(deps, { opKey: key(), userId: a!, amount: 300n });
    const { hold } = await startWithdrawal(deps, { opKey: key(), userId: a!, amount: 200n });
    const paid = await completeWithdrawal(deps, { holdId: hold.id });
    expect((await walletBalance(deps, a!)).posted).toBe(100n);
    // The bank refused the payout after accepting it: the money comes back, once.
    const reversed = await reverseTransaction(deps, {
      transactionId: paid.transactionId,
      kind: 'withdrawal_reversal',
    });
    expect(
      await reverseTransaction(deps, { transactionId: paid.transactionId, kind: 'withdrawal_reversal' }),
    ).toEqual({
      ...reversed,
      replayed: true,
    });
    expect((await walletBalance(deps, a!)).posted).toBe(300n);

    // A transfer whose receiver already spent the money cannot be taken back.
    const sent = await transfer(deps, { opKey: key(), fromUserId: a!, toUserId: b!, amount: 50n });
    await transfer(deps, { opKey: key(), fromUserId: b!, toUserId: a!, amount: 30n });
    await expect(reverseTransaction(deps, { transactionId: sent.transactionId })).rejects.toMatchObject({
      code: 'INSUFFICIENT_FUNDS',
      details: { shortfall: 30 },
    });
    const contractId = randomUUID();
    const held = await holdEscrow(deps, { contractId, hirerId: a!, workerId: b!, amount: 10n });
    await expect(reverseTransaction(deps, { transactionId: held.transactionId })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    await expectCleanAudit();
  });

  it('writes one outbox event per new transfer and escrow outcome, none on a replay', async () => {
    const [a, b] = await newUsers(2);
    await topUp(deps, { opKey: key(), userId: a!, amount: 100n });
    const opKey = key();
    const sent = await transfer(deps, { opKey, fromUserId: a!, toUserId: b!, amount: 40n });
    await transfer(deps, { opKey, fromUserId: a!, toUserId: b!, amount: 40n });
    const contractId = randomUUID();
    await holdEscrow(deps, { contractId, hirerId: a!, workerId: b!, amount: 50n });
    const released = await releaseEscrow(deps, contractId);
    await releaseEscrow(deps, contractId);
    const events = await db
      .selectFrom('outbox_events')
      .select(['type', 'payload'])
      .where(sql<boolean>`payload->>'transactionId' in (${sent.transactionId}, ${released.transactionId})`)
      .orderBy('created_at')
      .execute();
    expect(events).toEqual([
      {
        type: 'transfer.received',
        payload: { fromUserId: a, toUserId: b, amount: 40, transactionId: sent.transactionId },
      },
      {
        type: 'escrow.released',
        payload: {
          contractId,
          hirerId: a,
          workerId: b,
          toWorker: 45,
          fee: 5,
          toHirer: 0,
          transactionId: released.transactionId,
        },
      },
    ]);
  });
});

describe('wallet history', () => {
  it('lists a wallet newest first with reason and counterparty, in pages; a new user sees an empty page', async () => {
    const [a, b] = await newUsers(2);
    expect(await walletTransactions(deps, a!, { cursor: undefined, limit: 10 })).toEqual({
      data: [],
      nextCursor: null,
    });
    await topUp(deps, { opKey: key(), userId: a!, amount: 1_000n });
    await transfer(deps, { opKey: key(), fromUserId: a!, toUserId: b!, amount: 100n, memo: 'lunch' });
    const contractId = randomUUID();
    await holdEscrow(deps, { contractId, hirerId: a!, workerId: b!, amount: 500n });
    await releaseEscrow(deps, contractId);

    const first = await walletTransactions(deps, a!, { cursor: undefined, limit: 2 });
    expect(
      first.data.map((l) => [l.reason, l.amount, l.balanceAfter, l.counterpartyId, l.contractId, l.note]),
    ).toEqual([
      ['escrow-hold', -500n, 400n, b, contractId, null],
      ['transfer', -100n, 900n, b, null, 'lunch'],
    ]);
    expect(first.nextCursor).not.toBeNull();
    const second = await walletTransactions(deps, a!, { cursor: first.nextCursor ?? undefined, limit: 2 });
    expect(second.data.map((l) => [l.reason, l.amount, l.counterpartyId])).toEqual([
      ['top-up', 1_000n, null],
    ]);
    expect(second.nextCursor).toBeNull();

    const worker = await walletTransactions(deps, b!, { cursor: undefined, limit: 10 });
    expect(worker.data.map((l) => [l.reason, l.amount, l.counterpartyId])).toEqual([
      ['escrow-release', 450n, a],
      ['transfer', 100n, a],
    ]);
  });
});

describe('escrow', () => {
  it('holds from the hirer, releases to the worker minus the fee, refunds and splits exactly once', async () => {
    const [hirer, worker] = await newUsers(2);
    await topUp(deps, { opKey: key(), userId: hirer!, amount: 10_000n });
    const [c1, c2, c3, c4] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];

    await expect(
      holdEscrow(deps, { contractId: c1, hirerId: hirer!, workerId: worker!, amount: 10_001n }),
    ).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS', details: { shortfall: 1 } });
    const hold = await holdEscrow(deps, {
      contractId: c1,
      hirerId: hirer!,
      workerId: worker!,
      amount: 1_005n,
    });
    expect(
      await holdEscrow(deps, { contractId: c1, hirerId: hirer!, workerId: worker!, amount: 1_005n }),
    ).toEqual({
      ...hold,
      replayed: true,
    });
    await expect(
      holdEscrow(deps, { contractId: c1, hirerId: hirer!, workerId: worker!, amount: 1_006n }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });

    const released = await releaseEscrow(deps, c1);
    expect(released).toMatchObject({ toWorker: 904n, fee: 101n, toHirer: 0n, replayed: false });
    expect(await releaseEscrow(deps, c1)).toMatchObject({
      transactionId: released.transactionId,
      replayed: true,
    });
    await expect(refundEscrow(deps, c1)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await walletBalance(deps, worker!)).posted).toBe(904n);

    await holdEscrow(deps, { contractId: c2, hirerId: hirer!, workerId: worker!, amount: 500n });
    expect(await refundEscrow(deps, c2)).toMatchObject({ toWorker: 0n, fee: 0n, toHirer: 500n });

    await holdEscrow(deps, { contractId: c3, hirerId: hirer!, workerId: worker!, amount: 1_000n });
    await expect(splitEscrow(deps, { contractId: c3, toWorker: 600n, toHirer: 300n })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    expect(await splitEscrow(deps, { contractId: c3, toWorker: 600n, toHirer: 400n })).toMatchObject({
      toWorker: 540n,
      fee: 60n,
      toHirer: 400n,
    });
    await expect(releaseEscrow(deps, c4)).rejects.toMatchObject({ code: 'NOT_FOUND' });

    // 10 000 − 1 005 − 1 000 + 400 (the refund of c2 came back whole)
    expect((await walletBalance(deps, hirer!)).posted).toBe(8_395n);
    await expect(
      sql`update ledger_escrows set status = 'refunded' where contract_id = ${c1}`.execute(db),
    ).rejects.toMatchObject({ code: '23001' });
    await expectCleanAudit();
  });

  it('release and refund racing on one escrow: exactly one wins, the money moves once', async () => {
    const [hirer, worker] = await newUsers(2);
    await topUp(deps, { opKey: key(), userId: hirer!, amount: 20_000n });
    for (let round = 0; round < 20; round++) {
      const contractId = randomUUID();
      await holdEscrow(deps, { contractId, hirerId: hirer!, workerId: worker!, amount: 1_000n });
      const results = await Promise.allSettled([
        releaseEscrow(deps, contractId),
        refundEscrow(deps, contractId),
        releaseEscrow(deps, contractId),
        refundEscrow(deps, contractId),
      ]);
      const escrow = await findEscrow(db, contractId);
      const winner = escrow?.status === 'released' ? [0, 2] : [1, 3];
      const loser = escrow?.status === 'released' ? [1, 3] : [0, 2];
      for (const i of winner) expect(results[i]?.status).toBe('fulfilled');
      for (const i of loser) {
        const result = results[i];
        expect(result?.status === 'rejected' && codeOf(result.reason)).toBe('CONFLICT');
      }
      const fresh = winner
        .map((i) => results[i])
        .filter((r) => r?.status === 'fulfilled' && !r.value.replayed);
      expect(fresh).toHaveLength(1);
    }
    const hirerBalance = (await walletBalance(deps, hirer!)).posted;
    const workerBalance = (await walletBalance(deps, worker!)).posted;
    // Every escrow ended once: as 900 to the worker (+100 fee) or 1 000 back to the hirer.
    expect((20_000n - hirerBalance) % 1_000n).toBe(0n);
    expect(workerBalance % 900n).toBe(0n);
    expect(hirerBalance + (workerBalance / 900n) * 1_000n).toBe(20_000n);
    await expectCleanAudit();
  });
});

describe('concurrent transfers', () => {
  it('100 concurrent transfers out of a wallet that holds enough for k: exactly k succeed', async () => {
    const [from, to] = await newUsers(2);
    const k = 37;
    await topUp(deps, { opKey: key(), userId: from!, amount: BigInt(k) * 10n + 9n });
    const results = await Promise.allSettled(
      Array.from({ length: 100 }, () =>
        transfer(deps, { opKey: key(), fromUserId: from!, toUserId: to!, amount: 10n }),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected');
    expect(ok).toHaveLength(k);
    expect(refused.map((r) => r.status === 'rejected' && codeOf(r.reason))).toEqual(
      Array(100 - k).fill('INSUFFICIENT_FUNDS'),
    );
    expect(await walletBalance(deps, from!)).toMatchObject({ available: 9n, posted: 9n });
    expect((await walletBalance(deps, to!)).posted).toBe(BigInt(k) * 10n);
    await expectCleanAudit();
  });

  it('500 A→B and 500 B→A concurrent transfers of 1: balances unchanged, no deadlock escapes', async () => {
    const [a, b] = await newUsers(2);
    await topUp(deps, { opKey: key(), userId: a!, amount: 1_000n });
    await topUp(deps, { opKey: key(), userId: b!, amount: 1_000n });
    // 100 in flight at any moment (10 pooled connections): enough to interleave opposite transfers on
    // every pair of rows, without 1 000 callers queueing for a connection past the pool's 5 s wait.
    const results = await settleWithin(100, 1_000, (i) =>
      i % 2 === 0
        ? transfer(deps, { opKey: key(), fromUserId: a!, toUserId: b!, amount: 1n })
        : transfer(deps, { opKey: key(), fromUserId: b!, toUserId: a!, amount: 1n }),
    );
    const failures = results.flatMap((r) =>
      r.status === 'rejected' ? [codeOf(r.reason) ?? String((r.reason as Error)?.message)] : [],
    );
    expect(failures).toEqual([]);
    expect((await walletBalance(deps, a!)).posted).toBe(1_000n);
    expect((await walletBalance(deps, b!)).posted).toBe(1_000n);
    const { rows } = await sql<{ n: string }>`
      select count(*)::text as n from ledger_transactions where kind = 'transfer' and initiator_id in (${a}, ${b})`.execute(
      db,
    );
    expect(rows[0]?.n).toBe('1000');
    await expectCleanAudit();
  });
});

/** Runs `count` calls of `run` with at most `inFlight` unsettled at once; results in call order. */
async function settleWithin<T>(
  inFlight: number,
  count: number,
  run: (index: number) => Promise<T>,
): Promise<PromiseSettledResult<T>[]> {
  const results: PromiseSettledResult<T>[] = new Array(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const index = next++;
      results[index] = await run(index).then(
        (value) => ({ status: 'fulfilled', value }) as const,
        (reason: unknown) => ({ status: 'rejected', reason }) as const,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
  return results;
}

type Op =
  | { t: 'topUp'; user: number; amount: number }
  | { t: 'transfer'; from: number; to: number; amount: number }
  | { t: 'escrow'; hirer: number; worker: number; amount: number }
  | { t: 'release' | 'refund'; contract: number }
  | { t: 'split'; contract: number; permille: number }
  | { t: 'withdraw'; user: number; amount: number }
  | { t: 'settle'; hold: number; ok: boolean };

const USERS = 4;
const userIx = fc.nat({ max: USERS - 1 });
const amountArb = fc.integer({ min: 1, max: 400 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('topUp' as const), user: userIx, amount: amountArb }),
  fc.record({ t: fc.constant('transfer' as const), from: userIx, to: userIx, amount: amountArb }),
  fc.record({ t: fc.constant('escrow' as const), hirer: userIx, worker: userIx, amount: amountArb }),
  fc.record({ t: fc.constantFrom('release' as const, 'refund' as const), contract: fc.nat() }),
  fc.record({
    t: fc.constant('split' as const),
    contract: fc.nat(),
    permille: fc.integer({ min: 0, max: 1000 }),
  }),
  fc.record({ t: fc.constant('withdraw' as const), user: userIx, amount: amountArb }),
  fc.record({ t: fc.constant('settle' as const), hold: fc.nat(), ok: fc.boolean() }),
);
/** Expected refusals of a random operation; anything else fails the property. */
const EXPECTED = new Set(['INSUFFICIENT_FUNDS', 'CONFLICT', 'VALIDATION_FAILED']);

interface RunState {
  readonly users: UserId[];
  readonly contracts: { id: string; amount: bigint }[];
  readonly holds: string[];
  moneyIn: bigint;
  moneyOut: bigint;
}

/** Applies one random operation; `known` is what existed when its step began (ops of a step race). */
async function applyOp(
  state: RunState,
  known: { contracts: readonly { id: string; amount: bigint }[]; holds: readonly string[] },
  op: Op,
): Promise<void> {
  const { users } = state;
  const pick = <T>(list: readonly T[], i: number) => list[i % Math.max(1, list.length)];
  switch (op.t) {
    case 'topUp':
      await topUp(deps, { opKey: key(), userId: users[op.user]!, amount: BigInt(op.amount) });
      state.moneyIn += BigInt(op.amount);
      return;
    case 'transfer':
      await transfer(deps, {
        opKey: key(),
        fromUserId: users[op.from]!,
        toUserId: users[op.to]!,
        amount: BigInt(op.amount),
      });
      return;
    case 'escrow': {
      const id = randomUUID();
      const amount = BigInt(op.amount);
      await holdEscrow(deps, {
        contractId: id,
        hirerId: users[op.hirer]!,
        workerId: users[op.worker]!,
        amount,
      });
      state.contracts.push({ id, amount });
      return;
    }
    case 'release':
    case 'refund': {
      const contract = pick(known.contracts, op.contract);
      if (contract === undefined) return;
      await (op.t === 'release' ? releaseEscrow(deps, contract.id) : refundEscrow(deps, contract.id));
      return;
    }
    case 'split': {
      const contract = pick(known.contracts, op.contract);
      if (contract === undefined) return;
      const toWorker = (contract.amount * BigInt(op.permille)) / 1000n;
      await splitEscrow(deps, { contractId: contract.id, toWorker, toHirer: contract.amount - toWorker });
      return;
    }
    case 'withdraw': {
      const { hold } = await startWithdrawal(deps, {
        opKey: key(),
        userId: users[op.user]!,
        amount: BigInt(op.amount),
      });
      state.holds.push(hold.id);
      return;
    }
    case 'settle': {
      const holdId = pick(known.holds, op.hold);
      if (holdId === undefined) return;
      if (!op.ok) {
        await failWithdrawal(deps, { holdId });
        return;
      }
      const posted = await completeWithdrawal(deps, { holdId });
      if (!posted.replayed) {
        const { rows } = await sql<{
          amount: string;
        }>`select amount::text from ledger_holds where id = ${holdId}`.execute(db);
        state.moneyOut += BigInt(rows[0]!.amount);
      }
      return;
    }
  }
}

describe('property: random concurrent money movements', () => {
  it('after every step the auditor finds nothing and money in − money out = wallets + escrow + fees', async () => {
    // The database is shared with the tests above: start from the net money they brought in.
    const base = insideTotal(await auditLedger(db));
    const totals = { moneyIn: base, moneyOut: 0n };
    const succeeded = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(opArb, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 6 }),
        async (steps) => {
          const state: RunState = {
            users: await newUsers(USERS),
            contracts: [],
            holds: [],
            moneyIn: 0n,
            moneyOut: 0n,
          };
          for (const step of steps) {
            const known = { contracts: [...state.contracts], holds: [...state.holds] };
            const results = await Promise.allSettled(
              step.map(async (op) => {
                await applyOp(state, known, op);
                succeeded.set(op.t, (succeeded.get(op.t) ?? 0) + 1);
              }),
            );
            for (const result of results) {
              if (result.status === 'rejected' && !EXPECTED.has(String(codeOf(result.reason))))
                throw result.reason;
            }
            const report = await auditLedger(db);
            expect(report.findings).toEqual([]);
            expect(insideTotal(report)).toBe(
              totals.moneyIn + state.moneyIn - totals.moneyOut - state.moneyOut,
            );
          }
          totals.moneyIn += state.moneyIn;
          totals.moneyOut += state.moneyOut;
        },
      ),
      { seed: FUZZ_SEED, numRuns: 40, endOnFailure: true },
    );
    // The sequences really moved money of every kind (not only refusals).
    for (const kind of ['topUp', 'transfer', 'escrow', 'release', 'refund', 'split', 'withdraw', 'settle']) {
      expect(succeeded.get(kind) ?? 0, kind).toBeGreaterThan(0);
    }
  });
});

describe('auditor', () => {
  it('reports a tampered cached balance and a disabled guard trigger', async () => {
    const [a] = await newUsers(1);
    await topUp(deps, { opKey: key(), userId: a!, amount: 50n });
    const [wallet] = await ensureAccounts(db, [{ kind: 'wallet', userId: a!, currency: 'USD' }]);
    await sql`update ledger_accounts set posted = posted + 1 where id = ${wallet!.id}`.execute(db);
    await sql`alter table ledger_entries disable trigger ledger_entries_append_only`.execute(db);
    try {
      const report = await auditLedger(db);
      expect(report.findings.map((f) => f.invariant).sort()).toEqual(['I4', 'I5']);
      expect(report.findings.find((f) => f.invariant === 'I5')?.details).toMatchObject({
        id: wallet!.id,
        posted: '51',
        sum: '50',
      });
    } finally {
      await sql`alter table ledger_entries enable trigger ledger_entries_append_only`.execute(db);
      await sql`update ledger_accounts set posted = posted - 1 where id = ${wallet!.id}`.execute(db);
    }
    await expectCleanAudit();
  });
});
