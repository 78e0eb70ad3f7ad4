/**
 * The `marketplace` queue worker: the contract timers of issue 12. `contracts.auto-approve` approves
 * a delivery CONTRACT_AUTO_APPROVE_S after it was made, unless the contract moved on (the task is
 * keyed by contract and version; a stale one is a no-op). `reviews.publish` closes a contract's
 * review window: a lone review is published then. Both re-read the database, so a task that runs
 * twice (a retry, a relay re-enqueuing) changes nothing the second time.
 */
import { Worker as BullWorker, UnrecoverableError, type Worker } from 'bullmq';
import type { ContractId } from '../../../protocol/src/ids.js';
import { autoApprove, type ContractDeps } from '../../domain/marketplace/contracts.js';
import { closeReviewWindow } from '../../domain/marketplace/reviews.js';
import type { Logger } from '../../platform/logger.js';
import { taskWorkerSettings } from '../../platform/queues/backoff.js';
import { bullPrefix, type TaskName, type TaskPayload, tasks } from '../../platform/queues/tasks.js';
import type { Redis } from '../../platform/redis.js';

export interface MarketplaceWorkerDeps {
  readonly contracts: ContractDeps;
  readonly log: Logger;
  readonly connection: Redis;
  readonly redisPrefix: string;
  readonly lockMs: number;
}

function parse<N extends TaskName>(name: N, data: unknown): TaskPayload<N> {
  const payload = tasks[name].payload.safeParse(data);
  if (!payload.success) throw new UnrecoverableError(`invalid payload: ${payload.error.message}`);
  return payload.data as TaskPayload<N>;
}

export async function runMarketplaceTask(
  deps: MarketplaceWorkerDeps,
  name: string,
  data: unknown,
): Promise<void> {
  switch (name) {
    case 'contracts.auto-approve': {
      const payload = parse('contracts.auto-approve', data);
      const outcome = await autoApprove(deps.contracts, payload.contractId as ContractId, payload.version);
      deps.log.info({ ...payload, outcome }, 'auto-approve timer fired');
      return;
    }
    case 'reviews.publish': {
      const payload = parse('reviews.publish', data);
      // Early (another node's clock ahead): CONFLICT, retried with back-off until the window closed.
      const result = await closeReviewWindow(deps.contracts, payload.contractId as ContractId);
      deps.log.info({ ...payload, published: result.published }, 'review window closed');
      return;
    }
    default:
      throw new UnrecoverableError(`unknown marketplace task ${name}`);
  }
}

export function startMarketplaceWorker(deps: MarketplaceWorkerDeps): Worker {
  const worker = new BullWorker(
    tasks['contracts.auto-approve'].queue,
    async (job) => runMarketplaceTask(deps, job.name, job.data),
    {
      connection: deps.connection,
      prefix: bullPrefix(deps.redisPrefix),
      concurrency: 4,
      lockDuration: deps.lockMs,
      stalledInterval: deps.lockMs,
      maxStalledCount: 3,
      // The capped backoff of database-bound tasks (a worker without it cannot retry them).
      settings: taskWorkerSettings,
    },
  );
  worker.on('failed', (job, error) =>
    deps.log.warn({ err: error, taskId: job?.id, attempts: job?.attemptsMade }, 'marketplace task failed'),
  );
  worker.on('error', (error) => deps.log.warn({ err: error }, 'marketplace worker error'));
  return worker;
}
