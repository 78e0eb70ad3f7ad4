/**
 * What a committed `contract.<event>` outbox event causes (issue 12 §3), run by the outbox relay:
 * - the escrow move its transition decided (`escrow`: release / refund / split) on the payments
 *   queue, keyed by contract and action, so however often the event is relayed the money moves once;
 * - the auto-approve timer of a delivery (`autoApproveAt`), keyed by contract and version, delayed
 *   until then; the task re-reads the contract and does nothing if the state moved on;
 * - the review-window timer (`reviewDeadlineAt`), keyed by contract.
 * The job room's system message is pushed live after the relay's commit (live.ts).
 */
import { ContractId } from '../../../protocol/src/ids.js';
import type { OutboxEventRow } from '../../db/repositories/outbox.repo.js';
import { taskId } from '../../platform/queues/tasks.js';
import type { RelayTargets } from './targets.js';

const ESCROW_ACTIONS = ['release', 'refund', 'split'] as const;
type EscrowAction = (typeof ESCROW_ACTIONS)[number];
const isEscrowAction = (value: unknown): value is EscrowAction =>
  typeof value === 'string' && (ESCROW_ACTIONS as readonly string[]).includes(value);

const delayUntil = (iso: unknown, now: Date): number | undefined => {
  if (typeof iso !== 'string') return undefined;
  const at = Date.parse(iso);
  return Number.isFinite(at) ? Math.max(0, at - now.getTime()) : undefined;
};

export async function dispatchContractEvent(event: OutboxEventRow, targets: RelayTargets): Promise<void> {
  const payload = event.payload;
  const contractId = ContractId.safeParse(payload.contractId);
  if (!contractId.success) return;
  const id = contractId.data;
  const { taskQueue, clock } = targets;
  if (isEscrowAction(payload.escrow)) {
    await taskQueue.enqueue(
      'payments.escrow',
      { contractId: id, action: payload.escrow },
      taskId('escrow', id, payload.escrow),
    );
  }
  const approveIn = delayUntil(payload.autoApproveAt, clock.now());
  const version = payload.version;
  if (
    approveIn !== undefined &&
    typeof version === 'number' &&
    Number.isSafeInteger(version) &&
    version > 0
  ) {
    await taskQueue.enqueue(
      'contracts.auto-approve',
      { contractId: id, version },
      taskId('contract', id, 'auto-approve', String(version)),
      { delayMs: approveIn },
    );
  }
  const reviewsIn = delayUntil(payload.reviewDeadlineAt, clock.now());
  if (reviewsIn !== undefined) {
    await taskQueue.enqueue('reviews.publish', { contractId: id }, taskId('contract', id, 'reviews'), {
      delayMs: reviewsIn,
    });
  }
}
