/**
 * The outbox relay outlives a failed batch and a malformed event: a batch whose mark as published fails (a dropped
 * connection, PostgreSQL restarting) after its tasks were enqueued is done again by the next poll
 * (the same task ids: nothing runs twice) and every event is still published. Real PostgreSQL and
 * Redis; the database handle is wrapped only to make one chosen update fail, as a connection reset
 * would.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutboxEventId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import type { Database } from '../../src/db/database.js';
import { insertOutboxEvent } from '../../src/db/repositories/outbox.repo.js';
import { startOutboxRelay } from '../../src/domain/events/relay.js';
import { createMemoryBus } from '../../src/platform/bus/bus.js';
import { MARKET_EVENT_TOPIC } from '../../src/platform/bus/topics.js';
import { systemClock } from '../../src/platform/clock.js';
import { createTaskQueue, type TaskQueue, taskId } from '../../src/platform/queues/tasks.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';

/**
 * The real database, except that the next `failures` updates (the relay's mark of a batch as
 * published) fail before they reach it, as a dropped connection would.
 */
function failingUpdates(db: Kysely<Database>, failures: { left: number }): Kysely<Database> {
  return new Proxy(db, {
    get(target, property, receiver) {
      if (property !== 'updateTable') {
        // Methods run on the real handle (Kysely keeps its state in private fields).
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return (...args: Parameters<typeof target.updateTable>) => {
        if (failures.left > 0) {
          failures.left -= 1;
          throw new Error('Connection terminated unexpectedly');
        }
        return target.updateTable(...args);
      };
    },
  });
}

describe('outbox relay after a failed batch', () => {
  let database: TestDatabase;
  let handle: DbHandle;
  let redis: Redis;
  let tasks: TaskQueue;
  const logs = captureLogs();

  beforeAll(async () => {
    database = await createMigratedDatabase();
    handle = await createDb({ kind: 'postgres', url: database.url, poolMax: 2 }, logs.log);
    redis = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: null });
    tasks = createTaskQueue(redis, uniqueRedisPrefix());
  });
  afterAll(async () => {
    await tasks?.close();
    redis?.disconnect();
    await handle?.close();
    await database?.drop();
  });

  const unpublished = async () =>
    (await handle.db.selectFrom('outbox_events').select('id').where('published_at', 'is', null).execute())
      .length;
  /** Waits (up to 4 s) until no event is left unpublished. */
  const untilAllPublished = async () => {
    for (let i = 0; i < 200 && (await unpublished()) > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  /** A relay polling every 20 ms, on the real database and task queue unless told otherwise. */
  const startRelay = (options: Partial<Parameters<typeof startOutboxRelay>[0]> = {}) =>
    startOutboxRelay({
      db: handle.db,
      taskQueue: tasks,
      clock: systemClock,
      log: logs.log,
      pollMs: 20,
      ...options,
    });

  it('publishes every event once the database answers again', async () => {
    const failures = { left: 1 };
    const relay = startRelay({ db: failingUpdates(handle.db, failures) });
    try {
      await insertOutboxEvent(handle.db, 'relay.test', { n: 1 });
      await untilAllPublished();
      expect(failures.left).toBe(0);
      expect(await unpublished()).toBe(0);
      // And later events too: the relay is not left holding the old failure.
      await insertOutboxEvent(handle.db, 'relay.test', { n: 2 });
      expect(await relay.drainOnce()).toBeGreaterThanOrEqual(0);
      await untilAllPublished();
      expect(await unpublished()).toBe(0);
      expect(logs.lines().some((line) => String(line.msg).includes('outbox relay failed'))).toBe(true);
    } finally {
      await relay.stop();
    }
  });

  it('publishes past an event whose payload its schema refuses, logging it, and relays the events behind it', async () => {
    // A payment request whose id is no uuid (an operator's insert, a bug): its task can never be
    // made. Before the table of schemas, the task queue threw on it inside every batch, so neither
    // it nor any event behind it was ever published again.
    const malformed = await insertOutboxEvent(handle.db, 'payment.requested', { paymentId: 'not-a-uuid' });
    const behind = await insertOutboxEvent(handle.db, 'user.registered', { userId: randomUUID() });
    const relay = startRelay();
    try {
      await untilAllPublished();
      expect(await unpublished()).toBe(0);
      const refusal = logs
        .lines()
        .find((line) => line.eventId === malformed && String(line.msg).includes('refused by its schema'));
      expect(refusal).toMatchObject({ level: 50, event: 'payment.requested' });
      expect(JSON.stringify(refusal?.issues)).toContain('paymentId');
      const emails = tasks.queues().find((queue) => queue.name === 'emails');
      for (const template of ['welcome', 'verify-email']) {
        expect(await emails?.getJob(taskId(behind, template))).toMatchObject({
          data: { template, key: taskId(behind, template) },
        });
      }
    } finally {
      await relay.stop();
    }
  });

  it('publishes past events with a payload that is no object or a type named like an Object.prototype key, logging the refused, and relays and pushes live the events behind them', async () => {
    // Written as an operator (or a bug) would: not through insertOutboxEvent, whose type forbids it.
    // Before, the notification rules threw a TypeError on each (`null.userId`, `RULES.constructor`
    // being Object) in every batch, so nothing behind them was relayed again; and the live pushes
    // threw on the null bid, dropping the pushes of the rest of its batch.
    const raw = async (type: string, payload: string) =>
      (
        await sql<{ id: OutboxEventId }>`insert into outbox_events (type, payload)
          values (${type}, ${payload}::jsonb) returning id`.execute(handle.db)
      ).rows[0]?.id;
    // Payloads that are no object: refused, with an error line each.
    const refused = [
      ['payment.succeeded', await raw('payment.succeeded', 'null')],
      ['escrow.released', await raw('escrow.released', '[]')],
      ['bid.placed', await raw('bid.placed', 'null')],
    ] as const;
    // Types no rule has (own keys only): events that cause nothing, like any type without tasks.
    const inherited = [
      await raw('constructor', '{}'),
      await raw('__proto__', '{}'),
      await raw('toString', '{}'),
    ];
    const hirer = randomUUID();
    const bid = await insertOutboxEvent(handle.db, 'bid.placed', {
      bidId: randomUUID(),
      jobId: randomUUID(),
      hirerId: hirer,
      notify: [hirer],
    });
    const behind = await insertOutboxEvent(handle.db, 'user.registered', { userId: randomUUID() });
    const bus = createMemoryBus();
    const pushed: string[] = [];
    await bus.subscribe(MARKET_EVENT_TOPIC, (payload) => pushed.push(payload.event.id));
    const logged = logs.lines().length;
    const relay = startRelay({
      bus,
    });
    try {
      for (let i = 0; i < 200 && ((await unpublished()) > 0 || pushed.length === 0); i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await unpublished()).toBe(0);
      const lines = logs.lines().slice(logged);
      for (const [type, id] of refused) {
        expect(id, type).toBeDefined();
        expect(
          lines.some((line) => line.eventId === id && line.event === type && line.level === 50),
          `an error line for ${type}`,
        ).toBe(true);
      }
      const published = await handle.db
        .selectFrom('outbox_events')
        .select('id')
        .where(
          'id',
          'in',
          inherited.filter((id) => id !== undefined),
        )
        .where('published_at', 'is not', null)
        .execute();
      expect(published).toHaveLength(3);
      expect(lines.filter((line) => String(line.msg).includes('outbox relay failed'))).toEqual([]);
      // The valid bid behind the null one is still pushed live; the null one pushes nothing.
      expect(pushed).toEqual([bid]);
      const emails = tasks.queues().find((queue) => queue.name === 'emails');
      for (const template of ['welcome', 'verify-email']) {
        expect(await emails?.getJob(taskId(behind, template))).toMatchObject({
          data: { template, key: taskId(behind, template) },
        });
      }
      const notifications = tasks.queues().find((queue) => queue.name === 'notifications');
      expect(await notifications?.getJob(taskId(bid, hirer))).toMatchObject({ data: { eventId: bid } });
    } finally {
      await relay.stop();
    }
  });

  it('still fails and retries the batch when the task queue fails (Redis), not publishing the event without its tasks', async () => {
    const userId = randomUUID();
    const event = await insertOutboxEvent(handle.db, 'user.registered', { userId });
    const failures = { left: 1 };
    const flaky: TaskQueue = {
      ...tasks,
      enqueue: async (...args) => {
        if (failures.left > 0) {
          failures.left -= 1;
          throw new Error('Connection is closed.');
        }
        await tasks.enqueue(...args);
      },
    };
    const logged = logs.lines().length;
    const relay = startRelay({ taskQueue: flaky });
    try {
      await untilAllPublished();
      expect(failures.left).toBe(0);
      expect(await unpublished()).toBe(0);
      const lines = logs.lines().slice(logged);
      expect(lines.some((line) => String(line.msg).includes('outbox relay failed'))).toBe(true);
      expect(lines.some((line) => line.eventId === event && line.level === 50)).toBe(false);
      const emails = tasks.queues().find((queue) => queue.name === 'emails');
      expect(await emails?.getJob(taskId(event, 'welcome'))).toMatchObject({ data: { template: 'welcome' } });
    } finally {
      await relay.stop();
    }
  });
});
