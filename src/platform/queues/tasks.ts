/**
 * Task definitions (BullMQ jobs, "tasks" in our words, to keep them apart from marketplace jobs):
 * for each task its queue, zod payload, attempts and backoff. Payloads carry ids, never secrets or
 * rows (Redis stores them in clear text). Every enqueue passes an idempotency key as the job id, so
 * enqueuing the same task twice is a no-op while the first is kept (7 days after completion).
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { UserId } from '../../../protocol/src/ids.js';

export const EmailTemplate = z.enum([
  'welcome',
  'verify-email',
  'reset-password',
  'registration-attempt',
  /** Rendered and stored by the notifications worker before its task is enqueued; the task only sends it. */
  'notification-digest',
]);
export type EmailTemplate = z.infer<typeof EmailTemplate>;

export const tasks = {
  'emails.send': {
    queue: 'emails',
    payload: z.object({
      template: EmailTemplate,
      userId: UserId,
      /** Idempotency key of the mail: one mail per key, however often the task runs. */
      key: z.string().min(1).max(200),
    }),
    // ~1 s, 2 s, 4 s … about 4.5 hours in all: an SMTP server down for a while (a restart, an
    // outage) delays mail, it does not lose it (security warnings among it).
    attempts: 15,
    backoff: { type: 'exponential', delay: 1_000 },
  },
  /** Submits one payment (top-up charge or withdrawal payout) to the provider; keyed by payment id. */
  'payments.submit': {
    queue: 'payments',
    payload: z.object({ paymentId: z.uuid() }),
    // ~1 s, 2 s, 4 s … about 17 min in all, then the payment fails as provider_unavailable.
    attempts: 10,
    backoff: { type: 'exponential', delay: 1_000 },
  },
  /** Applies one received provider webhook event (settles its payment); keyed by the event id. */
  'payments.apply-event': {
    queue: 'payments',
    payload: z.object({ eventId: z.string().min(1).max(256) }),
    attempts: 10,
    backoff: { type: 'exponential', delay: 1_000 },
  },
  /**
   * Releases or refunds a contract's escrow (scheduled by the marketplace, e.g. an auto-accept
   * timer); keyed by contract id and action. Rerunning it is a no-op: the escrow row decides.
   */
  'payments.escrow': {
    queue: 'payments',
    payload: z.object({ contractId: z.uuid(), action: z.enum(['release', 'refund', 'split']) }),
    attempts: 10,
    backoff: { type: 'exponential', delay: 1_000 },
  },
  /**
   * A contract's auto-approve timer (CONTRACT_AUTO_APPROVE_S after a delivery), keyed by contract and
   * the version the delivery produced: it fires `auto_approve` only if the contract is still there.
   */
  'contracts.auto-approve': {
    queue: 'marketplace',
    payload: z.object({ contractId: z.uuid(), version: z.int().min(1) }),
    attempts: 10,
    backoff: { type: 'exponential', delay: 1_000 },
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
    attempts: 10,
    backoff: { type: 'exponential', delay: 1_000 },
  },
  /** Sends a user's email digest when it is due (NOTIFY_EMAIL_DIGEST_S after it opened); keyed by digest. */
  'notifications.digest': {
    queue: 'notifications',
    payload: z.object({ digestId: z.uuid() }),
    attempts: 10,
    backoff: { type: 'exponential', delay: 1_000 },
  },
  /**
   * UNREAD_EMAIL_AFTER_S after a message reached an offline member: one `messages.unread`
   * notification if the room is still unread from `readSeq` on; keyed by (room, member, readSeq).
   */
  'notifications.unread-check': {
    queue: 'notifications',
    payload: z.object({ roomId: z.uuid(), userId: UserId, readSeq: z.int().min(0) }),
    attempts: 10,
    backoff: { type: 'exponential', delay: 1_000 },
  },
  /** Closes a contract's review window (REVIEW_WINDOW_S after it ended): publishes a lone review. */
  'reviews.publish': {
    queue: 'marketplace',
    payload: z.object({ contractId: z.uuid() }),
    attempts: 10,
    backoff: { type: 'exponential', delay: 1_000 },
  },
} as const;

export type TaskName = keyof typeof tasks;
export type TaskPayload<N extends TaskName> = z.infer<(typeof tasks)[N]['payload']>;
export type QueueName = (typeof tasks)[TaskName]['queue'];

/** Every queue some task names, in order of first mention: the console and metrics show them all. */
export const queueNames = (): QueueName[] => [...new Set(Object.values(tasks).map((task) => task.queue))];

/** BullMQ job ids may not contain ':' (nor be all digits). */
export const taskId = (...parts: string[]) => parts.join('.').replace(/:/g, '_');

/** Retention: completed tasks stay a week (dedupe window of idempotent enqueues), failed ones a month. */
const RETENTION = {
  removeOnComplete: { age: 7 * 24 * 3600, count: 100_000 },
  removeOnFail: { age: 30 * 24 * 3600 },
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
 * `onError`: a queue's connection errors (Redis down). Without a listener BullMQ prints them to
 * stderr itself, outside the logger; enqueue calls fail on their own either way.
 */
export function createTaskQueue(
  connection: Redis,
  redisPrefix: string,
  onError: (error: Error, queue: QueueName) => void = () => undefined,
): TaskQueue {
  const byName = new Map<QueueName, Queue>();
  const queueFor = (name: QueueName) => {
    let queue = byName.get(name);
    if (queue === undefined) {
      queue = new Queue(name, { connection, prefix: bullPrefix(redisPrefix) });
      queue.on('error', (error) => onError(error, name));
      byName.set(name, queue);
    }
    return queue;
  };
  return {
    enqueue: async (name, payload, idempotencyKey, options) => {
      const definition = tasks[name];
      const delay = Math.max(0, Math.floor(options?.delayMs ?? 0));
      await queueFor(definition.queue).add(name, definition.payload.parse(payload), {
        jobId: taskId(idempotencyKey),
        ...(delay > 0 ? { delay } : {}),
        attempts: definition.attempts,
        backoff: definition.backoff,
        ...RETENTION,
      });
    },
    queues: () => queueNames().map(queueFor),
    close: async () => {
      await Promise.all([...byName.values()].map((queue) => queue.close()));
    },
  };
}
