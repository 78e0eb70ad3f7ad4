/**
 * An email task that runs out of attempts while the database is down (the usual reason it failed)
 * must not take the node down with it: recording the failure fails too, and that is a log line, not
 * an unhandled rejection (which stops the process). Real Redis and BullMQ; the database is a real
 * PostgreSQL database dropped before the task runs.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import type { AuthService } from '../../src/domain/auth/service.js';
import { systemClock } from '../../src/platform/clock.js';
import { bullPrefix } from '../../src/platform/queues/tasks.js';
import { startEmailWorker } from '../../src/workers/emails/processor.js';
import { createMailTransport } from '../../src/workers/emails/transport.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  uniqueRedisPrefix,
} from '../support/context.js';

describe('email worker while the database is down', () => {
  let handle: DbHandle;
  let redis: Redis;
  const prefix = uniqueRedisPrefix();
  const logs = captureLogs();

  beforeAll(async () => {
    const database = await createMigratedDatabase();
    handle = await createDb({ kind: 'postgres', url: database.url, poolMax: 2 }, logs.log);
    // Gone before the task runs: every query of the worker fails as in an outage.
    await database.drop();
    redis = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    redis?.disconnect();
    await handle?.close().catch(() => undefined);
  });

  it('logs the failure it could not record, and the process lives on', async () => {
    const transport = createMailTransport('smtp://127.0.0.1:9');
    const worker = startEmailWorker({
      db: handle.db,
      auth: {} as AuthService, // never reached: the first query fails
      transport,
      clock: systemClock,
      log: logs.log,
      connection: redis,
      redisPrefix: prefix,
      publicUrl: 'http://localhost',
      mailFrom: 'gigwire <noreply@example.test>',
      lockMs: 5_000,
    });
    const queue = new Queue('emails', { connection: redis, prefix: bullPrefix(prefix) });
    try {
      await queue.add(
        'emails.send',
        { template: 'welcome', userId: crypto.randomUUID(), key: 'welcome.db-down' },
        { jobId: 'welcome.db-down', attempts: 1 },
      );
      for (let i = 0; i < 300; i++) {
        if (logs.lines().some((line) => line.msg === 'could not record a failed email')) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(logs.lines().some((line) => line.msg === 'email task failed')).toBe(true);
      expect(logs.lines().some((line) => line.msg === 'could not record a failed email')).toBe(true);
    } finally {
      await worker.close();
      await queue.close();
      transport.close();
    }
  }, 30_000);
});
