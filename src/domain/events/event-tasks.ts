/**
 * What each outbox event type causes on the task queues, as one table: the payload's schema and
 * the tasks it enqueues. The relay (relay.ts) looks an event up here; a type without an entry
 * causes no task here (its notifications and live pushes are decided elsewhere).
 *
 * Every task id derives from the event (or from what it names), so however often an event is
 * relayed each task is enqueued once:
 * - auth events mail the user (welcome and verification; at most one registration notice and one
 *   reset mail per account per period — the key ignores the event id);
 * - `payment.requested` submits the payment, `provider-event.received` applies the webhook event;
 * - `contract.<event>` (issue 12 §3) enqueues the escrow move its transition decided (release /
 *   refund / split, keyed by contract and action: the money moves once), the auto-approve timer of a
 *   delivery (keyed by contract and version; the task re-reads the contract and does nothing if the
 *   state moved on) and the review-window timer (keyed by contract). The job room's system message
 *   is pushed live after the relay marked the event (live.ts).
 *
 * A payload that does not match its schema is refused here with the issues that name why, instead
 * of being half-read: the relay logs it and publishes the event without its tasks (relay.ts).
 */
import { z } from 'zod';
import { ContractId, UserId } from '../../../protocol/src/ids.js';
import type { OutboxEventRow } from '../../db/repositories/outbox.repo.js';
import { tasks as taskDefinitions, taskId } from '../../platform/queues/tasks.js';
import { AuthEvent } from '../auth/service.js';
import { CONTRACT_EVENT_PREFIX } from '../marketplace/events.js';
import { PAYMENT_REQUESTED, PROVIDER_EVENT_RECEIVED } from '../payments/payments-service.js';
import type { RelayTargets } from './targets.js';

interface EventTasks<S extends z.ZodType> {
  readonly payload: S;
  readonly enqueue: (event: OutboxEventRow, payload: z.infer<S>, targets: RelayTargets) => Promise<void>;
}

const eventTasks = <S extends z.ZodType>(
  payload: S,
  enqueue: EventTasks<S>['enqueue'],
): EventTasks<z.ZodType> => ({ payload, enqueue: enqueue as EventTasks<z.ZodType>['enqueue'] });

/** A clock-aligned window number (written since the per-period mail limits; older events lack it). */
const Period = z.number().int().nonnegative().optional();

const mail = (
  targets: RelayTargets,
  template: 'welcome' | 'verify-email' | 'reset-password' | 'registration-attempt',
  userId: UserId,
  key: string,
) => targets.taskQueue.enqueue('emails.send', { template, userId, key }, key);

/** Instants of the contract's timers: a task is delayed until then (at once if it has passed). */
const delayUntil = (iso: string, now: Date) => Math.max(0, Date.parse(iso) - now.getTime());

const ContractEventTasks = z.object({
  contractId: ContractId,
  escrow: taskDefinitions['payments.escrow'].payload.shape.action.optional(),
  autoApproveAt: z.iso.datetime().optional(),
  version: z.number().int().positive().optional(),
  reviewDeadlineAt: z.iso.datetime().optional(),
});

const contractTasks = eventTasks(ContractEventTasks, async (_event, payload, { taskQueue, clock }) => {
  const id = payload.contractId;
  if (payload.escrow !== undefined) {
    await taskQueue.enqueue(
      'payments.escrow',
      { contractId: id, action: payload.escrow },
      taskId('escrow', id, payload.escrow),
    );
  }
  if (payload.autoApproveAt !== undefined && payload.version !== undefined) {
    await taskQueue.enqueue(
      'contracts.auto-approve',
      { contractId: id, version: payload.version },
      taskId('contract', id, 'auto-approve', String(payload.version)),
      { delayMs: delayUntil(payload.autoApproveAt, clock.now()) },
    );
  }
  if (payload.reviewDeadlineAt !== undefined) {
    await taskQueue.enqueue('reviews.publish', { contractId: id }, taskId('contract', id, 'reviews'), {
      delayMs: delayUntil(payload.reviewDeadlineAt, clock.now()),
    });
  }
});

const EVENT_TASKS: Readonly<Record<string, EventTasks<z.ZodType>>> = {
  [AuthEvent.userRegistered]: eventTasks(z.object({ userId: UserId }), async (event, { userId }, targets) => {
    for (const template of ['welcome', 'verify-email'] as const) {
      await mail(targets, template, userId, taskId(event.id, template));
    }
  }),
  [AuthEvent.registrationAttempted]: eventTasks(
    z.object({ userId: UserId, period: Period }),
    (event, { userId, period }, targets) =>
      // One notice per account per period, however many attempts: the key ignores the event id.
      mail(
        targets,
        'registration-attempt',
        userId,
        taskId('registration-attempt', userId, period === undefined ? event.id : String(period)),
      ),
  ),
  [AuthEvent.verificationRequested]: eventTasks(
    z.object({ userId: UserId, period: Period }),
    (event, { userId, period }, targets) =>
      // One new verification link per account per period (a day: the address is unconfirmed).
      mail(
        targets,
        'verify-email',
        userId,
        taskId('verify-email', userId, period === undefined ? event.id : String(period)),
      ),
  ),
  [AuthEvent.passwordResetRequested]: eventTasks(
    // userId null: the address has no account (or a locked one). Written all the same, so that the
    // request takes the same time either way (auth service, `forgotPassword`); nothing to mail.
    z.object({ userId: UserId.nullable(), period: Period, version: Period }),
    async (event, { userId, period, version }, targets) => {
      if (userId === null) return;
      // One reset mail per account per period (PASSWORD_RESET_MAIL_PERIOD_MS), however many requests,
      // and per session version (written since review 31): a request after a password change is a
      // new mail, the one asked for before it is refused by the email worker.
      await mail(
        targets,
        'reset-password',
        userId,
        period === undefined
          ? taskId(event.id, 'reset-password')
          : version === undefined
            ? taskId('reset-password', userId, String(period))
            : taskId('reset-password', userId, String(period), `v${version}`),
      );
    },
  ),
  // Keyed by the payment: however often the event is relayed, one submit task per payment.
  [PAYMENT_REQUESTED]: eventTasks(
    taskDefinitions['payments.submit'].payload,
    (_event, { paymentId }, targets) =>
      targets.taskQueue.enqueue('payments.submit', { paymentId }, taskId('payment', paymentId)),
  ),
  [PROVIDER_EVENT_RECEIVED]: eventTasks(
    taskDefinitions['payments.apply-event'].payload,
    (_event, { eventId }, targets) =>
      targets.taskQueue.enqueue('payments.apply-event', { eventId }, taskId('provider-event', eventId)),
  ),
};

const tasksOfType = (type: string): EventTasks<z.ZodType> | undefined =>
  Object.hasOwn(EVENT_TASKS, type)
    ? EVENT_TASKS[type]
    : type.startsWith(CONTRACT_EVENT_PREFIX)
      ? contractTasks
      : undefined;

/**
 * Enqueues the tasks `event` causes. Resolves `refused` with the payload's issues when it does not
 * match its type's schema (nothing enqueued); rejects when the queue fails (the relay retries).
 */
export async function enqueueEventTasks(
  event: OutboxEventRow,
  targets: RelayTargets,
): Promise<{ readonly refused?: readonly z.core.$ZodIssue[] }> {
  const entry = tasksOfType(event.type);
  if (entry === undefined) return {};
  const payload = entry.payload.safeParse(event.payload);
  if (!payload.success) return { refused: payload.error.issues };
  await entry.enqueue(event, payload.data, targets);
  return {};
}
