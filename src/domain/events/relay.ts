/**
 * The outbox relay: turns committed events into tasks. It claims unpublished events with
 * FOR UPDATE SKIP LOCKED (several relays share the work), enqueues their tasks with ids derived from
 * the event id, and marks them published in the same transaction. A crash after enqueuing and
 * before the commit re-enqueues the same ids next time, which BullMQ ignores: nothing is lost and
 * nothing runs twice.
 *
 * With a bus, each committed batch is then announced for live pushes (live.ts: `market` to the
 * users a marketplace event names, `job.posted` to matching job boards) — at most once, after the
 * commit, and never failing the relay.
 */
import type { Kysely } from 'kysely';
import { UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import {
  claimUnpublishedEvents,
  markEventsPublished,
  type OutboxEventRow,
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
        const events = await db.transaction().execute(async (trx) => {
          const claimed = await claimUnpublishedEvents(trx, BATCH);
          for (const event of claimed) await dispatch(event, targets);
          await markEventsPublished(
            trx,
            claimed.map((event) => event.id),
            clock.now(),
          );
          return claimed;
        });
        // Live pushes once the batch is committed (at most once; never fails the relay): live.ts.
        if (deps.bus !== undefined) await announceLive({ db, bus: deps.bus, log }, events);
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
      // would hold shutdown to its deadline; its transaction rolls back when the process ends,
      // and the next relay publishes those events (nothing is lost).
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
