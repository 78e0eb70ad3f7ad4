/**
 * The `marketplace` queue worker: the contract timers of issue 12. `contracts.auto-approve` approves
 * a delivery CONTRACT_AUTO_APPROVE_S after it was made, unless the contract moved on (the task is
 * keyed by contract and version; a stale one is a no-op). `reviews.publish` closes a contract's
 * review window: a lone review is published then. Both re-read the database, so a task that runs
 * twice (a retry, a relay re-enqueuing) changes nothing the second time. Besides the tasks, each
 * worker sweeps now and then for review windows closed with a review still blind whose task is
 * gone (`publishOverdueReviews`): the auto-approve timer has the payments reconciler for that.
 */
import { UnrecoverableError, type Worker } from 'bullmq';
import type { ContractId } from '../../../protocol/src/ids.js';
import { autoApprove, type ContractDeps } from '../../domain/marketplace/contracts.js';
import { closeReviewWindow, publishOverdueReviews } from '../../domain/marketplace/reviews.js';
import type { AppError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import { runTask } from '../../platform/queues/retry.js';
import { startTaskWorker } from '../../platform/queues/task-worker.js';
import { parseTaskPayload, tasks } from '../../platform/queues/tasks.js';
import type { Redis } from '../../platform/redis.js';

export interface MarketplaceWorkerDeps {
  readonly contracts: ContractDeps;
  readonly log: Logger;
  readonly connection: Redis;
  readonly redisPrefix: string;
  readonly lockMs: number;
  /**
   * How often this worker looks for review windows closed longer than this ago with a review still
   * blind (their `reviews.publish` task lost); default REVIEW_SWEEP_MS, 0 = never.
   */
  readonly reviewSweepMs?: number;
}

/** Default of `reviewSweepMs`. */
export const REVIEW_SWEEP_MS = 10 * 60_000;
/** Contracts one sweep publishes at most; the rest wait for the next. */
const REVIEW_SWEEP_BATCH = 100;

/**
 * The CONFLICT reasons of a timer run before its time (the clock of the node that scheduled it is
 * behind this one's, or a delayed task was promoted by hand): `autoApprove` refuses with
 * TIMER_EARLY, `closeReviewWindow` with REVIEW_WINDOW_OPEN, both so that the task is tried again
 * with its back-off until the time has come. Every other CONFLICT fails the task for good
 * (`retryByCode`).
 */
const NOT_YET_REASONS: ReadonlySet<unknown> = new Set(['TIMER_EARLY', 'REVIEW_WINDOW_OPEN']);

/** Whether a refusal only means "too early": retried although CONFLICT is not. */
export const isTimerEarly = (error: AppError): boolean =>
  error.code === 'CONFLICT' && NOT_YET_REASONS.has(error.details?.reason);

/** Runs one task as the worker would; an AppError no retry can change fails it for good (`runTask`). */
export function runMarketplaceTask(deps: MarketplaceWorkerDeps, name: string, data: unknown): Promise<void> {
  return runTask(() => runMarketplaceTaskOnce(deps, name, data), { retryAlso: isTimerEarly });
}

async function runMarketplaceTaskOnce(
  deps: MarketplaceWorkerDeps,
  name: string,
  data: unknown,
): Promise<void> {
  switch (name) {
    case 'contracts.auto-approve': {
      const payload = parseTaskPayload('contracts.auto-approve', data);
      // Early: CONFLICT TIMER_EARLY, retried with back-off until the delivery's review period ended.
      const outcome = await autoApprove(deps.contracts, payload.contractId as ContractId, payload.version);
      deps.log.info({ ...payload, outcome }, 'auto-approve timer fired');
      return;
    }
    case 'reviews.publish': {
      const payload = parseTaskPayload('reviews.publish', data);
      // Early (another node's clock ahead): CONFLICT REVIEW_WINDOW_OPEN, retried with back-off
      // until the window closed.
      const result = await closeReviewWindow(deps.contracts, payload.contractId as ContractId);
      deps.log.info({ ...payload, published: result.published }, 'review window closed');
      return;
    }
    default:
      throw new UnrecoverableError(`unknown marketplace task ${name}`);
  }
}

export function startMarketplaceWorker(deps: MarketplaceWorkerDeps): Worker {
  const worker = startTaskWorker(
    tasks['contracts.auto-approve'].queue,
    async (job) => runMarketplaceTask(deps, job.name, job.data),
    { ...deps, concurrency: 4, what: 'marketplace' },
  );
  const sweepMs = deps.reviewSweepMs ?? REVIEW_SWEEP_MS;
  if (sweepMs > 0) {
    let closing = false;
    let timer: NodeJS.Timeout | undefined;
    const sweep = async () => {
      try {
        // Windows closed a sweep interval ago: a task on time has published them by then.
        const { contracts, published, failed } = await publishOverdueReviews(
          deps.contracts,
          new Date(deps.contracts.clock.now().getTime() - sweepMs),
          REVIEW_SWEEP_BATCH,
        );
        if (contracts.length > 0) {
          deps.log.warn(
            { contracts: contracts.length, published },
            'review windows closed with a review still blind: published by the sweep (their reviews.publish task was lost)',
          );
        }
        for (const { contractId, error } of failed) {
          deps.log.warn(
            { err: error, contractId },
            'review window sweep could not publish; tried again next time',
          );
        }
      } catch (error) {
        deps.log.warn({ err: error }, 'review window sweep failed; tried again at the next one');
      }
      if (!closing) {
        timer = setTimeout(() => void sweep(), sweepMs);
        timer.unref();
      }
    };
    timer = setTimeout(() => void sweep(), sweepMs);
    timer.unref();
    worker.on('closing', () => {
      closing = true;
      clearTimeout(timer);
    });
  }
  return worker;
}
