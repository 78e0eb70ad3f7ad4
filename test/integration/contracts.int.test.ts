/**
 * Contracts (issue 12 §3) at the domain level against real PostgreSQL: accepting a bid in one
 * transaction (escrow hold, other bids rejected, job in progress, job room), every transition of
 * the process table with its effects (log row, room system message, outbox event with the escrow
 * move and timers), refusals (404 strangers, 403 wrong party, 409 INVALID_TRANSITION naming the
 * state), races (two accepts → one contract, one hold), the escrow task each ending runs, the
 * auto-approve timer and its no-ops, and the ledger auditor clean after every test.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BidId, CategoryId, ContractId } from '../../protocol/src/ids.js';
import type { Role } from '../../protocol/src/rest/users.js';
import type { Database } from '../../src/db/database.js';
import { findCategoryBySlug } from '../../src/db/repositories/jobs.repo.js';
import { findEscrow } from '../../src/db/repositories/ledger.repo.js';
import { insertMessages } from '../../src/db/repositories/rooms.repo.js';
import { placeBid } from '../../src/domain/marketplace/bids.js';
import {
  acceptBid,
  autoApprove,
  type ContractDeps,
  fire,
  getContract,
  myContracts,
} from '../../src/domain/marketplace/contracts.js';
import { createJob, getJob, type JobInput } from '../../src/domain/marketplace/jobs.js';
import type { Actor } from '../../src/domain/marketplace/rules.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import { topUp, walletBalance } from '../../src/domain/payments/wallet.js';
import { escrowTask } from '../../src/workers/payments/processor.js';
import { captureLogs } from '../support/context.js';
import {
  insertActor,
  openPaymentsTestDb,
  type PaymentsTestDb,
  TEST_PAYMENT_SETTINGS,
} from '../support/payments-db.js';
import { refusalOf } from '../support/refusal.js';

let testDb: PaymentsTestDb;
let db: Kysely<Database>;
let deps: ContractDeps;
let design: CategoryId;
const log = captureLogs().log;

beforeAll(async () => {
  testDb = await openPaymentsTestDb();
  db = testDb.db;
  deps = {
    db,
    clock: testDb.deps.clock,
    settings: { ...TEST_PAYMENT_SETTINGS, autoApproveMs: 3_600_000, reviewWindowMs: 7_200_000 },
  };
  design = (await findCategoryBySlug(db, 'design'))?.id as CategoryId;
});

afterEach(async () => {
  expect((await auditLedger(db)).findings).toEqual([]);
});

/** The contract deps as the auto-approve timer sees them when due: its clock past autoApproveMs. */
const whenDue = (): ContractDeps => ({ ...deps, clock: { now: () => new Date(Date.now() + 2 * 3_600_000) } });

afterAll(async () => {
  await testDb?.close();
});

const newUser = (...roles: Role[]): Promise<Actor> => insertActor(db, 'ctr', ...roles);

const jobInput = (): JobInput => ({
  categoryId: design,
  title: 'Logo for a bakery',
  description: 'A friendly logo in two colours.',
  skills: ['logo'],
  budget: { kind: 'fixed', amount: 50_000n, currency: 'USD' },
  location: null,
  remote: true,
  deadline: null,
});

const available = async (user: Actor) => (await walletBalance(testDb.deps, user.userId)).available;
const fund = (user: Actor, amount: bigint) =>
  topUp(testDb.deps, { opKey: randomUUID(), userId: user.userId, amount });
const eventsOf = async (type: string, contractId: string) =>
  (
    await db.selectFrom('outbox_events').selectAll().where('type', '=', type).orderBy('created_at').execute()
  ).filter((event) => event.payload.contractId === contractId);
const runEscrowTasks = async (contractId: string) => {
  // What the relay enqueues for each contract event that names an escrow move.
  for (const event of await db.selectFrom('outbox_events').selectAll().orderBy('created_at').execute()) {
    const action = event.payload.escrow;
    if (
      event.payload.contractId !== contractId ||
      (action !== 'release' && action !== 'refund' && action !== 'split')
    )
      continue;
    await escrowTask({ payments: testDb.deps, log }, { contractId, action });
  }
};

/** The version of a bid never changed since it was placed: what the hirer saw (If-Match). */
const FRESH = 0;

