/**
 * The outbox relay: turns committed events into tasks. It reads the oldest unpublished events,
 * enqueues their tasks with ids derived from the event id, and then marks them published. Nothing
 * is held open meanwhile: no transaction waits on Redis (on the embedded database, whose single
 * connection every request shares, a stalled Redis held that way stopped the whole node), so a
 * relay stuck on Redis delays only its own work. The same event enqueued twice — a crash before the
 * mark, or two relays (one per worker process) reading the same events — gets the same task ids,
 * which BullMQ ignores: nothing is lost and nothing runs twice.
 *
 * With a bus, each batch is then announced for live pushes (live.ts: `market` to the users a
 * marketplace event names, `job.posted` to matching job boards, a contract's room message) — at
 * most once: only the events this relay marked, and never failing the relay.
 */
import type { Kysely } from 'kysely';
import { UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import {
  markEventsPublished,
  type OutboxEventRow,
  unpublishedEvents,
} from '../../db/repositories/outbox.repo.js';
import type { Bus } from '../../platform/bus/bus.js';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { type TaskQueue, taskId } from '../../platform/queues/tasks.js';
import { AuthEvent } from '../auth/service.js';
import { CONTRACT_EVENT_PREFIX } from '../marketplace/events.js';
import { enqueueNotificationTasks } from '../notifications/relay.js';
import { PAYMENT_REQUESTED, PROVIDER_EVENT_RECEIVED } from '../payments/payments-service.js';
import { dispatchContractEvent } from './contract-dispatch.js';
import { announceLive } from './live.js';
import type { RelayTargets } from './targets.js';

export type { RelayTargets } from './targets.js';

const BATCH = 100;
/** How long `stop` waits for the batch in flight. */
const STOP_WAIT_MS = 3_000;

/** What each event type causes. An event type without an entry is published with no task. */
async function dispatch(event: OutboxEventRow, targets: RelayTargets): Promise<void> {
  const { taskQueue } = targets;
  // Stored notifications (issue 13), beside whatever else the event causes below.
  await enqueueNotificationTasks(event, taskQueue, targets.log);
  const userId = UserId.safeParse(event.payload.userId);
  switch (event.type) {
    case AuthEvent.userRegistered:
      if (!userId.success) return;
      for (const template of ['welcome', 'verify-email'] as const) {
        const key = taskId(event.id, template);
        await taskQueue.enqueue('emails.send', { template, userId: userId.data, key }, key);
      }
      return;
    case AuthEvent.registrationAttempted: {
      if (!userId.success) return;
      // One notice per account per period, however many attempts: the key ignores the event id.
      const period = Number(event.payload.period);
      const key = taskId(
        'registration-attempt',
        userId.data,
        Number.isSafeInteger(period) ? String(period) : event.id,
      );
      await taskQueue.enqueue(
        'emails.send',
        { template: 'registration-attempt', userId: userId.data, key },
        key,
      );
      return;
    }
    case AuthEvent.passwordResetRequested: {
      if (!userId.success) return;
      // One reset mail per account per period (PASSWORD_RESET_MAIL_PERIOD_MS), however many requests;
      // an event without a period (written before it existed) keeps its own key.
      const period = Number(event.payload.period);
      const key = Number.isSafeInteger(period)
        ? taskId('reset-password', userId.data, String(period))
        : taskId(event.id, 'reset-password');
      await taskQueue.enqueue('emails.send', { template: 'reset-password', userId: userId.data, key }, key);
      return;
    }
    case PAYMENT_REQUESTED: {
      // Keyed by the payment: however often the event is relayed, one submit task per payment.
      const paymentId = typeof event.payload.paymentId === 'string' ? event.payload.paymentId : undefined;
      if (paymentId === undefined) return;
      await taskQueue.enqueue('payments.submit', { paymentId }, taskId('payment', paymentId));
      return;
    }
    case PROVIDER_EVENT_RECEIVED: {
      const eventId = typeof event.payload.eventId === 'string' ? event.payload.eventId : undefined;
      if (eventId === undefined) return;
      await taskQueue.enqueue('payments.apply-event', { eventId }, taskId('provider-event', eventId));
      return;
    }
    default:
      if (event.type.startsWith(CONTRACT_EVENT_PREFIX)) await dispatchContractEvent(event, targets);
      return;
  }
}

export interface OutboxRelay {
  /** Publishes what is pending now; returns how many events it published. */
  readonly drainOnce: () => Promise<number>;
  readonly stop: () => Promise<void>;
}

export function startOutboxRelay(deps: {
  readonly db: Kysely<Database>;
  readonly taskQueue: TaskQueue;
  readonly clock: Clock;
  readonly log: Logger;
  readonly pollMs: number;
  readonly bus?: Pick<Bus, 'publish'>;
}): OutboxRelay {
  const { db, clock, log } = deps;
  const targets: RelayTargets = { taskQueue: deps.taskQueue, clock, log };
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> = Promise.resolve(0);

  const drainOnce = () => {
    // Chained on the previous drain's settling, not its success: one failed batch (a dropped
    // connection, Redis refusing a write) must not reject every drain after it.
    running = running
      .catch(() => 0)
      .then(async () => {
        const events = await unpublishedEvents(db, BATCH);
        for (const event of events) await dispatch(event, targets);
        const marked = await markEventsPublished(
          db,
          events.map((event) => event.id),
          clock.now(),
        );
        // Live pushes of what this relay marked (at most once; never fails the relay): live.ts.
        if (deps.bus !== undefined) {
          await announceLive(
            { db, bus: deps.bus, log },
            events.filter((event) => marked.has(event.id)),
          );
        }
        return events.length;
      });
    return running;
  };

  const loop = async () => {
    if (stopped) return;
    try {
      // A full batch means more may be waiting: go again at once.
      const published = await drainOnce();
      if (published > 0) log.debug({ published }, 'outbox events published');
      if (published === BATCH && !stopped) {
        setImmediate(loop);
        return;
      }
    } catch (error) {
      log.warn({ err: error }, 'outbox relay failed; retrying');
    }
    if (!stopped) timer = setTimeout(loop, deps.pollMs);
  };
  timer = setTimeout(loop, 0);

  return {
    drainOnce,
    stop: async () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      // Bounded: a batch waiting for an unreachable Redis (its enqueue waits for the reconnect)
      // would hold shutdown to its deadline; its events stay unpublished, and the next relay
      // publishes them (nothing is lost).
      const settled = await Promise.race([
        running.then(
          () => true,
          () => true,
        ),
        new Promise<false>((resolve) => setTimeout(resolve, STOP_WAIT_MS, false).unref()),
      ]);
      if (!settled) log.warn({ waitedMs: STOP_WAIT_MS }, 'outbox relay stopped with a batch still in flight');
    },
  };
}
