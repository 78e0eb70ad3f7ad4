/**
 * Task definitions (BullMQ jobs, "tasks" in our words, to keep them apart from marketplace jobs):
 * for each task its queue, zod payload, attempts and backoff. Payloads carry ids, never secrets or
 * rows (Redis stores them in clear text). Every enqueue passes an idempotency key as the job id, so
 * enqueuing the same task twice is a no-op while the first is waiting, running or kept after it
 * completed (7 days) — except a task kept as failed (out of attempts, or unrecoverable): enqueuing
 * it again retries it with a fresh budget (`createTaskQueue`).
 */
import { ErrorCode, Queue, UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { UserId } from '../../../protocol/src/ids.js';
import { logGate } from '../log-gate.js';
import { CAPPED_EXPONENTIAL } from './backoff.js';

export const EmailTemplate = z.enum([
  'welcome',
  'verify-email',
  'reset-password',
  'registration-attempt',
  /** Rendered and stored by the notifications worker before its task is enqueued; the task only sends it. */
  'notification-digest',
]);
export type EmailTemplate = z.infer<typeof EmailTemplate>;

/**
 * Retries of every task that needs the database: waits of 1 s, 2 s, 4 s … 256 s, then 5 min each
 * (BACKOFF_CAP_MS), each up to 20 % shorter (jitter), 54 attempts: between 3 h 3 min and 3 h 49 min
 * of waiting in all (`retryBudget`; backoff.test.ts checks these figures). A PostgreSQL outage
 * (failover, restart, full disk) shorter than that delays these tasks, it does not exhaust them,
 * and once it is over each runs again within 5 min. (BullMQ's plain exponential from 1 s with 10
 * attempts, used before, gave up after 511 s.)
 */
const DATABASE_RETRIES = {
  attempts: 54,
  backoff: { type: CAPPED_EXPONENTIAL, delay: 1_000, jitter: 0.2 },
} as const;

export const tasks = {
  'emails.send': {
    queue: 'emails',
    payload: z.object({
      template: EmailTemplate,
      userId: UserId,
      /** Idempotency key of the mail: one mail per key, however often the task runs. */
      key: z.string().min(1).max(200),
    }),
    // Waits of 1 s, 2 s, 4 s … 8192 s (BullMQ's exponential: 2^(n-1) s after the n-th failure),
    // 16 383 s ≈ 4 h 33 min in all: an SMTP server (or the database, which the task reads too)
    // down for a while delays mail, it does not lose it (security warnings among it). Uncapped:
    // the last waits are long (1 h 8 min, 2 h 17 min), so mail may go out that late after an
    // outage ended.
    attempts: 15,
    backoff: { type: 'exponential', delay: 1_000 },
  },
  /** Submits one payment (top-up charge or withdrawal payout) to the provider; keyed by payment id. */
  'payments.submit': {
    queue: 'payments',
    payload: z.object({ paymentId: z.uuid() }),
    // DATABASE_RETRIES (3 to 3.8 h; its exhausted handler needs the database too), then a top-up
    // fails as provider_unavailable and a withdrawal stays pending until the reconciler submits it again (PAYMENTS_RECONCILE_AFTER_S).
    ...DATABASE_RETRIES,
  },
  /** Applies one received provider webhook event (settles its payment); keyed by the event id. */
  'payments.apply-event': {
    queue: 'payments',
    payload: z.object({ eventId: z.string().min(1).max(256) }),
    ...DATABASE_RETRIES,
  },
  /**
   * Releases or refunds a contract's escrow (scheduled by the marketplace, e.g. an auto-accept
   * timer); keyed by contract id and action. Rerunning it is a no-op: the escrow row decides.
   */
  'payments.escrow': {
    queue: 'payments',
    payload: z.object({ contractId: z.uuid(), action: z.enum(['release', 'refund', 'split']) }),
    ...DATABASE_RETRIES,
  },
  /**
   * A contract's auto-approve timer (CONTRACT_AUTO_APPROVE_S after a delivery), keyed by contract and
   * the version the delivery produced: it fires `auto_approve` only if the contract is still there.
   */
  'contracts.auto-approve': {
    queue: 'marketplace',
    payload: z.object({ contractId: z.uuid(), version: z.int().min(1) }),
    ...DATABASE_RETRIES,
  },
  /**
   * Stores one notification of an outbox event for one recipient, pushes it live and decides email;
   * keyed by (event, recipient). Rerunning it stores, pushes and mails nothing twice.
   */
  'notifications.deliver': {
    queue: 'notifications',
    payload: z.object({
      eventId: z.uuid(),
      userId: UserId,
      /** The request id of the action that caused the event, for the worker's log lines. */
      traceId: z.string().max(128).optional(),
    }),
    ...DATABASE_RETRIES,
  },
  /** Sends a user's email digest when it is due (NOTIFY_EMAIL_DIGEST_S after it opened); keyed by digest. */
  'notifications.digest': {
    queue: 'notifications',
    payload: z.object({ digestId: z.uuid() }),
    ...DATABASE_RETRIES,
  },
  /**
   * UNREAD_EMAIL_AFTER_S after a message reached an offline member: one `messages.unread`
   * notification if the room is still unread from `readSeq` on; keyed by (room, member, readSeq).
   */
  'notifications.unread-check': {
    queue: 'notifications',
    payload: z.object({ roomId: z.uuid(), userId: UserId, readSeq: z.int().min(0) }),
    ...DATABASE_RETRIES,
  },
  /** Closes a contract's review window (REVIEW_WINDOW_S after it ended): publishes a lone review. */
  'reviews.publish': {
    queue: 'marketplace',
    payload: z.object({ contractId: z.uuid() }),
    ...DATABASE_RETRIES,
  },
} as const;

export type TaskName = keyof typeof tasks;
export type TaskPayload<N extends TaskName> = z.infer<(typeof tasks)[N]['payload']>;
export type QueueName = (typeof tasks)[TaskName]['queue'];

/**
 * A task's payload as read by its worker, checked against its schema. A payload that does not fit
 * (written by another build, or by hand) fails the task for good: it cannot fit on a retry.
 * @throws UnrecoverableError `invalid <name> payload: …` naming the zod issues.
 */
export function parseTaskPayload<N extends TaskName>(name: N, data: unknown): TaskPayload<N> {
  const payload = tasks[name].payload.safeParse(data);
  if (!payload.success) throw new UnrecoverableError(`invalid ${name} payload: ${payload.error.message}`);
  return payload.data as TaskPayload<N>;
}

/** Every queue some task names, in order of first mention: the console and metrics show them all. */
export const queueNames = (): QueueName[] => [...new Set(Object.values(tasks).map((task) => task.queue))];

/**
 * A BullMQ job id from its parts, joined with '.'. BullMQ refuses ids that contain ':' (its key
 * separator) or read as an integer. ':' is percent-encoded as `%3A` and '%' as `%25`, so distinct
 * texts give distinct ids: mapping ':' to '_', as before, gave provider events `evt:1` and `evt_1`
 * one id, and the second was dropped as a duplicate of the first. Keep free-form text (an outside
 * event id) in the last part: parts are not escaped for '.'.
 *
 * MUST stay stable: the id is the dedupe key of tasks already enqueued. Every id that contains
 * neither ':' nor '%' is the same as under the old mapping; only ids with one of them got a new
 * key. Our own parts (uuids, numbers, fixed names) have neither; a provider's event id may, and its
 * `payments.apply-event` task, if queued again under the new id, applies the event once (its event
 * row). `createTaskQueue` encodes the key it is given again: still injective, and ids without ':'
 * or '%' stay as they are.
 */
export const taskId = (...parts: string[]) =>
  parts.join('.').replace(/[%:]/g, (char) => (char === '%' ? '%25' : '%3A'));

/**
 * Retention: completed tasks stay a week (dedupe window of idempotent enqueues), failed ones a month
 * — and at most FAILED_KEPT of them per queue, the oldest dropped first: capped by age alone, a
 * flood of failures (a bad deploy failing every task, a permanent refusal of every mail) grew Redis
 * without bound, and Redis runs `noeviction` (a full Redis refuses every write, bus and presence
 * included). Each task keeps the stack traces of its last STACK_TRACES_KEPT attempts only (BullMQ
 * keeps one per attempt by default: a task that needs the database tries 54 times). A failed task
 * dropped early changes what runs only in that an enqueue of its id adds a new task instead of
 * retrying the kept one (`retryIfFailed`): the same thing. Operators see at most the newest
 * FAILED_KEPT failures of a queue in the console.
 */
export const FAILED_KEPT = 10_000;
const STACK_TRACES_KEPT = 3;
const RETENTION = {
  removeOnComplete: { age: 7 * 24 * 3600, count: 100_000 },
  removeOnFail: { age: 30 * 24 * 3600, count: FAILED_KEPT },
  stackTraceLimit: STACK_TRACES_KEPT,
} as const;

export interface EnqueueOptions {
  /** Run no earlier than this many milliseconds from now (a timer); 0 or absent: at once. */
  readonly delayMs?: number;
}

/** The producer side: the only way code outside workers/ creates tasks. */
export interface TaskQueue {
  readonly enqueue: <N extends TaskName>(
    name: N,
    payload: TaskPayload<N>,
    idempotencyKey: string,
    options?: EnqueueOptions,
  ) => Promise<void>;
  /** A BullMQ Queue object for every queue named in `tasks` (the console, queue metrics, tests). */
  readonly queues: () => readonly Queue[];
  readonly close: () => Promise<void>;
}

/** BullMQ prefix in a hash tag, so every key of our queues lands in one Redis Cluster slot. */
export const bullPrefix = (redisPrefix: string) => `{${redisPrefix}-tasks}`;

/**
 * After an add with the id of a task that exists already (BullMQ then adds nothing): if that task is
 * kept as failed, moves it back to waiting with its attempts counted from zero, so it runs at once
 * with its whole retry budget again. A task out of attempts because of an outage then runs again
 * when the same cause re-appears (a digest a later notification attaches to, a relay re-enqueuing),
 * instead of the id blocking it for the 30 days failed tasks are kept.
 *
 * A task that failed for a permanent reason (UnrecoverableError: an escrow move the contract's
 * state refuses, a digest mail that was never stored, a user gone) runs once more per enqueue of
 * its id and fails again at once: harmless, as every task re-reads the database before it acts.
 *
 * BullMQ's retry is atomic (it moves the task only if it is still in the failed set): of concurrent
 * enqueues one retries it, the others find it no longer failed. Returns whether it retried.
 */
async function retryIfFailed(queue: Queue, jobId: string): Promise<boolean> {
  if ((await queue.getJobState(jobId)) !== 'failed') return false;
  const job = await queue.getJob(jobId);
  if (job === undefined) return false;
  try {
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    return true;
  } catch (error) {
    // Retried by another enqueue or an operator since we looked (it may even have failed again
    // already), or removed: not ours to do any more.
    const code = (error as { code?: unknown }).code;
    if (code === ErrorCode.JobNotInState || code === ErrorCode.JobNotExist) return false;
    throw error;
  }
}

/**
 * `onError`: a queue's connection errors (Redis down), at most one every 10 s for all the queues
 * of this producer, with the number held back since the last (`heldBack`). Every queue repeats
 * each failed reconnect of the shared connection: passed on one by one, a Redis outage wrote some
 * 4 lines a second per producer (review 31). Without a listener BullMQ prints them to stderr
 * itself, outside the logger; enqueue calls fail on their own either way.
 */
export function createTaskQueue(
  connection: Redis,
  redisPrefix: string,
  onError: (error: Error, queue: QueueName, heldBack: number) => void = () => undefined,
): TaskQueue {
  const byName = new Map<QueueName, Queue>();
  const gate = logGate();
  const queueFor = (name: QueueName) => {
    let queue = byName.get(name);
    if (queue === undefined) {
      queue = new Queue(name, { connection, prefix: bullPrefix(redisPrefix) });
      queue.on('error', (error) => {
        const heldBack = gate();
        if (heldBack !== undefined) onError(error, name, heldBack);
      });
      byName.set(name, queue);
    }
    return queue;
  };
  return {
    enqueue: async (name, payload, idempotencyKey, options) => {
      const definition = tasks[name];
      const delay = Math.max(0, Math.floor(options?.delayMs ?? 0));
      const queue = queueFor(definition.queue);
      const jobId = taskId(idempotencyKey);
      await queue.add(name, definition.payload.parse(payload), {
        jobId,
        ...(delay > 0 ? { delay } : {}),
        attempts: definition.attempts,
        backoff: definition.backoff,
        ...RETENTION,
      });
      // A failed task has run, so its due time has passed: retried, it runs at once whatever
      // `delay` this enqueue asked for (the same id is the same timer), with its own stored options.
      await retryIfFailed(queue, jobId);
    },
    queues: () => queueNames().map(queueFor),
    close: async () => {
      await Promise.all([...byName.values()].map((queue) => queue.close()));
    },
  };
}