/** A hirer with `funds`, an open job, and a pending bid of `amount` from each of `workers` workers. */
async function market(funds: bigint, amount = 40_000n, workers = 1) {
  const hirer = await newUser('hirer');
  if (funds > 0n) await fund(hirer, funds);
  const job = await createJob(deps, hirer, jobInput());
  const bidders: Actor[] = [];
  const bids: BidId[] = [];
  for (let i = 0; i < workers; i++) {
    const worker = await newUser('worker');
    bidders.push(worker);
    bids.push((await placeBid(deps, worker, job.id, { amount, deliveryDays: 5, coverLetter: 'me' })).id);
  }
  const [worker] = bidders;
  const [bidId] = bids;
  if (worker === undefined || bidId === undefined) throw new Error('no bid');
  return { hirer, worker, job, bidId, bidders, bids };
}

describe('accepting a bid', () => {
  it('holds the escrow, rejects the other bids, starts the job and its room — in one transaction', async () => {
    const { hirer, worker, job, bidId, bids, bidders } = await market(100_000n, 40_000n, 3);
    const contract = await acceptBid(deps, hirer, bidId, FRESH);
    expect(contract).toMatchObject({
      state: 'active',
      version: 1,
      amount: 40_000n,
      hirerId: hirer.userId,
      workerId: worker.userId,
      title: 'Logo for a bakery',
      deliveryDays: 5,
    });
    expect(await available(hirer)).toBe(60_000n);
    expect(await findEscrow(db, contract.id)).toMatchObject({ amount: 40_000n, status: 'held' });
    const statuses = await db
      .selectFrom('bids')
      .select(['id', 'status'])
      .where('job_id', '=', job.id)
      .execute();
    expect(new Map(statuses.map((row) => [row.id, row.status]))).toEqual(
      new Map([
        [bids[0], 'accepted'],
        [bids[1], 'rejected'],
        [bids[2], 'rejected'],
      ]),
    );
    expect((await getJob(deps, hirer, job.id)).job.status).toBe('in_progress');
    if (contract.roomId === null) throw new Error('no room');
    const room = await db
      .selectFrom('rooms')
      .selectAll()
      .where('id', '=', contract.roomId)
      .executeTakeFirstOrThrow();
    expect(room.kind).toBe('job');
    const members = await db
      .selectFrom('room_members')
      .select('user_id')
      .where('room_id', '=', contract.roomId)
      .execute();
    expect(members.map((m) => m.user_id).sort()).toEqual([hirer.userId, worker.userId].sort());
    const messages = await db
      .selectFrom('messages')
      .selectAll()
      .where('room_id', '=', contract.roomId)
      .execute();
    expect(messages).toHaveLength(1);
    expect(messages[0]?.meta).toMatchObject({
      system: 'contract.started',
      contractId: contract.id,
      version: 1,
    });
    const accepted = await eventsOf('contract.accept', contract.id);
    expect(accepted).toHaveLength(1);
    expect(accepted[0]?.payload).toMatchObject({ state: 'active', version: 1, notify: [worker.userId] });
    expect(accepted[0]?.payload.escrow).toBeUndefined();
    const rejections = (
      await db.selectFrom('outbox_events').selectAll().where('type', '=', 'bid.rejected').execute()
    )
      .filter((event) => event.payload.jobId === job.id)
      .map((event) => event.payload.workerId);
    expect(rejections.sort()).toEqual([bidders[1]?.userId, bidders[2]?.userId].sort());
    const detail = await getContract(deps, worker, contract.id);
    expect(detail.transitions).toMatchObject([
      { version: 1, event: 'accept', from: null, to: 'active', actor: 'hirer' },
    ]);
    expect(detail.available).toEqual(['deliver', 'cancel', 'dispute']);
  });

  it('not enough money: 409 INSUFFICIENT_FUNDS with the shortfall, and nothing changed', async () => {
    const { hirer, job, bidId } = await market(10_000n, 40_000n, 2);
    expect(await refusalOf(acceptBid(deps, hirer, bidId, FRESH))).toMatchObject({
      code: 'INSUFFICIENT_FUNDS',
      details: { shortfall: 30_000, currency: 'USD' },
    });
    expect(await available(hirer)).toBe(10_000n);
    expect((await getJob(deps, hirer, job.id)).job.status).toBe('open');
    const bids = await db.selectFrom('bids').select('status').where('job_id', '=', job.id).execute();
    expect(bids.map((bid) => bid.status)).toEqual(['pending', 'pending']);
    expect(await db.selectFrom('contracts').selectAll().where('job_id', '=', job.id).execute()).toEqual([]);
    expect(await db.selectFrom('rooms').selectAll().where('title', '=', 'never').execute()).toEqual([]);
  });

  it('only the hirer accepts, at the version seen; the worker gets 403, a stranger 404, a changed bid, a decided bid or a started job 409', async () => {
    const { hirer, worker, bidId, bids } = await market(100_000n, 40_000n, 2);
    const stranger = await newUser('hirer', 'worker');
    // A version other than the bid's (it changed since the hirer read it): 409, nothing held.
    expect(await refusalOf(acceptBid(deps, hirer, bidId, FRESH + 1))).toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'VERSION_MISMATCH', version: FRESH },
    });
    expect(await available(hirer)).toBe(100_000n);
    expect(await refusalOf(acceptBid(deps, worker, bidId, FRESH))).toMatchObject({ code: 'FORBIDDEN' });
    expect(await refusalOf(acceptBid(deps, stranger, bidId, FRESH))).toMatchObject({ code: 'NOT_FOUND' });
    expect(await refusalOf(acceptBid(deps, hirer, randomUUID() as BidId, FRESH))).toMatchObject({
      code: 'NOT_FOUND',
    });
    await acceptBid(deps, hirer, bidId, FRESH);
    expect(await refusalOf(acceptBid(deps, hirer, bidId, FRESH))).toMatchObject({
      code: 'INVALID_TRANSITION',
      details: { state: 'accepted' },
    });
    // The other bid was rejected by that accept; what explains it is the job no longer being open.
    expect(await refusalOf(acceptBid(deps, hirer, bids[1] as BidId, FRESH))).toMatchObject({
      code: 'INVALID_TRANSITION',
      details: { reason: 'JOB_NOT_OPEN', state: 'in_progress' },
    });
  });

  it('two accepts of two bids of one job at once, and one bid twice: one contract, one hold, the rest 409', async () => {
    const { hirer, job, bids } = await market(200_000n, 40_000n, 2);
    const outcomes = await Promise.allSettled([
      acceptBid(deps, hirer, bids[0] as BidId, FRESH),
      acceptBid(deps, hirer, bids[1] as BidId, FRESH),
      acceptBid(deps, hirer, bids[0] as BidId, FRESH),
      acceptBid(deps, hirer, bids[1] as BidId, FRESH),
    ]);
    const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') expect(outcome.reason).toMatchObject({ code: 'INVALID_TRANSITION' });
    }
    expect(await db.selectFrom('contracts').select('id').where('job_id', '=', job.id).execute()).toHaveLength(
      1,
    );
    expect(await available(hirer)).toBe(160_000n);
    const holds = await db
      .selectFrom('ledger_transactions')
      .select('id')
      .where('kind', '=', 'escrow_hold')
      .where('initiator_id', '=', hirer.userId)
      .execute();
    expect(holds).toHaveLength(1);
  });
});

