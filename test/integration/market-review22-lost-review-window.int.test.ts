/**
 * Marketplace review 22: a lone review whose review-window task was lost stayed blind for good.
 *
 * After a contract ends, one party reviews; the other does not. The review is published when the
 * window closes by the `reviews.publish` task, a BullMQ task delayed by REVIEW_WINDOW_S (14 days by
 * default) — and by nothing else. Redis restarted without its data lost it: the relay enqueues the
 * tasks of published outbox events again when it notices the loss, but published events are
 * deleted after 7 days, so from day 7 of the window on the task was gone for good (as it was after
 * running out of retries in a long database outage). The review was then never shown to anyone
 * but its author and never counted in its subject's rating, and the window being closed, nobody
 * could do anything about it. Now each marketplace worker sweeps for windows closed with a review
 * still blind and publishes them once. Real PostgreSQL, Redis and BullMQ worker; the loss is a
 * worker on a Redis prefix where the task never was.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CategoryId, ContractId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { findCategoryBySlug } from '../../src/db/repositories/jobs.repo.js';
import { contractsWithOverdueBlindReviews } from '../../src/db/repositories/reviews.repo.js';
import { placeBid } from '../../src/domain/marketplace/bids.js';
import { acceptBid, type ContractDeps, fire } from '../../src/domain/marketplace/contracts.js';
import { createJob } from '../../src/domain/marketplace/jobs.js';
import {
  publishOverdueReviews,
  ratingSummaries,
  reviewsOfContractFor,
  submitReview,
} from '../../src/domain/marketplace/reviews.js';
import { topUp } from '../../src/domain/payments/wallet.js';
import { systemClock } from '../../src/platform/clock.js';
import { startMarketplaceWorker } from '../../src/workers/marketplace/processor.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { capturingDb, explain } from '../support/explain.js';
import { insertActor, TEST_PAYMENT_SETTINGS } from '../support/payments-db.js';
import { untilDefined } from '../support/poll.js';

describe('a review window whose reviews.publish task was lost', () => {
  let database: TestDatabase;
  let handle: DbHandle;
  let redis: Redis;
  let contracts: ContractDeps;
  let design: CategoryId;
  const logs = captureLogs();
  const workers: Worker[] = [];

  beforeAll(async () => {
    database = await createMigratedDatabase();
    handle = await createDb({ kind: 'postgres', url: database.url, poolMax: 6 }, logs.log);
    redis = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: null });
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
  }, 60_000);

  afterAll(async () => {
    for (const worker of workers) await worker.close();
    redis?.disconnect();
    await handle?.close();
    await database?.drop();
  });

  /** A completed contract (hirer approved the delivery), reviewed by its hirer only. */
  async function reviewedByHirerOnly() {
    const hirer = await insertActor(handle.db, 'rw_h', 'hirer');
    const worker = await insertActor(handle.db, 'rw_w', 'worker');
    await topUp(
      { db: handle.db, clock: systemClock, settings: TEST_PAYMENT_SETTINGS, log: logs.log },
      { opKey: randomUUID(), userId: hirer.userId, amount: 10_000n },
    );
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
    const bid = await placeBid(contracts, worker, job.id, {
      amount: 5_000n,
      deliveryDays: 2,
      coverLetter: '',
    });
    const contractId = (await acceptBid(contracts, hirer, bid.id, bid.version)).id as ContractId;
    await fire(contracts, worker, contractId, 'deliver');
    await fire(contracts, hirer, contractId, 'approve');
    const review = await submitReview(contracts, hirer, contractId, { rating: 2, text: 'Late and sloppy.' });
    expect(review.publishedAt).toBeNull();
    // The window closed an hour ago; its reviews.publish task is nowhere (no relay ran here).
    await sql`update contracts set review_deadline_at = now() - interval '1 hour' where id = ${contractId}`.execute(
      handle.db,
    );
    return { hirer, worker, contractId, reviewId: review.id };
  }

  it('a marketplace worker publishes the lone review once the window closed: shown, counted once', async () => {
    const { worker, contractId, reviewId } = await reviewedByHirerOnly();
    expect((await ratingSummaries(contracts, [worker.userId])).get(worker.userId)?.count).toBe(0);

    workers.push(
      startMarketplaceWorker({
        contracts,
        log: logs.log,
        connection: redis,
        redisPrefix: uniqueRedisPrefix(),
        lockMs: 5_000,
        reviewSweepMs: 100,
      }),
    );
    const shown = await untilDefined(async () => {
      const seen = await reviewsOfContractFor(contracts, worker, contractId);
      return seen.data.find((review) => review.id === reviewId);
    }, 'the lone review to be published for the reviewed worker');
    expect(shown).toMatchObject({ rating: 2, text: 'Late and sloppy.' });
    expect(shown.publishedAt).not.toBeNull();

    // Counted once in the worker's rating, one review.published event, however many sweeps ran.
    await sleep(400);
    expect((await ratingSummaries(contracts, [worker.userId])).get(worker.userId)).toMatchObject({
      count: 1,
      average: 2,
    });
    const events = await handle.db
      .selectFrom('outbox_events')
      .select('id')
      .where('type', '=', 'review.published')
      .where(sql<boolean>`payload->>'reviewId' = ${reviewId}`)
      .execute();
    expect(events).toHaveLength(1);
  }, 60_000);

  it('the sweep reads the blind reviews through their partial index (migration 0023), not every review', async () => {
    const capture = capturingDb(handle.db);
    await contractsWithOverdueBlindReviews(capture.db, new Date(), 100);
    const [query] = capture.take();
    if (query === undefined) throw new Error('no query captured');
    const plan = await explain(handle.db, query, { enable_seqscan: 'off' });
    expect(plan).toContain('reviews_blind_idx');
  }, 60_000);

  it('a window still open is left alone: the review stays blind', async () => {
    const { hirer, worker, contractId } = await reviewedByHirerOnly();
    // Reopened: still blind after a sweep, the author alone sees it.
    await sql`update contracts set review_deadline_at = now() + interval '1 hour' where id = ${contractId}`.execute(
      handle.db,
    );
    const run = await publishOverdueReviews(contracts, new Date(), 100);
    expect(run.contracts).not.toContain(contractId);
    expect((await reviewsOfContractFor(contracts, worker, contractId)).data).toEqual([]);
    expect((await reviewsOfContractFor(contracts, hirer, contractId)).data).toHaveLength(1);
  }, 60_000);
});
