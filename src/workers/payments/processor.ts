/**
 * The `payments` queue worker. `payments.apply-event` applies one received provider webhook event
 * (keyed by the event id; the event row, locked while `received`, decides whether it already was).
 * `payments.submit` sends one payment to the provider (the task id is the payment id, so the outbox
 * relay enqueuing it again is a no-op). What already happened is read
 * from the database, never from Redis: a worker killed before the provider call, or after it but
 * before its answer was recorded, leaves the payment pending and unsubmitted, and the retry calls the
 * provider again with the same payment id — the provider answers the same, sends the same events,
 * and the events are applied once by their ids. Money moves only when an event is applied, in the
 * transaction that records it. A task that exhausts its retries fails a top-up the provider never
 * accepted (`provider_unavailable`; a late success is still credited, and the reconciler asks the provider
 * whether it charged it, in case that webhook is lost) and leaves a withdrawal pending
 * with its amount reserved (the payout may have left) until the reconciler submits it again
 * (`submitExhausted`).
 */

import { UnrecoverableError, type Worker } from 'bullmq';
import type { ContractId } from '../../../protocol/src/ids.js';
import { findContract } from '../../db/repositories/contracts.repo.js';
import { findEscrow } from '../../db/repositories/ledger.repo.js';
import { findPayment, findUserOfProviderEvent } from '../../db/repositories/payments.repo.js';
import { escrowMovesOf } from '../../domain/marketplace/contract-process.js';
import { resolvedSplit } from '../../domain/marketplace/contracts.js';
import { refundEscrow, releaseEscrow, splitEscrow } from '../../domain/payments/escrow.js';
import type { PaymentsDeps } from '../../domain/payments/ledger.js';
import {
  applyReceivedProviderEvent,
  failUnsubmittedPayment,
  submitPayment,
} from '../../domain/payments/payments.js';
import type { PaymentProvider } from '../../domain/payments/provider.js';
import type { AnnounceWalletChange } from '../../domain/payments/wallet-service.js';
import { AppError, isAppError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import { runTask, unrecoverable } from '../../platform/queues/retry.js';
import { startTaskWorker } from '../../platform/queues/task-worker.js';
import { parseTaskPayload, type TaskPayload, tasks } from '../../platform/queues/tasks.js';
import type { Redis } from '../../platform/redis.js';

export interface PaymentsWorkerDeps {
  readonly payments: PaymentsDeps;
  /** Tells the user's sockets their balance may have changed, after an event was applied. */
  readonly announce?: AnnounceWalletChange;
  readonly provider: PaymentProvider;
  readonly log: Logger;
  readonly connection: Redis;
  readonly redisPrefix: string;
  /** Milliseconds before a task held by a dead worker is handed to another (TASK_LOCK_MS). */
  readonly lockMs: number;
}

/**
 * An unknown payment (NOT_FOUND) fails for good, as every AppError `retryByCode` does not retry.
 * A withdrawal the provider declines at once gives its reservation back: its owner's sockets are
 * told (`wallet`), as for every other balance change.
 */
export function submitPaymentTask(
  deps: Pick<PaymentsWorkerDeps, 'payments' | 'provider' | 'log' | 'announce'>,
  payload: TaskPayload<'payments.submit'>,
  attempt: number,
): Promise<void> {
  return runTask(async () => {
    deps.log.info({ paymentId: payload.paymentId, attempt }, 'payment task started');
    const outcome = await submitPayment(deps.payments, deps.provider, payload.paymentId);
    deps.log.info({ paymentId: payload.paymentId, outcome }, 'payment task done');
    if (outcome === 'declined' && deps.announce !== undefined) {
      // Best effort, like every balance push: the decline is stored, so a failed read here must not
      // fail (and retry) the task.
      const payment = await findPayment(deps.payments.db, payload.paymentId).catch((error: unknown) => {
        deps.log.warn({ err: error, paymentId: payload.paymentId }, 'declined payout: balance push skipped');
        return undefined;
      });
      if (payment?.kind === 'withdrawal') deps.announce([payment.userId]);
    }
  });
}

/**
 * A stored event row that no longer parses (AppError INTERNAL) fails for good at once: its row
 * stays `received`, and an operator retries the task once the row is repaired.
 */
export function applyEventTask(
  deps: PaymentsWorkerDeps,
  payload: TaskPayload<'payments.apply-event'>,
): Promise<void> {
  return runTask(async () => {
    const outcome = await applyReceivedProviderEvent(deps.payments, payload.eventId);
    deps.log.info({ webhookId: payload.eventId, outcome }, 'provider event applied');
    if (deps.announce !== undefined) {
      const userId = await findUserOfProviderEvent(deps.payments.db, payload.eventId);
      if (userId !== undefined) deps.announce([userId]);
    }
  });
}

/**
 * A `payments.submit` task out of retries, the provider's answer never recorded. Whether the provider
 * acted is unknown (a timed-out call may have gone through), so:
 * - a top-up fails (`provider_unavailable`): if the charge did happen, its success still arrives and
 *   is honoured (the wallet is credited then); should that webhook be lost, the reconciler asks the
 *   provider whether it charged the top-up (reconciler.ts, 8);
 * - a withdrawal stays pending with its amount reserved: failing it would hand the money back while
 *   the payout may have left, and a `payout.paid` after a failure is ignored. An operator reconciles
 *   it with the provider (the error line names it); no money is lost or doubled meanwhile.
 */
export async function submitExhausted(
  deps: Pick<PaymentsWorkerDeps, 'payments' | 'log'>,
  paymentId: string,
): Promise<void> {
  const payment = await findPayment(deps.payments.db, paymentId);
  if (payment === undefined || payment.status !== 'pending') return;
  if (payment.kind === 'withdrawal') {
    deps.log.error(
      { paymentId, kind: payment.kind, amount: Number(payment.amount) },
      'withdrawal left pending (amount still reserved): the provider never answered; the reconciler submits it again after PAYMENTS_RECONCILE_AFTER_S',
    );
    return;
  }
  if (await failUnsubmittedPayment(deps.payments, paymentId)) {
    deps.log.error({ paymentId, kind: payment.kind }, 'payment failed: provider unavailable');
  }
}

/**
 * A scheduled escrow move. Settled outcomes are final, not failures: a release after a release is a
 * no-op (replayed), and a release after a refund (or the reverse) is CONFLICT — the contract was
 * settled the other way first, which the task must not undo. An unknown escrow cannot become known
 * by retrying (NOT_FOUND fails for good through `runTask`, as every AppError `retryByCode` does not
 * retry).
 */
export function escrowTask(
  deps: Pick<PaymentsWorkerDeps, 'payments' | 'log' | 'announce'>,
  payload: TaskPayload<'payments.escrow'>,
): Promise<void> {
  return runTask(() => moveEscrowTask(deps, payload));
}

async function moveEscrowTask(
  deps: Pick<PaymentsWorkerDeps, 'payments' | 'log' | 'announce'>,
  payload: TaskPayload<'payments.escrow'>,
): Promise<void> {
  const contract = await findContract(deps.payments.db, payload.contractId as ContractId);
  if (contract === undefined) throw new UnrecoverableError('the contract does not exist');
  if (!escrowMovesOf(contract.state).has(payload.action)) {
    deps.log.error(
      { ...payload, state: contract.state },
      "escrow task refused: the contract's state did not decide this move",
    );
    throw new UnrecoverableError(`a ${contract.state} contract's escrow is not to ${payload.action}`);
  }
  try {
    const result = await moveEscrow(deps.payments, payload);
    deps.log.info(
      { ...payload, transactionId: result.transactionId, replayed: result.replayed },
      'escrow moved',
    );
    const escrow = await findEscrow(deps.payments.db, payload.contractId);
    if (escrow !== undefined) deps.announce?.([escrow.hirerId, escrow.workerId]);
  } catch (error) {
    if (isAppError(error) && error.details?.reason === 'BALANCE_LIMIT') {
      // Not expected: a party's wallet at the cap gets its share parked (escrow.ts) and the
      // platform's fee account is not capped (rules.ts). Should a balance refuse all the same,
      // nothing moved and the escrow is still held; kept in the failed set for an operator.
      deps.log.error({ ...payload }, 'escrow not moved: the receiving wallet is at its balance limit');
      throw unrecoverable(error);
    }
    // Deliberate: any other CONFLICT (settled the other way first) ends the task as done, not failed.
    if (isAppError(error) && error.code === 'CONFLICT') {
      deps.log.warn({ ...payload, reason: error.message }, 'escrow already settled otherwise; task ends');
      return;
    }
    throw error;
  }
}

async function moveEscrow(payments: PaymentsDeps, payload: TaskPayload<'payments.escrow'>) {
  switch (payload.action) {
    case 'release':
      return releaseEscrow(payments, payload.contractId);
    case 'refund':
      return refundEscrow(payments, payload.contractId);
    case 'split': {
      // The amounts are the resolve transition's, read here: a task payload carries ids only.
      const split = await resolvedSplit(payments, payload.contractId as ContractId);
      if (split === undefined) throw new AppError('NOT_FOUND', 'the contract has no resolve transition');
      return splitEscrow(payments, { contractId: payload.contractId, ...split });
    }
  }
}

export function startPaymentsWorker(deps: PaymentsWorkerDeps): Worker {
  const definition = tasks['payments.submit'];
  return startTaskWorker(
    definition.queue,
    async (job) => {
      if (job.name === 'payments.escrow') {
        return escrowTask(deps, parseTaskPayload('payments.escrow', job.data));
      }
      if (job.name === 'payments.apply-event') {
        return applyEventTask(deps, parseTaskPayload('payments.apply-event', job.data));
      }
      return submitPaymentTask(deps, parseTaskPayload('payments.submit', job.data), job.attemptsMade + 1);
    },
    {
      ...deps,
      concurrency: 4,
      what: 'payment',
      onFinalFailure: (job) => {
        // An exhausted apply-event task stays in the failed set and its event `received`: an
        // operator retries the task once the cause is fixed.
        if (job.name !== 'payments.submit') return;
        const payload = definition.payload.safeParse(job.data);
        if (!payload.success) return;
        // The task is kept (failed set) for inspection.
        void submitExhausted(deps, payload.data.paymentId).catch((failure: unknown) =>
          deps.log.error(
            { err: failure, paymentId: payload.data.paymentId },
            'could not settle an exhausted payment',
          ),
        );
      },
    },
  );
}
