/**
 * Payments whose task gave up during a database outage are not stuck for good. Real PostgreSQL,
 * Redis, BullMQ payments worker, outbox relay, signed webhooks through `receiveWebhook` and the
 * sandbox provider; the outage is a worker whose pool reaches a dropped database, and the 54
 * attempts (3 to 3.8 h) a task would have to outlast are cut to 1.
 *
 * - A provider event recorded and never applied (its apply task out of retries): before the fix the
 *   provider's redelivery (same event id, which the reconciler's resend also carries) was dropped
 *   as a duplicate and nothing queued it again, so the top-up was never credited. Now a redelivery
 *   of a still-`received` event queues its task again, and the reconciler does so by itself.
 * - A withdrawal whose submit task gave up (its exhausted handler needing the database too): before
 *   the fix the reconciler only looked at payments the provider had accepted, so it stayed pending
 *   with its amount reserved for good. Now the reconciler queues its submit task again.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { startOutboxRelay } from '../../src/domain/events/relay.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import type { PaymentsDeps } from '../../src/domain/payments/ledger.js';
import { getPayment } from '../../src/domain/payments/payments.js';
import { createPaymentsApi, type WebhookOutcome } from '../../src/domain/payments/payments-service.js';
import type { PaymentProvider, ProviderEvent } from '../../src/domain/payments/provider.js';
import { startPaymentReconciler } from '../../src/domain/payments/reconciler.js';
import { createSandboxProvider, SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { topUp, walletBalance } from '../../src/domain/payments/wallet.js';
import { signWebhook } from '../../src/domain/payments/webhook-signature.js';
import { systemClock } from '../../src/platform/clock.js';
import { createTaskQueue, type TaskQueue, taskId, tasks } from '../../src/platform/queues/tasks.js';
import { systemTimers } from '../../src/platform/timers.js';
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

const SECRET = `whsec_${Buffer.alloc(32, 11).toString('base64')}`;

describe('payments stuck after a task gave up', () => {
  let database: TestDatabase;
  let handle: DbHandle;
  /** A pool on a database dropped at start: every query fails, as in an outage. */
  let down: DbHandle;
  let redis: Redis;
  let producer: TaskQueue;
  let paymentsQueue: Queue;
  let deps: PaymentsDeps;
  let api: ReturnType<typeof createPaymentsApi>;
  const prefix = uniqueRedisPrefix();
  const logs = captureLogs();
  const closers: (() => Promise<unknown>)[] = [];
  /** While true, the relay enqueues tasks with 1 attempt (an outage outlasting their retries). */
  let outage = false;
  /** While true, the sandbox's events are kept here instead of delivered. */
  let holdEvents = false;
  const held: ProviderEvent[] = [];

  /** The provider's webhook, signed as it would send it, through the same code the endpoint calls. */
  const receive = async (event: ProviderEvent): Promise<WebhookOutcome> => {
    const body = JSON.stringify(event);
    const timestamp = Math.floor(Date.now() / 1000);
    return api.receiveWebhook({
      headers: {
        id: event.id,
        timestamp: String(timestamp),
        signature: signWebhook({ secret: SECRET, id: event.id, timestamp, body }),
      },
      body: Buffer.from(body),
    });
  };

  const sandbox = createSandboxProvider({
    timers: systemTimers,
    deliver: async (event) => {
      if (holdEvents) held.push(event);
      else await receive(event);
    },
    // As in production: ids derived from what they name (the same after a restart).
    newId: (seed) => createHash('sha256').update(seed).digest('base64url').slice(0, 24),
    delayedWebhookMs: 3_600_000,
    duplicateEvery: 0,
  });

  let worker: ReturnType<typeof startPaymentsWorker> | undefined;
  /** Replaces the one payments worker: on `db` (the live database or the dropped one). */
  const useWorker = async (db: DbHandle['db'], provider: PaymentProvider = sandbox) => {
    await worker?.close();
    worker = startPaymentsWorker({
      payments: { ...deps, db },
      provider,
      log: logs.log,
      connection: redis,
      redisPrefix: prefix,
      lockMs: 5_000,
    });
  };

  const jobState = (jobId: string) => async () => {
    const state = await paymentsQueue.getJobState(jobId);
    return state === 'unknown' ? undefined : state;
  };

  const statusOf = async (userId: Parameters<typeof getPayment>[1], paymentId: string) =>
    (await getPayment(deps, userId, paymentId)).status;

  beforeAll(async () => {
    database = await createMigratedDatabase();
    handle = await createDb({ kind: 'postgres', url: database.url, poolMax: 6 }, logs.log);
    const gone = await createMigratedDatabase();
    down = await createDb({ kind: 'postgres', url: gone.url, poolMax: 2 }, logs.log);
    await gone.drop();
    redis = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: null });
    producer = createTaskQueue(redis, prefix);
    const queue = producer.queues().find((candidate) => candidate.name === 'payments');
    if (queue === undefined) throw new Error('no payments queue');
    paymentsQueue = queue;
    deps = {
      db: handle.db,
      clock: systemClock,
      settings: { currency: 'USD', platformFeeBps: 1000 },
      log: logs.log,
    };
    api = createPaymentsApi({ ...deps, webhookSecrets: [SECRET] });
    // The relay as production runs it, but during the outage its tasks get a single attempt.
    const relayQueue: TaskQueue = {
      ...producer,
      enqueue: async (name, payload, key, options) => {
        if (!outage) return producer.enqueue(name, payload, key, options);
        await paymentsQueue.add(name, payload, {
          jobId: taskId(key),
          attempts: 1,
          backoff: tasks[name].backoff,
        });
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
    sandbox.stop();
    await producer?.close();
    redis?.disconnect();
    await down?.close().catch(() => undefined);
    await handle?.close();
    await database?.drop();
  });

  /**
   * A top-up the provider accepted whose `charge.succeeded` was recorded while the database was
   * down for longer than its apply task retries: the task is in the failed set, the event row
   * `received`, the payment pending. Returns the event (for redelivery).
   */
  async function topUpWithEventNeverApplied(amount: number) {
    const user = await insertActor(handle.db, 'stuck');
    holdEvents = true;
    await useWorker(handle.db);
    const payment = await handle.db
      .transaction()
      .execute((trx) => api.requestTopUpIn(trx, user.userId, { amount, card: SandboxCard.SUCCEEDS }));
    const event = await untilDefined(
      async () => held.find((candidate) => candidate.data.paymentId === payment.id),
      'the provider to accept the charge',
    );
    outage = true;
    await useWorker(down.db);
    expect(await receive(event)).toBe('queued');
    const applyTask = taskId('provider-event', event.id);
    await untilDefined(
      async () => ((await jobState(applyTask)()) === 'failed' ? true : undefined),
      'the apply task to fail for good',
    );
    outage = false;
    holdEvents = false;
    expect(await statusOf(user.userId, payment.id)).toBe('pending');
    const row = await handle.db
      .selectFrom('provider_events')
      .select('outcome')
      .where('id', '=', event.id)
      .executeTakeFirstOrThrow();
    expect(row.outcome).toBe('received');
    return { user, payment, event, applyTask };
  }

  it('a redelivered event that was recorded but never applied is applied, once', async () => {
    const { user, payment, event, applyTask } = await topUpWithEventNeverApplied(500);

    // The database is back; the provider redelivers (or the reconciler's resend asks it to). Still a
    // duplicate delivery, but the event was never applied: its task is queued again.
    await useWorker(handle.db);
    expect(await receive(event)).toBe('duplicate');
    await untilDefined(
      async () => ((await statusOf(user.userId, payment.id)) === 'succeeded' ? true : undefined),
      'the top-up to be credited',
    );
    expect((await walletBalance(deps, user.userId)).available).toBe(500n);
    expect(await jobState(applyTask)()).toBe('completed');

    // Applied now: further redeliveries are duplicates and move nothing.
    expect(await receive(event)).toBe('duplicate');
    await sleep(300);
    expect((await walletBalance(deps, user.userId)).available).toBe(500n);
    expect((await auditLedger(handle.db)).findings).toEqual([]);
  }, 60_000);

  it('the reconciler queues again an event never applied, without the provider', async () => {
    const { user, payment, event } = await topUpWithEventNeverApplied(700);
    await useWorker(handle.db);
    const resends: string[] = [];
    const reconciler = startPaymentReconciler({
      db: handle.db,
      // Does not resend anything: the event must be recovered from our own records.
      provider: { resendOutcome: async (request) => void resends.push(request.paymentId) },
      timers: systemTimers,
      log: logs.log,
      afterMs: 3_600_000,
      payoutReturnWindowMs: 0,
    });
    // Younger than the threshold: left alone.
    expect((await reconciler.runOnce()).requeued).toBe(0);
    await sql`update provider_events set received_at = now() - interval '2 hours' where id = ${event.id}`.execute(
      handle.db,
    );
    const run = await reconciler.runOnce();
    expect(run.requeued).toBeGreaterThanOrEqual(1);
    await untilDefined(
      async () => ((await statusOf(user.userId, payment.id)) === 'succeeded' ? true : undefined),
      'the top-up to be credited',
    );
    expect((await walletBalance(deps, user.userId)).available).toBe(700n);
    expect(resends).not.toContain(payment.id);
    // Applied: the next passes find nothing to queue for it, and nothing moves twice.
    const later = await reconciler.runOnce();
    expect(later.requeued).toBe(0);
    await sleep(300);
    expect((await walletBalance(deps, user.userId)).available).toBe(700n);
    expect((await auditLedger(handle.db)).findings).toEqual([]);
    await reconciler.stop();
  }, 60_000);

  it('a withdrawal whose submit task gave up during an outage is submitted again by the reconciler, once', async () => {
    const user = await insertActor(handle.db, 'stuck_w');
    await topUp(deps, { opKey: `test:fund:${user.userId}`, userId: user.userId, amount: 1_000n });
    const calls: string[] = [];
    const countingSandbox = {
      ...sandbox,
      payout: (request: Parameters<typeof sandbox.payout>[0]) => {
        calls.push(request.paymentId);
        return sandbox.payout(request);
      },
    };

    // The outage: the submit task and then its exhausted handler both reach no database.
    outage = true;
    await useWorker(down.db);
    const payment = await handle.db
      .transaction()
      .execute((trx) =>
        api.requestWithdrawalIn(trx, user.userId, { amount: 600, bankAccount: 'DE89370400440532013000' }),
      );
    const submitTask = taskId('payment', payment.id);
    await untilDefined(
      async () => ((await jobState(submitTask)()) === 'failed' ? true : undefined),
      'the submit task to fail for good',
    );
    await untilDefined(
      async () =>
        logs
          .lines()
          .some(
            (line) => line.msg === 'could not settle an exhausted payment' && line.paymentId === payment.id,
          )
          ? true
          : undefined,
      'the exhausted handler to fail too',
    );
    outage = false;
    const stuck = await getPayment(deps, user.userId, payment.id);
    expect(stuck).toMatchObject({ status: 'pending', providerRef: null, submittedAt: null });
    expect(await walletBalance(deps, user.userId)).toMatchObject({ available: 400n, pending: 600n });

    // The database is back. A worker and the reconciler, as worker processes run them.
    await useWorker(handle.db, countingSandbox);
    const reconciler = startPaymentReconciler({
      db: handle.db,
      provider: sandbox,
      timers: systemTimers,
      log: logs.log,
      afterMs: 3_600_000,
      payoutReturnWindowMs: 0,
    });
    closers.push(() => reconciler.stop());
    expect((await reconciler.runOnce()).resubmitted).toBe(0);
    await sql`update payments set created_at = now() - interval '2 hours' where id = ${payment.id}`.execute(
      handle.db,
    );
    expect((await reconciler.runOnce()).resubmitted).toBe(1);
    await untilDefined(
      async () => ((await statusOf(user.userId, payment.id)) === 'succeeded' ? true : undefined),
      'the withdrawal to be paid out',
    );
    expect(await walletBalance(deps, user.userId)).toMatchObject({
      available: 400n,
      pending: 0n,
      posted: 400n,
    });
    expect(calls).toEqual([payment.id]);
    expect(await jobState(submitTask)()).toBe('completed');

    // Settled: nothing more to resubmit, and asked again nothing moves twice.
    expect((await reconciler.runOnce()).resubmitted).toBe(0);
    await sleep(300);
    expect(await walletBalance(deps, user.userId)).toMatchObject({
      available: 400n,
      pending: 0n,
      posted: 400n,
    });
    expect(calls).toEqual([payment.id]);
    expect((await auditLedger(handle.db)).findings).toEqual([]);
    await reconciler.stop();
  }, 60_000);
});
