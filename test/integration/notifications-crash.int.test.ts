/**
 * Notifications survive a worker SIGKILLed mid-task (issue 13): the worker process is killed while
 * the digest mail of an offline user is in SMTP DATA (the server reads it and never answers); a new
 * worker finishes the work. Exactly one notification and one mail, whatever ran twice.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { insertOutboxEvent } from '../../src/db/repositories/outbox.repo.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { insertActor } from '../support/payments-db.js';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.js';
import { type GigwireProcess, spawnGigwire } from '../support/spawn.js';

describe('notifications worker killed mid-task', () => {
  let db: TestDatabase;
  let handle: DbHandle;
  let smtp: TestSmtpServer;
  const workers: GigwireProcess[] = [];
  const logs = captureLogs();
  const prefix = uniqueRedisPrefix();

  beforeAll(async () => {
    db = await createMigratedDatabase();
    handle = await createDb({ kind: 'postgres', url: db.url, poolMax: 2 }, logs.log);
    smtp = await startSmtpServer();
  });
  afterAll(async () => {
    for (const worker of workers) await worker.stop('SIGKILL').catch(() => undefined);
    await handle?.close();
    await smtp?.close();
    await db?.drop();
  });

  const startWorker = () => {
    const worker = spawnGigwire({
      ROLE: 'worker',
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: prefix,
      SMTP_URL: smtp.url,
      OUTBOX_POLL_MS: '50',
      TASK_LOCK_MS: '1500',
      NOTIFY_EMAIL_DIGEST_S: '1',
      LEDGER_AUDIT_INTERVAL_S: '0',
    });
    workers.push(worker);
    return worker;
  };

  it('stores one notification and sends one digest after a SIGKILL during the send and a restart', async () => {
    smtp.stall(true);
    const first = startWorker();
    await first.waitUntilUp(60_000);
    // No account flow (it would mail too): a user row, offline, and an event naming them.
    const hirer = await insertActor(handle.db, 'hirer');
    const { email } = await handle.db
      .selectFrom('users')
      .select('email')
      .where('id', '=', hirer.userId)
      .executeTakeFirstOrThrow();
    await insertOutboxEvent(handle.db, 'bid.placed', {
      bidId: crypto.randomUUID(),
      jobId: crypto.randomUUID(),
      hirerId: hirer.userId,
      amount: 7_700,
      notify: [hirer.userId],
    });
    await smtp.stalledOnce();
    await first.stop('SIGKILL');
    expect(smtp.accepted()).toEqual([]);

    smtp.stall(false);
    const second = startWorker();
    await second.waitUntilUp(60_000);
    const mail = await smtp.waitFor((m) => m.to.includes(email), 30_000);
    expect(mail.subject).toBe('New bid on your job');
    expect(mail.body).toContain('77.00 USD');
    // Time for a duplicate to show up: another stalled-task pass, relay polls.
    await sleep(3_000);
    expect(smtp.accepted().filter((m) => m.to.includes(email))).toHaveLength(1);
    const rows = await handle.db
      .selectFrom('notifications')
      .select(['type', 'digest_id'])
      .where('user_id', '=', hirer.userId)
      .execute();
    expect(rows).toHaveLength(1);
    const digests = await handle.db.selectFrom('notification_digests').select('status').execute();
    expect(digests.map((d) => d.status)).toEqual(['sent']);
    expect((await second.stop('SIGTERM')).code).toBe(0);
  }, 90_000);
});
