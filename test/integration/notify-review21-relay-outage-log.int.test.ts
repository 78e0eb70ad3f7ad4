/**
 * Notify review 21: the outbox relay logged a warning on every poll while PostgreSQL was down (every
 * OUTBOX_POLL_MS, 100 ms by default: 36 000 lines an hour per worker process). Now it logs the
 * start of an outage, then at most every OUTAGE_LOG_EVERY_MS with how many polls failed, and once
 * when a poll succeeds again. Real PostgreSQL and Redis; the database handle is wrapped only to
 * make the relay's reads fail while "down", as a refused connection would.
 */
import { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import type { Database } from '../../src/db/database.js';
import { insertOutboxEvent } from '../../src/db/repositories/outbox.repo.js';
import { startOutboxRelay } from '../../src/domain/events/relay.js';
import { systemClock } from '../../src/platform/clock.js';
import { createTaskQueue, type TaskQueue } from '../../src/platform/queues/tasks.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { untilDefined } from '../support/poll.js';

/** The real database, except that every read fails while `outage.down` (counted in `outage.failed`). */
function unreachableWhileDown(
  db: Kysely<Database>,
  outage: { down: boolean; failed: number },
): Kysely<Database> {
  return new Proxy(db, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (property !== 'selectFrom') return typeof value === 'function' ? value.bind(target) : value;
      return (...args: Parameters<typeof target.selectFrom>) => {
        if (outage.down) {
          outage.failed += 1;
          throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
        }
        return target.selectFrom(...args);
      };
    },
  });
}

describe('outbox relay through a database outage', () => {
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

  it('logs the outage once, not every poll, and its end once with the count of failed polls', async () => {
    const outage = { down: true, failed: 0 };
    const relay = startOutboxRelay({
      db: unreachableWhileDown(handle.db, outage),
      taskQueue: tasks,
      clock: systemClock,
      log: logs.log,
      pollMs: 5,
      outageLogEveryMs: 3_600_000,
    });
    const failedLines = () =>
      logs.lines().filter((line) => String(line.msg).startsWith('outbox relay failed'));
    try {
      await untilDefined(async () => (outage.failed >= 20 ? true : undefined), '20 failed polls', 5_000);
      expect(failedLines()).toHaveLength(1);
      expect(failedLines()[0]).toMatchObject({
        level: 40,
        err: { message: 'connect ECONNREFUSED 127.0.0.1:5432' },
      });
      outage.down = false;
      await insertOutboxEvent(handle.db, 'relay.test', { n: 1 });
      const recovered = await untilDefined(
        async () => logs.lines().find((line) => line.msg === 'outbox relay recovered'),
        'the recovery line',
        5_000,
      );
      expect(recovered).toMatchObject({ level: 30, failures: outage.failed });
      expect(failedLines()).toHaveLength(1);
    } finally {
      await relay.stop();
    }
  });

  it('logs a long outage again after outageLogEveryMs, with the polls failed since the last line', async () => {
    const before = logs.lines().length;
    const outage = { down: true, failed: 0 };
    const relay = startOutboxRelay({
      db: unreachableWhileDown(handle.db, outage),
      taskQueue: tasks,
      clock: systemClock,
      log: logs.log,
      pollMs: 5,
      outageLogEveryMs: 0,
    });
    try {
      await untilDefined(async () => (outage.failed >= 3 ? true : undefined), '3 failed polls', 5_000);
      outage.down = false;
      await untilDefined(
        async () =>
          logs
            .lines()
            .slice(before)
            .find((line) => line.msg === 'outbox relay recovered'),
        'the recovery line',
        5_000,
      );
      const again = logs
        .lines()
        .slice(before)
        .filter((line) => line.msg === 'outbox relay failed; still retrying');
      expect(again.length).toBeGreaterThan(0);
      expect(again[0]).toMatchObject({ failures: 2, failedSinceLastLine: 1 });
    } finally {
      await relay.stop();
    }
  });
});
