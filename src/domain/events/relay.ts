/**
 * The outbox relay: turns committed events into tasks. It reads the oldest unpublished events,
 * enqueues their tasks with ids derived from the event id, and then marks them published. Nothing
 * is held open meanwhile: no transaction waits on Redis (on the embedded database, whose single
 * connection every request shares, a stalled Redis held that way stopped the whole node), so a
 * relay stuck on Redis delays only its own work. The same event enqueued twice — a crash before the
 * mark, or two relays (one per worker process) reading the same events — gets the same task ids,
 * which BullMQ ignores: nothing is lost and nothing runs twice.
 *
 * Tasks lost with Redis's data after their event was published are enqueued again: the relay
 * watches a marker key among the queues' keys and, finding it gone, relays every published event
 * still kept again (`watchQueueData`; the live pushes are not repeated).
 *
 * With a bus, each batch is then announced for live pushes (live.ts: `market` to the users a
 * marketplace event names, `job.posted` to matching job boards, a contract's room message) — at
 * most once: only the events this relay marked, and never failing the relay.
 */
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { OutboxEventId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import {
  markEventsPublished,
  type OutboxEventRow,
  publishedEventsAfter,
  unpublishedEvents,
} from '../../db/repositories/outbox.repo.js';
import type { Bus } from '../../platform/bus/bus.js';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { bullPrefix, type TaskQueue } from '../../platform/queues/tasks.js';
import type { Redis } from '../../platform/redis.js';
import { enqueueNotificationTasks } from '../notifications/relay.js';
import { enqueueEventTasks } from './event-tasks.js';
import { announceLive } from './live.js';
import type { RelayTargets } from './targets.js';

export type { RelayTargets } from './targets.js';

const BATCH = 100;
/** Least time between two log lines of one outage of the relay (its polls failing in a row). */
export const OUTAGE_LOG_EVERY_MS = 60_000;
/** How long `stop` waits for the batch in flight. */
const STOP_WAIT_MS = 3_000;

/** What a stored payload must be before any rule reads it: a JSON object (jsonb also holds `null`). */
const EventPayload = z.record(z.string(), z.unknown());

/** A failure of the task queue itself (Redis), as opposed to anything the event made happen. */
class TaskQueueFailure extends Error {}

/**
 * The relay's task queue: what an enqueue throws is tagged as the queue's failure, except the task
 * definition's own refusal of the payload (a ZodError: as permanent as the event it came from).
 */
function taggingFailures(queue: TaskQueue): TaskQueue {
  return {
    queues: queue.queues,
    close: queue.close,
    enqueue: async (name, payload, idempotencyKey, options) => {
      try {
        await queue.enqueue(name, payload, idempotencyKey, options);
      } catch (error) {
        if (error instanceof z.ZodError) throw error;
        throw new TaskQueueFailure('task queue failed', { cause: error });
      }
    },
  };
}

/**
 * What an event causes on the task queues: its stored notifications (issue 13) and the tasks of its
 * type (event-tasks.ts). An event that cannot become tasks however often it is read is refused:
 * logged as an error (its id, type, and the schema's issues or what was thrown) and published
 * without them. That is a payload that is no JSON object, one its type's schema refuses, and
 * anything else thrown while the event is read (the rules are pure: the same row throws the same
 * way on every poll). Left unpublished it would be read first by every batch after it and fail each
 * — one malformed row (an operator's insert, a bug) would stop every mail, payment and timer
 * behind it. A queue that fails (Redis: `targets.taskQueue` tags those) fails the batch, which is
 * retried: that is not the event's fault.
 */
async function dispatch(event: OutboxEventRow, targets: RelayTargets): Promise<void> {
  const payload = EventPayload.safeParse(event.payload);
  if (!payload.success) return refuse(event, targets, { issues: payload.error.issues });
  // Each part on its own: a refused notification must not cost the event its own tasks (an escrow
  // move, a payment submit), nor the other way round.
  const parts = [
    async () => {
      await enqueueNotificationTasks(event, targets.taskQueue, targets.log);
      return undefined;
    },
    async () => (await enqueueEventTasks(event, targets)).refused,
  ];
  for (const part of parts) {
    try {
      const refused = await part();
      if (refused !== undefined) refuse(event, targets, { issues: refused });
    } catch (error) {
      if (error instanceof TaskQueueFailure) throw error.cause;
      // A task definition refusing what the event's values made of it: as permanent as the above.
      refuse(event, targets, error instanceof z.ZodError ? { issues: error.issues } : { error });
    }
  }
}

/** Logs what of an event cannot become tasks (it is published without them). */
function refuse(
  event: OutboxEventRow,
  targets: RelayTargets,
  why: { readonly issues: readonly z.core.$ZodIssue[] } | { readonly error: unknown },
): void {
  if ('issues' in why) {
    targets.log.error(
      {
        eventId: event.id,
        event: event.type,
        issues: why.issues
          .slice(0, 5)
          .map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
      },
      'outbox event payload refused by its schema: published without its tasks',
    );
  } else {
    targets.log.error(
      { eventId: event.id, event: event.type, err: why.error },
      'outbox event could not be read: published without its tasks',
    );
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
  /** Milliseconds between log lines of one outage; default OUTAGE_LOG_EVERY_MS. */
  readonly outageLogEveryMs?: number;
  /**
   * The task queues' Redis and prefix: the relay keeps a marker among their keys to notice that
   * they lost their data. Without them it does not watch.
   */
  readonly queueData?: {
    readonly redis: Pick<Redis, 'set' | 'exists' | 'del'>;
    readonly redisPrefix: string;
  };
}): OutboxRelay {
  const { db, clock, log } = deps;
  const outageLogEveryMs = deps.outageLogEveryMs ?? OUTAGE_LOG_EVERY_MS;
  const targets: RelayTargets = { taskQueue: taggingFailures(deps.taskQueue), clock, log };
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

  // The polls failing in a row (PostgreSQL or Redis down): logged at the first, then at most every
  // outageLogEveryMs with how many failed meanwhile, and once when a poll succeeds again. One line
  // per poll (every OUTBOX_POLL_MS, 100 ms by default) flooded the logs through an outage.
  let outage: { since: Date; failures: number; lastLogAt: number; unlogged: number } | undefined;
  const failed = (error: unknown) => {
    const now = clock.now();
    if (outage === undefined) {
      outage = { since: now, failures: 1, lastLogAt: now.getTime(), unlogged: 0 };
      log.warn({ err: error }, 'outbox relay failed; retrying');
      return;
    }
    outage.failures += 1;
    outage.unlogged += 1;
    if (now.getTime() - outage.lastLogAt >= outageLogEveryMs) {
      log.warn(
        {
          err: error,
          failures: outage.failures,
          failedSinceLastLine: outage.unlogged,
          since: outage.since.toISOString(),
        },
        'outbox relay failed; still retrying',
      );
      outage.lastLogAt = now.getTime();
      outage.unlogged = 0;
    }
  };
  const succeeded = () => {
    if (outage === undefined) return;
    log.info(
      {
        failures: outage.failures,
        since: outage.since.toISOString(),
        downMs: clock.now().getTime() - outage.since.getTime(),
      },
      'outbox relay recovered',
    );
    outage = undefined;
  };

  // The task queues losing their data while this relay runs (Redis restarted without it, a
  // failover to an empty replica, a flush): every task not yet run went with it — notifications,
  // mails, payment submits, timers — and their events were published already, so nothing would
  // enqueue them again. A marker key among the queues' keys, set when the relay starts, tells: gone,
  // the relay that sets it again re-relays every published event still kept (`relayPublishedAgain`).
  // Every task id derives from its event and every task re-reads the database, so a task that had
  // run does nothing new. (Data lost while no relay ran is not noticed: the marker is set at start.)
  let markerSet = false;
  let relayingAgain = false;
  const watchQueueData = async () => {
    if (deps.queueData === undefined || relayingAgain) return;
    const client = deps.queueData.redis;
    const key = `${bullPrefix(deps.queueData.redisPrefix)}:outbox-relay-marker`;
    if (!markerSet) {
      await client.set(key, '1', 'NX');
      markerSet = true;
      return;
    }
    if ((await client.exists(key)) === 1) return;
    if ((await client.set(key, '1', 'NX')) !== 'OK') return; // another relay does it
    relayingAgain = true;
    log.warn('task queues lost their data: relaying the published outbox events again');
    void relayPublishedAgain()
      .then((events) => log.warn({ events }, 'published outbox events relayed again'))
      .catch(async (error: unknown) => {
        log.error({ err: error }, 'relaying the published outbox events again failed; next poll retries');
        await client.del(key).catch(() => undefined);
      })
      .finally(() => {
        relayingAgain = false;
      });
  };
  const relayPublishedAgain = async () => {
    let count = 0;
    let after: OutboxEventId | undefined;
    while (!stopped) {
      const events = await publishedEventsAfter(db, after, BATCH);
      for (const event of events) await dispatch(event, targets);
      count += events.length;
      after = events.at(-1)?.id;
      if (events.length < BATCH) break;
    }
    return count;
  };

  const loop = async () => {
    if (stopped) return;
    // Never fails the poll: a Redis that does not answer fails the batch's enqueues on its own.
    await watchQueueData().catch((error: unknown) =>
      log.debug({ err: error }, 'outbox relay could not check the task queues'),
    );
    if (stopped) return;
    try {
      // A full batch means more may be waiting: go again at once.
      const published = await drainOnce();
      succeeded();
      if (published > 0) log.debug({ published }, 'outbox events published');
      if (published === BATCH && !stopped) {
        setImmediate(loop);
        return;
      }
    } catch (error) {
      failed(error);
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
