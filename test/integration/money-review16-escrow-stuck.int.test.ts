/**
 * Money review 16: a contract's escrow move whose task gave up is not stuck for good. The hirer
 * approves; the relay enqueues the release; the database is down for longer than the task's retries
 * (cut to 1 attempt here, as payments-stuck-tasks.int does), so the task lands in the failed set
 * with the escrow still held. Before the fix nothing enqueued it again (its outbox event was
 * published): the contract said completed and the worker was never paid. Now the payments
 * reconciler queues the move again once the contract ended longer than PAYMENTS_RECONCILE_AFTER_S
 * ago, and the money moves once. Likewise a delivery whose auto-approve timer task gave up: past
 * its autoApproveAt the hirer can no longer ask for changes or dispute, so before the fix the
 * contract stayed delivered and the escrow held for good unless the hirer chose to approve.
 * Real PostgreSQL, Redis, BullMQ payments and marketplace workers and outbox relay.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CategoryId, ContractId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { findCategoryBySlug } from '../../src/db/repositories/jobs.repo.js';
import { findEscrow } from '../../src/db/repositories/ledger.repo.js';
import { startOutboxRelay } from '../../src/domain/events/relay.js';
import { placeBid } from '../../src/domain/marketplace/bids.js';
import { acceptBid, type ContractDeps, fire } from '../../src/domain/marketplace/contracts.js';
import { createJob } from '../../src/domain/marketplace/jobs.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import type { PaymentsDeps } from '../../src/domain/payments/ledger.js';
import { startPaymentReconciler } from '../../src/domain/payments/reconciler.js';
import { topUp, walletBalance } from '../../src/domain/payments/wallet.js';
import { systemClock } from '../../src/platform/clock.js';
import { createTaskQueue, type TaskQueue, taskId, tasks } from '../../src/platform/queues/tasks.js';
import { systemTimers } from '../../src/platform/timers.js';
import { startMarketplaceWorker } from '../../src/workers/marketplace/processor.js';
import { startPaymentsWorker } from '../../src/workers/payments/processor.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { insertActor } from '../support/payments-db.js';
import { untilDefined } from '../support/poll.js';

describe('an escrow move whose task gave up', () => {
  let database: TestDatabase;
  let handle: DbHandle;
  /** A pool on a database dropped at start: every query fails, as in an outage. */
  let down: DbHandle;
  let redis: Redis;
  let producer: TaskQueue;
  let paymentsQueue: Queue;
  let marketplaceQueue: Queue;
  let payments: PaymentsDeps;
  let contracts: ContractDeps;
  let design: CategoryId;
  const prefix = uniqueRedisPrefix();
  const logs = captureLogs();
  const closers: (() => Promise<unknown>)[] = [];
  /** While true, the relay enqueues tasks with 1 attempt (an outage outlasting their retries). */
  let outage = false;

  let worker: ReturnType<typeof startPaymentsWorker> | undefined;
  const useWorker = async (db: DbHandle['db']) => {
    await worker?.close();
    worker = startPaymentsWorker({
      payments: { ...payments, db },
      provider: {
        charge: async () => ({ accepted: false, failureCode: 'card_declined' }),
        payout: async () => ({ accepted: false, failureCode: 'payout_failed' }),
        resendOutcome: async () => undefined,
      },
      log: logs.log,
      connection: redis,
      redisPrefix: prefix,
      lockMs: 5_000,
    });
  };

  let timers: ReturnType<typeof startMarketplaceWorker> | undefined;
  const useTimers = async (db: DbHandle['db']) => {
    await timers?.close();
    timers = startMarketplaceWorker({
      contracts: { ...contracts, db },
      log: logs.log,
      connection: redis,
      redisPrefix: prefix,
      lockMs: 5_000,
    });
  };

  const jobState = async (jobId: string, queue: Queue = paymentsQueue) => {
    const state = await queue.getJobState(jobId);
    return state === 'unknown' ? undefined : state;
  };

  beforeAll(async () => {
    database = await createMigratedDatabase();
    handle = await createDb({ kind: 'postgres', url: database.url, poolMax: 6 }, logs.log);
    const gone = await createMigratedDatabase();
    down = await createDb({ kind: 'postgres', url: gone.url, poolMax: 2 }, logs.log);
    await gone.drop();
    redis = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: null });
    producer = createTaskQueue(redis, prefix);
    const queue = producer.queues().find((candidate) => candidate.name === 'payments');
    const timerQueue = producer.queues().find((candidate) => candidate.name === 'marketplace');
    if (queue === undefined || timerQueue === undefined) throw new Error('no payments or marketplace queue');
    paymentsQueue = queue;
    marketplaceQueue = timerQueue;
    payments = {
      db: handle.db,
      clock: systemClock,
      settings: { currency: 'USD', platformFeeBps: 1000 },
      log: logs.log,
    };
    contracts = {
      db: handle.db,
      clock: systemClock,
      settings: {
        currency: 'USD',
        platformFeeBps: 1000,
        autoApproveMs: 3_600_000,
        reviewWindowMs: 7_200_000,
      },
    };
    design = (await findCategoryBySlug(handle.db, 'design'))?.id as CategoryId;
    const relayQueue: TaskQueue = {
      ...producer,
      enqueue: async (name, payload, key, options) => {
        if (!outage || (name !== 'payments.escrow' && name !== 'contracts.auto-approve')) {
          return producer.enqueue(name, payload, key, options);
        }
        const target = name === 'payments.escrow' ? paymentsQueue : marketplaceQueue;
        await target.add(name, payload, { jobId: taskId(key), attempts: 1, backoff: tasks[name].backoff });
      },
    };
    const relay = startOutboxRelay({
      db: handle.db,
      taskQueue: relayQueue,
      clock: systemClock,
      log: logs.log,
      pollMs: 20,
    });
    closers.push(() => relay.stop());
  }, 60_000);

  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await worker?.close();
    await timers?.close();
    await producer?.close();
    redis?.disconnect();
    await down?.close().catch(() => undefined);
    await handle?.close();
    await database?.drop();
  });

  /** A hirer with 10 000, and a contract of 5 000 delivered by its worker. */
  async function deliveredContract(deps: ContractDeps = contracts) {
    const hirer = await insertActor(handle.db, 'esc_h', 'hirer');
    const contractor = await insertActor(handle.db, 'esc_w', 'worker');
    await topUp(payments, { opKey: randomUUID(), userId: hirer.userId, amount: 10_000n });
    const job = await createJob(contracts, hirer, {
      categoryId: design,
      title: 'Menu card',
      description: 'Two pages.',
      skills: ['print'],
      budget: { kind: 'fixed', amount: 5_000n, currency: 'USD' },
      location: null,
      remote: true,
      deadline: null,
    });
    const bid = await placeBid(contracts, contractor, job.id, {
      amount: 5_000n,
      deliveryDays: 2,
      coverLetter: 'yes',
    });
    const contract = await acceptBid(contracts, hirer, bid.id, bid.version);
    const contractId = contract.id as ContractId;
    await fire(deps, contractor, contractId, 'deliver');
    return { hirer, contractor, contractId };
  }

  const reconcilerOf = () => {
    const reconciler = startPaymentReconciler({
      db: handle.db,
      provider: { resendOutcome: async () => undefined },
      timers: systemTimers,
      log: logs.log,
      afterMs: 3_600_000,
      payoutReturnWindowMs: 0,
    });
    closers.push(() => reconciler.stop());
    return reconciler;
  };

  it('a release is queued again by the reconciler once the contract ended: the worker is paid, once', async () => {
    const { hirer, contractor, contractId } = await deliveredContract();

    // The database goes down as the hirer's approval is relayed: the release runs out of retries.
    outage = true;
    await useWorker(down.db);
    await fire(contracts, hirer, contractId, 'approve');
    const releaseTask = taskId('escrow', contractId, 'release');
    await untilDefined(
      async () => ((await jobState(releaseTask)) === 'failed' ? true : undefined),
      'the release task to fail for good',
    );
    outage = false;
    await useWorker(handle.db);
    expect((await findEscrow(handle.db, contractId))?.status).toBe('held');

    const reconciler = reconcilerOf();
    // Ended a moment ago: its task may still be retrying, so it is left alone.
    expect((await reconciler.runOnce()).escrowsRequeued).toBe(0);
    await sql`update contracts set updated_at = now() - interval '2 hours' where id = ${contractId}`.execute(
      handle.db,
    );
    expect((await reconciler.runOnce()).escrowsRequeued).toBe(1);
    await untilDefined(
      async () => ((await findEscrow(handle.db, contractId))?.status === 'released' ? true : undefined),
      'the escrow to be released',
    );
    // 5 000 less the 10 % fee; the hirer paid once.
    expect((await walletBalance(payments, contractor.userId)).available).toBe(4_500n);
    expect((await walletBalance(payments, hirer.userId)).available).toBe(5_000n);

    // Settled: later passes queue nothing for it, and nothing moves twice.
    expect((await reconciler.runOnce()).escrowsRequeued).toBe(0);
    await sleep(300);
    expect((await walletBalance(payments, contractor.userId)).available).toBe(4_500n);
    expect((await auditLedger(handle.db)).findings).toEqual([]);
  }, 60_000);

  it('an auto-approve timer is queued again once the delivery is overdue: completed, the worker paid once', async () => {
    // Deliveries approved by the clock a moment after they are made.
    const due = { ...contracts, settings: { ...contracts.settings, autoApproveMs: 200 } };
    outage = true;
    await useTimers(down.db);
    await useWorker(handle.db);
    const { hirer, contractor, contractId } = await deliveredContract(due);
    const timerTask = taskId('contract', contractId, 'auto-approve', '2');
    await untilDefined(
      async () => ((await jobState(timerTask, marketplaceQueue)) === 'failed' ? true : undefined),
      'the auto-approve task to fail for good',
    );
    outage = false;
    await useTimers(handle.db);
    await sleep(300);
    const held = await handle.db
      .selectFrom('contracts')
      .select(['state', 'version'])
      .where('id', '=', contractId)
      .executeTakeFirstOrThrow();
    expect(held).toEqual({ state: 'delivered', version: 2 });
    // Past autoApproveAt nobody but the hirer's approve could end it: no changes, no dispute.
    await expect(fire(contracts, hirer, contractId, 'request_changes')).rejects.toMatchObject({
      code: 'INVALID_TRANSITION',
    });

    const reconciler = reconcilerOf();
    expect((await reconciler.runOnce()).autoApprovalsRequeued).toBe(0);
    await sql`update contracts set auto_approve_at = now() - interval '2 hours' where id = ${contractId}`.execute(
      handle.db,
    );
    expect((await reconciler.runOnce()).autoApprovalsRequeued).toBe(1);
    await untilDefined(
      async () => ((await findEscrow(handle.db, contractId))?.status === 'released' ? true : undefined),
      'the delivery to be approved and the escrow released',
    );
    expect((await walletBalance(payments, contractor.userId)).available).toBe(4_500n);
    expect((await walletBalance(payments, hirer.userId)).available).toBe(5_000n);
    expect((await reconciler.runOnce()).autoApprovalsRequeued).toBe(0);
    await sleep(300);
    expect((await walletBalance(payments, contractor.userId)).available).toBe(4_500n);
    expect((await auditLedger(handle.db)).findings).toEqual([]);
  }, 60_000);
});
