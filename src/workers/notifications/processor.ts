/**
 * The `notifications` queue worker (issue 13): `notifications.deliver` (one notification of an
 * outbox event for one recipient), `notifications.digest` (a user's email digest when due) and
 * `notifications.unread-check` (a room still unread by an offline member). Each is idempotent on
 * the database (unique notification per event and recipient, a digest closed once, one mail per
 * digest key), so a task retried, duplicated or run again after its worker was killed adds nothing.
 */
import { type Job, UnrecoverableError, type Worker } from 'bullmq';
import type { RoomId } from '../../../protocol/src/ids.js';
import {
  checkUnreadRoom,
  DIGEST_NOT_DUE,
  deliverEventNotification,
  type NotificationsDeps,
  requeueOverdueDigests,
  sendDigest,
} from '../../domain/notifications/service.js';
import type { AppError } from '../../platform/errors.js';
import { runTask } from '../../platform/queues/retry.js';
import { startTaskWorker } from '../../platform/queues/task-worker.js';
import { parseTaskPayload, type TaskPayload, tasks } from '../../platform/queues/tasks.js';
import type { Redis } from '../../platform/redis.js';
import { renderNotificationDigest } from '../emails/digest-template.js';

export interface NotificationsWorkerDeps {
  readonly notifications: NotificationsDeps;
  readonly publicUrl: string;
  readonly connection: Redis;
  readonly redisPrefix: string;
  /** Milliseconds before a task held by a dead worker is handed to another (TASK_LOCK_MS). */
  readonly lockMs: number;
  /** Tasks run at once by this worker. */
  readonly concurrency?: number;
  /** Milliseconds between sweeps for overdue digests; default OVERDUE_DIGEST_SWEEP_MS. */
  readonly overdueSweepMs?: number;
}

type NotificationTask = 'notifications.deliver' | 'notifications.digest' | 'notifications.unread-check';

type Runner<N extends NotificationTask> = (
  deps: NotificationsWorkerDeps,
  payload: TaskPayload<N>,
) => Promise<unknown>;

const RUNNERS: { readonly [N in NotificationTask]: Runner<N> } = {
  'notifications.deliver': (deps, payload) => deliverEventNotification(deps.notifications, payload),
  'notifications.digest': (deps, payload) =>
    sendDigest(
      { ...deps.notifications, render: (input) => renderNotificationDigest(deps.publicUrl, input) },
      payload.digestId,
    ),
  'notifications.unread-check': (deps, payload) =>
    checkUnreadRoom(deps.notifications, { ...payload, roomId: payload.roomId as RoomId }),
};

const isNotificationTask = (name: string): name is NotificationTask => Object.hasOwn(RUNNERS, name);

/**
 * A digest task run before its digest is due (CONFLICT DIGEST_NOT_DUE): retried with the task's
 * back-off until due_at has come, although CONFLICT is not (`retryByCode`).
 */
export const isDigestEarly = (error: AppError): boolean =>
  error.code === 'CONFLICT' && error.details?.reason === DIGEST_NOT_DUE;

/**
 * Runs one task as the worker would (tests call it directly to run a task twice); an AppError no
 * retry can change fails it for good (`runTask`).
 */
export async function runNotificationTask(
  deps: NotificationsWorkerDeps,
  name: string,
  data: unknown,
): Promise<unknown> {
  if (!isNotificationTask(name)) throw new UnrecoverableError(`unknown task ${name}`);
  const payload = parseTaskPayload(name, data);
  return runTask(() => (RUNNERS[name] as Runner<NotificationTask>)(deps, payload), {
    retryAlso: isDigestEarly,
  });
}

/** How often a notifications worker looks for overdue digests (`requeueOverdueDigests`). */
export const OVERDUE_DIGEST_SWEEP_MS = 5 * 60_000;

export function startNotificationsWorker(deps: NotificationsWorkerDeps): Worker {
  const log = deps.notifications.log;
  const worker = startTaskWorker(
    tasks['notifications.deliver'].queue,
    async (job: Job) => {
      const traceId = typeof job.data?.traceId === 'string' ? job.data.traceId : undefined;
      const outcome = await runNotificationTask(deps, job.name, job.data);
      log.info(
        { task: job.name, taskId: job.id, outcome, ...(traceId ? { traceId } : {}) },
        'notification task done',
      );
    },
    { ...deps, concurrency: deps.concurrency ?? 8, log, what: 'notification' },
  );
  // Digests whose task was lost or failed for good are queued again (a no-op for a task that still
  // exists); a failed sweep (the database or Redis down) is a log line, tried at the next one, and
  // one still waiting for them is not joined by another.
  let sweeping = false;
  const sweep = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    requeueOverdueDigests(deps.notifications)
      .catch((error: unknown) => log.warn({ err: error }, 'overdue digest sweep failed; next sweep retries'))
      .finally(() => {
        sweeping = false;
      });
  }, deps.overdueSweepMs ?? OVERDUE_DIGEST_SWEEP_MS);
  sweep.unref();
  worker.once('closing', () => clearInterval(sweep));
  return worker;
}