describe('the contract process', () => {
  it('deliver → request changes → deliver → approve: completed, escrow released minus the fee', async () => {
    const { hirer, worker, job, bidId } = await market(100_000n, 40_000n);
    const contract = await acceptBid(deps, hirer, bidId, FRESH);
    const delivered = await fire(deps, worker, contract.id, 'deliver', { message: 'First draft attached.' });
    expect(delivered).toMatchObject({ state: 'delivered', version: 2, deliveries: 1 });
    expect(delivered.autoApproveAt?.getTime()).toBe((delivered.deliveredAt?.getTime() ?? 0) + 3_600_000);
    const changes = await fire(deps, hirer, contract.id, 'request_changes', { message: 'Bigger please' });
    expect(changes).toMatchObject({ state: 'active', version: 3, autoApproveAt: null });
    // Active again, but delivered once: cancel is refused (neverDelivered), so it is not offered (review 30).
    expect((await getContract(deps, hirer, contract.id)).available).toEqual(['dispute']);
    expect((await getContract(deps, worker, contract.id)).available).toEqual(['deliver', 'dispute']);
    await fire(deps, worker, contract.id, 'deliver');
    const done = await fire(deps, hirer, contract.id, 'approve');
    expect(done).toMatchObject({ state: 'completed', version: 5, deliveries: 2 });
    expect(done.reviewDeadlineAt?.getTime()).toBe((done.completedAt?.getTime() ?? 0) + 7_200_000);
    expect((await getJob(deps, hirer, job.id)).job.status).toBe('completed');

    const deliveries = await eventsOf('contract.deliver', contract.id);
    expect(deliveries.map((event) => event.payload.version)).toEqual([2, 4]);
    expect(deliveries[0]?.payload).toMatchObject({
      notify: [hirer.userId],
      autoApproveAt: delivered.autoApproveAt?.toISOString(),
    });
    const approvals = await eventsOf('contract.approve', contract.id);
    expect(approvals).toHaveLength(1);
    expect(approvals[0]?.payload).toMatchObject({
      escrow: 'release',
      state: 'completed',
      notify: [worker.userId],
    });
    expect(approvals[0]?.payload.reviewDeadlineAt).toBe(done.reviewDeadlineAt?.toISOString());

    // The payments task the relay enqueues for it (twice: the second is a replay).
    await runEscrowTasks(contract.id);
    await escrowTask({ payments: testDb.deps, log }, { contractId: contract.id, action: 'release' });
    expect(await available(worker)).toBe(36_000n); // 40 000 − 10 % fee
    expect(await available(hirer)).toBe(60_000n);
    expect(await findEscrow(db, contract.id)).toMatchObject({ status: 'released' });

    const detail = await getContract(deps, hirer, contract.id);
    expect(detail.transitions.map((t) => `${t.from ?? '-'}>${t.event}>${t.to}`)).toEqual([
      '->accept>active',
      'active>deliver>delivered',
      'delivered>request_changes>active',
      'active>deliver>delivered',
      'delivered>approve>completed',
    ]);
    expect(detail.transitions[1]?.payload).toEqual({ message: 'First draft attached.' });
    expect(detail.available).toEqual([]);
    const messages = await db
      .selectFrom('messages')
      .select(['seq', 'meta', 'body', 'sender_id'])
      .where('room_id', '=', contract.roomId as NonNullable<typeof contract.roomId>)
      .orderBy('seq')
      .execute();
    expect(messages.map((m) => Number(m.seq))).toEqual([1, 2, 3, 4, 5]);
    expect(messages.map((m) => m.meta?.system)).toEqual([
      'contract.started',
      'contract.delivered',
      'contract.changes_requested',
      'contract.delivered',
      'contract.approved',
    ]);
    expect(messages[1]?.body).toContain('First draft attached.');
    expect(messages[1]?.sender_id).toBe(worker.userId);
  });

  it('a party cannot block a transition by sending messages with ids it could guess', async () => {
    const { hirer, worker, bidId } = await market(100_000n, 40_000n);
    const contract = await acceptBid(deps, hirer, bidId, FRESH);
    const roomId = contract.roomId as NonNullable<typeof contract.roomId>;
    // Every id the old scheme (contract.<id>.<version>) would have used, from both parties.
    const guesses = [hirer, worker].flatMap((party) =>
      Array.from({ length: 8 }, (_, version) => ({
        party,
        clientMsgId: `contract.${contract.id}.${version + 1}`,
      })),
    );
    await db.transaction().execute(async (trx) => {
      const last = await trx
        .selectFrom('rooms')
        .select(['last_seq', 'owner_epoch'])
        .where('id', '=', roomId)
        .executeTakeFirstOrThrow();
      await insertMessages(
        trx,
        roomId,
        Number(last.owner_epoch),
        guesses.map((guess, i) => ({
          seq: Number(last.last_seq) + i + 1,
          senderId: guess.party.userId,
          clientMsgId: guess.clientMsgId,
          body: 'squatting',
          meta: null,
        })),
      );
    });
    const delivered = await fire(deps, worker, contract.id, 'deliver');
    expect(await autoApprove(whenDue(), contract.id, delivered.version)).toBe('applied');
    expect((await getContract(deps, hirer, contract.id)).contract.state).toBe('completed');
    await runEscrowTasks(contract.id);
  });

  it('refusals: strangers 404, the wrong party 403, an illegal event 409 naming the state, a stale If-Match 409', async () => {
    const { hirer, worker, bidId } = await market(100_000n);
    const stranger = await newUser('hirer', 'worker');
    const admin = await newUser('admin');
    const contract = await acceptBid(deps, hirer, bidId, FRESH);
    expect(await refusalOf(fire(deps, stranger, contract.id, 'deliver'))).toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(await refusalOf(getContract(deps, stranger, contract.id))).toMatchObject({ code: 'NOT_FOUND' });
    expect(await refusalOf(fire(deps, hirer, randomUUID() as ContractId, 'deliver'))).toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(await refusalOf(fire(deps, hirer, contract.id, 'deliver'))).toMatchObject({
      code: 'FORBIDDEN',
      details: { allowed: ['worker'] },
    });
    expect(await refusalOf(fire(deps, admin, contract.id, 'deliver'))).toMatchObject({ code: 'FORBIDDEN' });
    expect(await refusalOf(fire(deps, hirer, contract.id, 'approve'))).toMatchObject({
      code: 'INVALID_TRANSITION',
      details: { state: 'active', event: 'approve' },
    });
    expect(await refusalOf(fire(deps, worker, contract.id, 'resolve'))).toMatchObject({
      code: 'INVALID_TRANSITION',
    });
    expect(await refusalOf(fire(deps, worker, contract.id, 'deliver', { expectedVersion: 7 }))).toMatchObject(
      {
        code: 'CONFLICT',
        details: { reason: 'VERSION_MISMATCH', version: 1 },
      },
    );
    expect((await getContract(deps, admin, contract.id)).contract.state).toBe('active');
    await fire(deps, worker, contract.id, 'deliver', { expectedVersion: 1 });
    expect(await refusalOf(fire(deps, worker, contract.id, 'cancel'))).toMatchObject({
      code: 'INVALID_TRANSITION',
      details: { state: 'delivered' },
    });
    await fire(deps, hirer, contract.id, 'request_changes');
    // Cancel is only for a contract never delivered, even after changes were requested.
    expect(await refusalOf(fire(deps, hirer, contract.id, 'cancel'))).toMatchObject({
      code: 'INVALID_TRANSITION',
      details: { state: 'active', guard: 'neverDelivered' },
    });
    expect((await myContracts(deps, stranger)).data).toEqual([]);
    expect((await myContracts(deps, worker)).data.map((c) => c.id)).toEqual([contract.id]);
    expect((await myContracts(deps, hirer, { states: ['completed'] })).data).toEqual([]);
  });

  it('cancel refunds the hirer in full', async () => {
    const { hirer, worker, job, bidId } = await market(100_000n);
    const contract = await acceptBid(deps, hirer, bidId, FRESH);
    const cancelled = await fire(deps, worker, contract.id, 'cancel', { message: 'Cannot make it, sorry' });
    expect(cancelled).toMatchObject({ state: 'cancelled', reviewDeadlineAt: null });
    expect((await getJob(deps, hirer, job.id)).job.status).toBe('cancelled');
    expect((await eventsOf('contract.cancel', contract.id))[0]?.payload).toMatchObject({
      escrow: 'refund',
      notify: [hirer.userId, worker.userId],
    });
    await runEscrowTasks(contract.id);
    expect(await available(hirer)).toBe(100_000n);
    expect(await available(worker)).toBe(0n);
    expect(await refusalOf(fire(deps, hirer, contract.id, 'dispute'))).toMatchObject({
      code: 'INVALID_TRANSITION',
      details: { state: 'cancelled' },
    });
  });

  it('dispute and an admin resolve split the escrow exactly; a split that does not add up is 400', async () => {
    const { hirer, worker, job, bidId } = await market(100_000n, 40_000n);
    const admin = await newUser('admin');
    const contract = await acceptBid(deps, hirer, bidId, FRESH);
    await fire(deps, worker, contract.id, 'deliver');
    await fire(deps, hirer, contract.id, 'dispute', { message: 'Not what we agreed' });
    const split = { toWorker: 25_000n, toHirer: 15_000n };
    expect(await refusalOf(fire(deps, hirer, contract.id, 'resolve', { split }))).toMatchObject({
      code: 'FORBIDDEN',
    });
    expect(
      await refusalOf(
        fire(deps, admin, contract.id, 'resolve', { split: { toWorker: 25_000n, toHirer: 1n } }),
      ),
    ).toMatchObject({ code: 'VALIDATION_FAILED' });
    const resolved = await fire(deps, admin, contract.id, 'resolve', { split });
    expect(resolved).toMatchObject({ state: 'resolved', version: 4 });
    expect((await getJob(deps, hirer, job.id)).job.status).toBe('completed');
    await runEscrowTasks(contract.id);
    expect(await available(worker)).toBe(22_500n); // 25 000 − 10 %
    expect(await available(hirer)).toBe(60_000n + 15_000n);
    const detail = await getContract(deps, admin, contract.id);
    expect(detail.transitions.at(-1)).toMatchObject({
      event: 'resolve',
      actor: 'admin',
      actorId: admin.userId,
    });
  });

  it('an admin who is a party is not offered resolve on their own dispute, as firing it is refused', async () => {
    const hirer = await newUser('hirer', 'admin');
    await fund(hirer, 100_000n);
    const admin = await newUser('admin');
    const worker = await newUser('worker');
    const job = await createJob(deps, hirer, jobInput());
    const bid = await placeBid(deps, worker, job.id, { amount: 40_000n, deliveryDays: 5, coverLetter: 'me' });
    const contract = await acceptBid(deps, hirer, bid.id, FRESH);
    expect((await getContract(deps, hirer, contract.id)).available).toEqual(['cancel', 'dispute']);
    await fire(deps, worker, contract.id, 'dispute');
    // The referee is offered resolve; the hirer-admin, a party, is not: fireIn would refuse it (403).
    expect((await getContract(deps, admin, contract.id)).available).toEqual(['resolve']);
    expect((await getContract(deps, hirer, contract.id)).available).toEqual([]);
    expect(
      await refusalOf(
        fire(deps, hirer, contract.id, 'resolve', { split: { toWorker: 0n, toHirer: 40_000n } }),
      ),
    ).toMatchObject({ code: 'FORBIDDEN' });
    await fire(deps, admin, contract.id, 'resolve', { split: { toWorker: 20_000n, toHirer: 20_000n } });
    await runEscrowTasks(contract.id);
  });

  it('the auto-approve timer approves the delivery it was set for, and is a no-op once the state moved on', async () => {
    const { hirer, worker, bidId } = await market(100_000n, 40_000n);
    const contract = await acceptBid(deps, hirer, bidId, FRESH);
    const first = await fire(deps, worker, contract.id, 'deliver');
    await fire(deps, hirer, contract.id, 'request_changes');
    const second = await fire(deps, worker, contract.id, 'deliver');
    // Run before its time (a clock ahead elsewhere, a promoted task): refused, retried later.
    await expect(autoApprove(deps, contract.id, second.version)).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'TIMER_EARLY' },
    });
    expect((await getContract(deps, hirer, contract.id)).contract.state).toBe('delivered');
    // The first delivery's timer fires late: the contract is at a later version.
    expect(await autoApprove(whenDue(), contract.id, first.version)).toBe('stale');
    expect((await getContract(deps, hirer, contract.id)).contract.state).toBe('delivered');
    expect(await autoApprove(whenDue(), contract.id, second.version)).toBe('applied');
    const detail = await getContract(deps, hirer, contract.id);
    expect(detail.contract.state).toBe('completed');
    expect(detail.transitions.at(-1)).toMatchObject({ event: 'auto_approve', actor: 'timer', actorId: null });
    expect(await autoApprove(whenDue(), contract.id, second.version)).toBe('stale');
    expect((await eventsOf('contract.auto_approve', contract.id))[0]?.payload).toMatchObject({
      escrow: 'release',
      notify: [hirer.userId, worker.userId],
    });
    await runEscrowTasks(contract.id);
    expect(await available(worker)).toBe(36_000n);

    // Approved by the hirer first: the timer finds nothing to do.
    const other = await market(100_000n, 40_000n);
    const contract2 = await acceptBid(deps, other.hirer, other.bidId, FRESH);
    const delivered = await fire(deps, other.worker, contract2.id, 'deliver');
    await fire(deps, other.hirer, contract2.id, 'approve');
    expect(await autoApprove(whenDue(), contract2.id, delivered.version)).toBe('stale');
    expect(await eventsOf('contract.auto_approve', contract2.id)).toEqual([]);
    expect(await autoApprove(whenDue(), randomUUID() as ContractId, 2)).toBe('stale');
    await runEscrowTasks(contract2.id);
  });

  it('once autoApproveAt passed and the timer has not run yet: request changes and dispute are refused (409), the timer still completes it and the worker is paid once', async () => {
    const { hirer, worker, job, bidId } = await market(100_000n, 40_000n);
    const contract = await acceptBid(deps, hirer, bidId, FRESH);
    const delivered = await fire(deps, worker, contract.id, 'deliver');
    const autoApproveAt = delivered.autoApproveAt?.toISOString();
    expect(autoApproveAt).toBeDefined();
    // Before the deadline the hirer is offered (and may fire) both.
    expect((await getContract(deps, hirer, contract.id)).available).toEqual([
      'request_changes',
      'approve',
      'dispute',
    ]);
    expect((await getContract(deps, worker, contract.id)).available).toEqual(['dispute']);

    // The deadline passed (the clock is past autoApproveAt); the delayed task has not run.
    const due = whenDue();
    const admin = await newUser('admin');
    expect((await getContract(due, hirer, contract.id)).available).toEqual(['approve']);
    expect((await getContract(due, worker, contract.id)).available).toEqual([]);
    expect((await getContract(due, admin, contract.id)).available).toEqual([]);
    const refused = (event: 'request_changes' | 'dispute') => ({
      code: 'INVALID_TRANSITION',
      details: { state: 'delivered', event, guard: 'beforeAutoApprove', autoApproveAt },
    });
    expect(
      await refusalOf(fire(due, hirer, contract.id, 'request_changes', { message: 'One more round?' })),
    ).toMatchObject(refused('request_changes'));
    expect(await refusalOf(fire(due, hirer, contract.id, 'dispute', { message: 'Too late?' }))).toMatchObject(
      refused('dispute'),
    );
    // At the version the hirer saw (If-Match) it is still refused, by the state, not the version.
    expect(
      await refusalOf(
        fire(due, hirer, contract.id, 'request_changes', { expectedVersion: delivered.version }),
      ),
    ).toMatchObject(refused('request_changes'));
    // A stale If-Match is still answered as before.
    expect(await refusalOf(fire(due, hirer, contract.id, 'dispute', { expectedVersion: 1 }))).toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'VERSION_MISMATCH', version: delivered.version },
    });
    // The worker cannot dispute a delivery approved at the deadline either; the wrong party is 403.
    expect(await refusalOf(fire(due, worker, contract.id, 'dispute'))).toMatchObject(refused('dispute'));
    expect(await refusalOf(fire(due, worker, contract.id, 'request_changes'))).toMatchObject({
      code: 'FORBIDDEN',
    });
    // Nothing moved: same state and version, no event of either.
    const still = await getContract(due, hirer, contract.id);
    expect(still.contract).toMatchObject({ state: 'delivered', version: delivered.version });
    expect(await eventsOf('contract.request_changes', contract.id)).toEqual([]);
    expect(await eventsOf('contract.dispute', contract.id)).toEqual([]);

    // The timer runs late: it approves the delivery it was set for and the escrow is released once.
    expect(await autoApprove(due, contract.id, delivered.version)).toBe('applied');
    expect(await autoApprove(due, contract.id, delivered.version)).toBe('stale');
    const done = await getContract(due, hirer, contract.id);
    expect(done.contract).toMatchObject({ state: 'completed', version: delivered.version + 1 });
    expect(done.transitions.at(-1)).toMatchObject({ event: 'auto_approve', actor: 'timer', actorId: null });
    expect(done.available).toEqual([]);
    expect((await getJob(deps, hirer, job.id)).job.status).toBe('completed');
    expect(await eventsOf('contract.auto_approve', contract.id)).toHaveLength(1);
    await runEscrowTasks(contract.id);
    await escrowTask({ payments: testDb.deps, log }, { contractId: contract.id, action: 'release' });
    expect(await available(worker)).toBe(36_000n); // 40 000 − 10 % fee, once
    expect(await available(hirer)).toBe(60_000n);
    expect(await findEscrow(db, contract.id)).toMatchObject({ status: 'released' });
    const releases = await db
      .selectFrom('ledger_transactions')
      .select('id')
      .where('kind', '=', 'escrow_release')
      .where('contract_id', '=', contract.id)
      .execute();
    expect(releases).toHaveLength(1);
  });
});
