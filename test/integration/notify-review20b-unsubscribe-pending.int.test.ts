/**
 * Notify review 20b: a digest mail stored while the SMTP server deferred it (451, for hours at
 * worst: 15 attempts over ~4.5 h) was sent once the server took it, although its recipient had
 * unsubscribed meanwhile (the one-click link of an earlier digest): the email worker re-checked the
 * account before each attempt, never the preferences. Now a stored digest none of whose
 * notifications is still wanted by mail is recorded `failed` and not sent; one carrying a security
 * notice (always mailed) still goes out. Real PostgreSQL, Redis and SMTP server; the digest is
 * stored by the real `sendDigest`, the mail sent by the real email task.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { attachToOpenDigest, insertNotificationOnce } from '../../src/db/repositories/notifications.repo.js';
import { insertOutboxEvent } from '../../src/db/repositories/outbox.repo.js';
import type { AuthService } from '../../src/domain/auth/service.js';
import {
  createNotificationsApi,
  type DigestMailInput,
  deliverEventNotification,
  digestEmailKey,
  type NotificationsDeps,
  sendDigest,
} from '../../src/domain/notifications/service.js';
import type { NotificationType } from '../../src/domain/notifications/types.js';
import { unsubscribeTokens } from '../../src/domain/notifications/unsubscribe.js';
import type { Bus } from '../../src/platform/bus/bus.js';
import { systemClock } from '../../src/platform/clock.js';
import { createTaskQueue, type TaskQueue } from '../../src/platform/queues/tasks.js';
import { renderNotificationDigest } from '../../src/workers/emails/digest-template.js';
import { type EmailWorkerDeps, sendEmailTask } from '../../src/workers/emails/processor.js';
import { createMailTransport, type MailTransport } from '../../src/workers/emails/transport.js';
import { captureLogs, sharedRedisUrl, uniqueRedisPrefix } from '../support/context.js';
import { insertActor, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.js';

describe('a digest mail waiting for a deferring SMTP server', () => {
  let t: PaymentsTestDb;
  let redis: Redis;
  let smtp: TestSmtpServer;
  let transport: MailTransport;
  let taskQueue: TaskQueue;
  const logs = captureLogs();
  const redisPrefix = uniqueRedisPrefix();

  beforeAll(async () => {
    t = await openPaymentsTestDb(4);
    redis = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: null });
    smtp = await startSmtpServer();
    transport = createMailTransport(smtp.url);
    // The producer only: the emails.send task sendDigest enqueues is run by hand below.
    taskQueue = createTaskQueue(redis, redisPrefix);
  });
  afterAll(async () => {
    await taskQueue?.close();
    transport?.close();
    await smtp?.close();
    redis?.disconnect();
    await t?.close();
  });

  /** The digest of these notification types, stored as `sendDigest` stores it; its mail's key. */
  const storedDigest = async (userId: UserId, types: readonly NotificationType[]) => {
    const digestId = await t.db.transaction().execute(async (trx) => {
      let id = '';
      for (const type of types) {
        const { row } = await insertNotificationOnce(trx, {
          userId,
          eventId: randomUUID(),
          type,
          title: `a ${type}`,
          body: 'body',
          data: {},
          inApp: true,
          traceId: null,
        });
        // Due now: the digest task below closes it at once.
        id = (await attachToOpenDigest(trx, row.id, userId, new Date())).id;
      }
      return id;
    });
    const deps: NotificationsDeps = {
      db: t.db,
      bus: {} as Bus, // sendDigest pushes nothing
      clock: systemClock,
      log: logs.log,
      tasks: taskQueue,
      isOnline: async () => false,
      settings: { digestMs: 0, unreadAfterMs: 0, currency: 'USD' },
    };
    const outcome = await sendDigest(
      { ...deps, render: (input) => renderNotificationDigest('http://localhost', input) },
      digestId,
    );
    expect(outcome).toBe('sent');
    return digestEmailKey(digestId);
  };

  const emailDeps = (): EmailWorkerDeps => ({
    db: t.db,
    auth: {} as AuthService, // a digest carries no single-use token
    transport,
    clock: systemClock,
    log: logs.log,
    connection: redis,
    redisPrefix,
    publicUrl: 'http://localhost',
    mailFrom: 'gigwire <noreply@example.test>',
    lockMs: 5_000,
  });

  const mailOf = (key: string) =>
    t.db
      .selectFrom('emails')
      .select(['status', 'last_error'])
      .where('idempotency_key', '=', key)
      .executeTakeFirstOrThrow();

  /** Defers the first attempt, unsubscribes by the one-click link, then lets the server take mail. */
  const deferThenUnsubscribe = async (userId: UserId, address: string, key: string) => {
    const payload = { template: 'notification-digest' as const, userId, key };
    smtp.refuse(address, { code: 451, message: '4.3.0 try again later' });
    await expect(sendEmailTask(emailDeps(), payload)).rejects.toThrow(/451/);
    expect((await mailOf(key)).status).toBe('pending');
    const token = await unsubscribeTokens(t.db).issue(userId, systemClock.now());
    await createNotificationsApi({ db: t.db, bus: {} as Bus, clock: systemClock, log: logs.log }).unsubscribe(
      token,
    );
    smtp.refuse(address, undefined);
    await sendEmailTask(emailDeps(), payload);
  };

  const addressOf = async (userId: UserId) =>
    (await t.db.selectFrom('users').select('email').where('id', '=', userId).executeTakeFirstOrThrow()).email;

  it('is not sent once its recipient unsubscribed, and is recorded failed with the reason', async () => {
    const { userId } = await insertActor(t.db, 'unsub');
    const address = await addressOf(userId);
    const key = await storedDigest(userId, ['bid.received', 'contract.delivered']);

    await deferThenUnsubscribe(userId, address, key);

    expect(smtp.accepted().filter((mail) => mail.to.includes(address))).toEqual([]);
    const mail = await mailOf(key);
    expect(mail.status).toBe('failed');
    expect(mail.last_error).toMatch(/unsubscribed/);
  });

  it('is still sent when it carries a security notice, which no link turns off', async () => {
    const { userId } = await insertActor(t.db, 'unsubsec');
    const address = await addressOf(userId);
    const key = await storedDigest(userId, ['bid.received', 'security.new_login']);

    await deferThenUnsubscribe(userId, address, key);

    expect(smtp.accepted().filter((mail) => mail.to.includes(address))).toHaveLength(1);
    expect((await mailOf(key)).status).toBe('sent');
  });

  // Review 26: other users' bids and transfers can put any number of rows into one digest; the
  // digest task loaded every one of them (the mail lists 50) inside its transaction.
  it('reads at most the 50 notifications a digest lists, security first, and counts the rest', async () => {
    const { userId } = await insertActor(t.db, 'r26flood');
    const digestId = await t.db.transaction().execute(async (trx) => {
      let id = '';
      for (const [index, type] of [
        ...Array.from({ length: 60 }, () => 'transfer.received' as const),
        'security.new_login' as const,
      ].entries()) {
        const { row } = await insertNotificationOnce(trx, {
          userId,
          eventId: `r26-flood-${index}`,
          type,
          title: `n${index}`,
          body: 'body',
          data: {},
          inApp: true,
          traceId: null,
        });
        id = (await attachToOpenDigest(trx, row.id, userId, new Date())).id;
      }
      return id;
    });
    const inputs: DigestMailInput[] = [];
    const deps: NotificationsDeps = {
      db: t.db,
      bus: {} as Bus,
      clock: systemClock,
      log: logs.log,
      tasks: taskQueue,
      isOnline: async () => false,
      settings: { digestMs: 0, unreadAfterMs: 0, currency: 'USD' },
    };
    const render = (input: DigestMailInput) => {
      inputs.push(input);
      return renderNotificationDigest('http://localhost', input);
    };
    expect(await sendDigest({ ...deps, render }, digestId)).toBe('sent');
    const [input] = inputs;
    expect(input?.items).toHaveLength(50);
    // The security notice (stored last) is among them.
    expect(input?.items.filter((item) => item.type === 'security.new_login')).toHaveLength(1);
    const mail = await t.db
      .selectFrom('emails')
      .select(['subject', 'text_body'])
      .where('idempotency_key', '=', digestEmailKey(digestId))
      .executeTakeFirstOrThrow();
    expect(mail.subject).toBe('61 new notifications on gigwire');
    expect(mail.text_body).toContain('…and 11 more: http://localhost/#/notifications');
  });

  // Review 26: a deliver task for an account deleted since its event failed its foreign key on
  // every attempt, retried for hours (a driver error); now it is done at once.
  it('ends a deliver task whose recipient was deleted since the event', async () => {
    const { userId: sender } = await insertActor(t.db, 'r26sender');
    const gone = randomUUID() as UserId;
    const eventId = await insertOutboxEvent(t.db, 'transfer.received', {
      toUserId: gone,
      fromUserId: sender,
      amount: 5,
      transactionId: '1',
    });
    const deps: NotificationsDeps = {
      db: t.db,
      bus: {} as Bus,
      clock: systemClock,
      log: logs.log,
      tasks: taskQueue,
      isOnline: async () => false,
      settings: { digestMs: 0, unreadAfterMs: 0, currency: 'USD' },
    };
    expect(await deliverEventNotification(deps, { eventId, userId: gone })).toBe('no-user');
  });
});
