/**
 * Notifications end to end on real PostgreSQL, Redis and an SMTP server (issue 13): outbox event →
 * relay → `notifications.deliver` task → stored once → pushed to every socket of the user on two
 * nodes → listed over REST; read on one socket → `notifications.read` pushed to the other; offline
 * users get one digest mail with what is still unread (none when they read first); a task run
 * twice (or enqueued twice) stores and mails once; unread room messages of an offline member
 * become one `messages.unread` notification; preferences decide for every combination.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createClient } from '../../protocol/src/client/index.js';
import type { UserId } from '../../protocol/src/ids.js';
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { insertOutboxEvent } from '../../src/db/repositories/outbox.repo.js';
import { enqueueNotificationTasks } from '../../src/domain/notifications/relay.js';
import type { NotificationsDeps } from '../../src/domain/notifications/service.js';
import { UNSUBSCRIBE_TTL_MS, unsubscribeTokens } from '../../src/domain/notifications/unsubscribe.js';
import { createMemoryBus } from '../../src/platform/bus/bus.js';
import { systemClock } from '../../src/platform/clock.js';
import { isAppError } from '../../src/platform/errors.js';
import { createRedisPresenceStore } from '../../src/platform/presence-store.js';
import { bullPrefix, createTaskQueue, type TaskQueue, taskId } from '../../src/platform/queues/tasks.js';
import { runShutdown } from '../../src/platform/shutdown.js';
import { runNotificationTask } from '../../src/workers/notifications/processor.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  testConfig,
  uniqueRedisPrefix,
} from '../support/context.js';
import { httpClient, makeContacts, type Registered, registerUser } from '../support/http.js';
import { type ReceivedMail, startSmtpServer, type TestSmtpServer, verifyByMail } from '../support/smtp.js';
import { openSocket, type WireFrame } from '../support/ws-client.js';

const DIGEST_S = 2;
let lastLogs = () => '';

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}: ${lastLogs()}`);
}

describe('notifications', () => {
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let nodeA: RunningNode;
  let nodeB: RunningNode;
  let handle: DbHandle;
  let redis: Redis;
  let queue: Queue;
  let producer: TaskQueue;
  const prefix = uniqueRedisPrefix();
  const logs = captureLogs();
  lastLogs = () =>
    logs
      .lines()
      .filter((l) => String(l.msg).includes('notification') || String(l.msg).includes('digest'))
      .slice(-15)
      .map((l) => JSON.stringify(l))
      .join('\n');
  let api: ReturnType<typeof httpClient>;

  beforeAll(async () => {
    db = await createMigratedDatabase();
    smtp = await startSmtpServer();
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: prefix,
      SMTP_URL: smtp.url,
      OUTBOX_POLL_MS: '50',
      NOTIFY_EMAIL_DIGEST_S: String(DIGEST_S),
      UNREAD_EMAIL_AFTER_S: '1',
      LEDGER_AUDIT_INTERVAL_S: '0',
    };
    nodeA = await startNode(testConfig({ ...env, NODE_ID: 'node-a' }), logs.log, { pid: process.pid });
    nodeB = await startNode(testConfig({ ...env, NODE_ID: 'node-b', ROLE: 'gateway' }), logs.log, {
      pid: process.pid,
    });
    api = httpClient(nodeA.baseUrl);
    handle = await createDb({ kind: 'postgres', url: db.url, poolMax: 4 }, logs.log);
    redis = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: null });
    queue = new Queue('notifications', { connection: redis, prefix: bullPrefix(prefix) });
    producer = createTaskQueue(redis, prefix);
  }, 60_000);

  afterAll(async () => {
    await producer?.close();
    await queue?.close();
    redis?.disconnect();
    await handle?.close();
    if (nodeB !== undefined) await runShutdown(nodeB.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    if (nodeA !== undefined) await runShutdown(nodeA.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    await smtp?.close();
    await db?.drop();
  });

  /** The worker's dependencies for running tasks in this process (a memory bus: nothing is pushed). */
  const directWorker = (isOnline: NotificationsDeps['isOnline'], digestMs: number) => ({
    notifications: {
      db: handle.db,
      bus: createMemoryBus(),
      clock: systemClock,
      log: logs.log,
      tasks: producer,
      isOnline,
      settings: { digestMs, unreadAfterMs: 1000, currency: 'USD' },
    },
    publicUrl: 'http://localhost',
    connection: redis,
    redisPrefix: prefix,
    lockMs: 5000,
  });

  const wsUrl = (node: RunningNode) => node.uwsUrl ?? `${node.baseUrl.replace(/^http/, 'ws')}/ws`;

  const list = async (user: Registered, query = '') =>
    (
      await api.get<{
        data: { id: string; type: string; title: string; body: string; readAt: string | null }[];
      }>(`/v1/notifications${query}`, user.accessToken)
    ).body.data;

  const unreadCount = async (user: Registered) =>
    (await api.get<{ count: number }>('/v1/notifications/unread-count', user.accessToken)).body.count;

  /** An outbox event as a producer writes it (the relay picks it up). */
  const bidPlaced = (hirer: Registered, amount: number) =>
    insertOutboxEvent(handle.db, 'bid.placed', {
      bidId: crypto.randomUUID(),
      jobId: crypto.randomUUID(),
      workerId: crypto.randomUUID(),
      hirerId: hirer.id,
      amount,
      notify: [hirer.id],
    });

  /** A user who finished signing up: their address verified (the only kind notifications mail). */
  const registerVerified = async (overrides: Parameters<typeof registerUser>[1] = {}) => {
    const user = await registerUser(api, overrides);
    await verifyByMail(smtp, api, user);
    return user;
  };

  /** Registration mails (welcome, verify) go to the same inboxes: only the others are notifications. */
  const ACCOUNT_MAILS = new Set(['Welcome to gigwire', 'Confirm your email address']);
  const isNotificationMailTo = (user: Registered) => (mail: ReceivedMail) =>
    mail.to.includes(user.email) && !ACCOUNT_MAILS.has(mail.subject);
  const mailsTo = (user: Registered) => smtp.accepted().filter(isNotificationMailTo(user));

  const digestsOf = (user: Registered) =>
    handle.db
      .selectFrom('notification_digests')
      .selectAll()
      .where('user_id', '=', user.id as UserId)
      .execute();

  it('pushes to both sockets of a user on two nodes once, lists it, and read on one socket clears the other', async () => {
    const user = await registerVerified();
    const onA = await openSocket(wsUrl(nodeA), user.accessToken, 'json');
    const onB = await openSocket(wsUrl(nodeB), user.accessToken, 'msgpack');
    await onA.next((f) => f.t === 'hello');
    await onB.next((f) => f.t === 'hello');

    // A real producer: a login from a device none of the user's sessions came from.
    const login = await api.call('POST', '/v1/auth/login', {
      body: { login: user.username, password: user.password },
      headers: { 'user-agent': 'NewDevice/1.0' },
    });
    expect(login.status).toBe(200);

    const isNewLogin = (f: WireFrame) =>
      f.t === 'notification' && (f.d as { kind: string }).kind === 'security.new_login';
    const pushedA = await onA.next(isNewLogin, 10_000);
    await onB.next(isNewLogin, 10_000);
    const id = (pushedA.d as { id: string }).id;

    const listed = await list(user);
    expect(listed).toMatchObject([{ id, type: 'security.new_login', readAt: null }]);
    expect(await unreadCount(user)).toBe(1);

    const reply = await onA.request('notifications.read', { ids: [id] });
    expect(reply).toMatchObject({ t: 'ok', d: { updated: 1, unreadCount: 0 } });
    const cleared = await onB.next((f) => f.t === 'notifications.read');
    expect(cleared.d).toEqual({ ids: [id], unreadCount: 0 });
    expect(await unreadCount(user)).toBe(0);
    expect((await list(user, '?unread=true')).length).toBe(0);

    // REST read-all reaches every socket, the asking one too (it is not a socket).
    await api.post('/v1/notifications/read', { all: true }, user.accessToken);
    await onA.next((f) => f.t === 'notifications.read' && (f.d as { all?: boolean }).all === true);
    // Each socket got the notification once, and the asking socket no push for its own read.
    expect(onA.frames.filter(isNewLogin)).toHaveLength(1);
    expect(onB.frames.filter(isNewLogin)).toHaveLength(1);
    expect(onA.frames.filter((f) => f.t === 'notifications.read')).toHaveLength(1);
    onA.close();
    onB.close();
  }, 30_000);

  it('tells a hirer of a real bid placed over REST, with the job title and the bidder', async () => {
    const hirer = await registerVerified({ roles: ['hirer'] });
    const bidder = await registerVerified({ roles: ['worker'] });
    const categories = await api.get<{ data: { id: string }[] }>('/v1/categories', hirer.accessToken);
    const job = await api.post<{ id: string }>(
      '/v1/jobs',
      {
        title: 'Fix a flaky build',
        description: 'Caches go stale in CI.',
        categoryId: categories.body.data[0]?.id,
        skills: ['gradle'],
        budget: { kind: 'fixed', amount: 30_000, currency: 'USD' },
      },
      hirer.accessToken,
    );
    expect(job.status).toBe(201);
    const bid = await api.call('POST', `/v1/jobs/${job.body.id}/bids`, {
      token: bidder.accessToken,
      headers: { 'idempotency-key': crypto.randomUUID() },
      body: { amount: 25_000, deliveryDays: 5, coverLetter: 'Done this before.' },
    });
    expect(bid.status).toBe(201);
    const [received] = await until(async () => {
      const rows = await list(hirer);
      return rows.length > 0 ? rows : undefined;
    }, 'the bid notification');
    expect(received).toMatchObject({
      type: 'bid.received',
      title: 'New bid on "Fix a flaky build"',
      body: `${bidder.username} bid 250.00 USD on "Fix a flaky build".`,
    });
    expect((await list(bidder)).length).toBe(0);
  }, 20_000);

  it('carries one trace id from the REST request through the outbox relay to the worker', async () => {
    const user = await registerVerified();
    const traceId = `trace-${crypto.randomUUID()}`;
    const login = await api.call('POST', '/v1/auth/login', {
      body: { login: user.username, password: user.password },
      headers: { 'user-agent': 'TraceDevice/2.0', 'x-request-id': traceId },
    });
    expect(login.status).toBe(200);
    const lines = () => logs.lines().filter((line) => line.traceId === traceId);
    await until(
      async () => (lines().some((l) => l.msg === 'notification task done') ? true : undefined),
      'the worker’s line',
    );
    const messages = lines().map((l) => l.msg);
    expect(messages).toContain('request completed');
    expect(messages).toContain('notification tasks enqueued');
    expect(messages).toContain('notification stored');
    const stored = await handle.db
      .selectFrom('notifications')
      .select('trace_id')
      .where('user_id', '=', user.id as UserId)
      .executeTakeFirstOrThrow();
    expect(stored.trace_id).toBe(traceId);
  }, 20_000);

  it('SDK: notification and notifications.read events, readNotifications', async () => {
    const user = await registerVerified();
    const client = createClient({ url: wsUrl(nodeB), WebSocket, getAccessToken: () => user.accessToken });
    const seen: { t: string; d: unknown }[] = [];
    client.on('notification', (d) => seen.push({ t: 'notification', d }));
    client.on('notifications.read', (d) => seen.push({ t: 'notifications.read', d }));
    try {
      await client.whenConnected();
      await bidPlaced(user, 100);
      await until(async () => (seen.length > 0 ? true : undefined), 'the notification event');
      const [id] = (await list(user)).map((n) => n.id);
      await api.post('/v1/notifications/read', { ids: [id] }, user.accessToken);
      await until(async () => (seen.length > 1 ? true : undefined), 'the read event');
      expect(seen).toMatchObject([
        { t: 'notification', d: { id, kind: 'bid.received' } },
        { t: 'notifications.read', d: { ids: [id], unreadCount: 0 } },
      ]);
      expect(await client.readNotifications('all')).toEqual({ updated: 0, unreadCount: 0 });
    } finally {
      client.close();
    }
  }, 20_000);

  it('announces reads that race in the order they happened: the last count other devices get is the truth', async () => {
    const user = await registerVerified();
    const watcher = await openSocket(wsUrl(nodeB), user.accessToken, 'json');
    await watcher.next((f) => f.t === 'hello');
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 6; i++) await bidPlaced(user, 100 + i);
      const unread = await until(async () => {
        const rows = await list(user, '?unread=true');
        return rows.length === 6 ? rows : undefined;
      }, 'six unread notifications');
      const before = watcher.frames.length;
      await Promise.all([
        ...unread.map((n) => api.post('/v1/notifications/read', { ids: [n.id] }, user.accessToken)),
        api.post('/v1/notifications/read', { all: true }, user.accessToken),
      ]);
      expect(await unreadCount(user)).toBe(0);
      // Seven announcements, in the order the reads were applied: the last says 0.
      await until(
        async () =>
          watcher.frames.slice(before).filter((f) => f.t === 'notifications.read').length >= 7
            ? true
            : undefined,
        'seven read announcements',
      );
      const counts = watcher.frames
        .slice(before)
        .filter((f) => f.t === 'notifications.read')
        .map((f) => (f.d as { unreadCount: number }).unreadCount);
      expect(counts.at(-1), `round ${round}: ${counts}`).toBe(0);
      // Counts only fall: each read saw every read before it.
      expect(counts, `round ${round}`).toEqual([...counts].sort((a, b) => b - a));
    }
    watcher.close();
  }, 60_000);

  it('mails an offline user one digest with every unread notification, and none to one who read first', async () => {
    const [away, reader] = [await registerVerified(), await registerVerified()];
    await bidPlaced(away, 1250);
    await bidPlaced(away, 990);
    await bidPlaced(reader, 500);

    // The reader reads before the digest is due (DIGEST_S after the notification): it closes empty.
    await until(
      async () => ((await list(reader)).length === 1 ? true : undefined),
      'the reader’s notification',
    );
    await api.post('/v1/notifications/read', { all: true }, reader.accessToken);

    const mail = await smtp.waitFor(isNotificationMailTo(away), 20_000);
    expect(mail.subject).toBe('2 new notifications on gigwire');
    expect(mail.body).toContain('12.50 USD');
    expect(mail.body).toContain('9.90 USD');
    await until(
      async () => ((await digestsOf(reader))[0]?.status === 'empty' ? true : undefined),
      'the empty digest',
    );
    expect(mailsTo(reader)).toHaveLength(0);
    expect(mailsTo(away)).toHaveLength(1);
    expect((await digestsOf(away)).map((d) => d.status)).toEqual(['sent']);
  }, 40_000);

  it('mails no digest to an unverified address or a locked account, nor a type turned off after it joined', async () => {
    // Anyone can sign up with anyone's address: until its owner verifies it, nothing is mailed there.
    const unverified = await registerUser(api);
    const locked = await registerVerified();
    const switched = await registerVerified();
    const control = await registerVerified();
    for (const user of [unverified, locked, switched, control]) await bidPlaced(user, 4_200);
    await until(async () => ((await digestsOf(switched)).length === 1 ? true : undefined), 'the open digest');
    await handle.db
      .updateTable('users')
      .set({ locked_at: new Date() })
      .where('id', '=', locked.id as UserId)
      .execute();
    const put = await api.call('PUT', '/v1/me/notification-preferences', {
      body: { preferences: { 'bid.received': { email: 'never' } } },
      token: switched.accessToken,
    });
    expect(put.status).toBe(200);

    await smtp.waitFor(isNotificationMailTo(control), 20_000);
    for (const user of [unverified, locked, switched]) {
      await until(
        async () => ((await digestsOf(user))[0]?.status === 'empty' ? true : undefined),
        'the digest closed empty',
      );
      expect(mailsTo(user)).toHaveLength(0);
    }
  }, 40_000);

  it('mails a security warning even when a session turns its mail off or reads it before the digest', async () => {
    const owner = await registerVerified();
    // Whoever holds a session (the intruder the warning is about) may not switch the mail off...
    for (const email of ['never', 'offline']) {
      const put = await api.call<{ code?: string }>('PUT', '/v1/me/notification-preferences', {
        body: { preferences: { 'security.new_login': { email } } },
        token: owner.accessToken,
      });
      expect(put.status, email).toBe(400);
      expect(put.body.code).toBe('VALIDATION_FAILED');
    }
    const prefs = await api.get<{ preferences: Record<string, { email: string }> }>(
      '/v1/me/notification-preferences',
      owner.accessToken,
    );
    expect(prefs.body.preferences['security.new_login']?.email).toBe('always');
    // ...nor cancel it by reading it first: the digest mails it anyway.
    await insertOutboxEvent(handle.db, 'user.new_login', {
      userId: owner.id,
      ip: '203.0.113.9',
      userAgent: 'intruder/1.0',
    });
    await until(
      async () => ((await list(owner)).some((n) => n.type === 'security.new_login') ? true : undefined),
      'the new-login notification',
    );
    expect((await api.post('/v1/notifications/read', { all: true }, owner.accessToken)).status).toBe(200);
    const mail = await smtp.waitFor(isNotificationMailTo(owner), 20_000);
    expect(mail.body).toContain('203.0.113.9');
    expect((await digestsOf(owner)).map((d) => d.status)).toEqual(['sent']);
  }, 40_000);

  it('stores and mails once when the task runs twice and the relay enqueues it twice', async () => {
    const user = await registerVerified();
    const eventId = await bidPlaced(user, 4200);
    const stored = await until(async () => {
      const rows = await list(user);
      return rows.length > 0 ? rows : undefined;
    }, 'the first delivery');
    expect(stored).toHaveLength(1);

    const worker = directWorker(async () => false, DIGEST_S * 1000);
    expect(await runNotificationTask(worker, 'notifications.deliver', { eventId, userId: user.id })).toBe(
      'duplicate',
    );
    expect(await runNotificationTask(worker, 'notifications.deliver', { eventId, userId: user.id })).toBe(
      'duplicate',
    );
    const event = await handle.db
      .selectFrom('outbox_events')
      .selectAll()
      .where('id', '=', eventId)
      .executeTakeFirstOrThrow();
    await enqueueNotificationTasks(event, producer);

    await smtp.waitFor(isNotificationMailTo(user), 20_000);
    // The digest task itself, run again after it sent: nothing new.
    const [digest] = await digestsOf(user);
    expect(await runNotificationTask(worker, 'notifications.digest', { digestId: digest?.id })).toBe('sent');
    await sleep(300);
    expect(mailsTo(user)).toHaveLength(1);
    const rows = await handle.db
      .selectFrom('notifications')
      .select('id')
      .where('user_id', '=', user.id as UserId)
      .execute();
    expect(rows).toHaveLength(1);
    const job = await queue.getJob(taskId(eventId, user.id));
    expect(job?.id).toBe(taskId(eventId, user.id));
  }, 40_000);

  it('turns 5 messages to an offline member into one messages.unread notification and one mail; a member who read first gets none', async () => {
    const [sender, away, reader] = [
      await registerVerified(),
      await registerVerified(),
      await registerVerified(),
    ];
    await makeContacts(api, sender, away);
    await makeContacts(api, sender, reader);
    const room = await api.post<{ id: string }>(
      '/v1/rooms',
      { kind: 'group', memberIds: [away.id, reader.id], title: 'Logo project' },
      sender.accessToken,
    );
    expect(room.status).toBe(201);
    const roomId = room.body.id;
    const socket = await openSocket(wsUrl(nodeA), sender.accessToken, 'json');
    for (let i = 1; i <= 5; i++) {
      const sent = await socket.request('room.send', { roomId, clientMsgId: `m${i}`, body: `message ${i}` });
      expect(sent.t).toBe('ok');
    }
    // The reader comes online and reads the room before the reminder is due, then leaves.
    const readerSocket = await openSocket(wsUrl(nodeB), reader.accessToken, 'json');
    expect(await readerSocket.request('room.read', { roomId, seq: 5 })).toMatchObject({ t: 'ok' });
    readerSocket.close();

    const unread = await until(async () => {
      const rows = (await list(away)).filter((n) => n.type === 'messages.unread');
      return rows.length > 0 ? rows : undefined;
    }, 'the unread reminder');
    expect(unread).toHaveLength(1);
    expect(unread[0]?.title).toBe('5 new messages in Logo project');
    expect(unread[0]?.body).toContain(sender.username);
    const mail = await smtp.waitFor(isNotificationMailTo(away), 20_000);
    expect(mail.subject).toBe('You have unread messages');
    expect(mail.body).toContain('5 new messages in Logo project');

    const readerCheck = taskId('unread', roomId, reader.id, '0');
    await until(
      async () => ((await queue.getJobState(readerCheck)) === 'completed' ? true : undefined),
      'the reader’s check',
    );
    expect((await list(reader)).filter((n) => n.type === 'messages.unread')).toHaveLength(0);
    await sleep(200);
    expect(mailsTo(away)).toHaveLength(1);
    socket.close();
  }, 40_000);

  it('honours every combination of inApp and email, online and offline', async () => {
    const presence = createRedisPresenceStore({ redis, prefix, nodeId: 'prefs-test', leaseMs: 60_000 });
    const combos = [
      { inApp: true, email: 'never' },
      { inApp: true, email: 'offline' },
      { inApp: true, email: 'always' },
      { inApp: false, email: 'never' },
      { inApp: false, email: 'offline' },
      { inApp: false, email: 'always' },
    ] as const;
    // One type per combination; each event below notifies the user with that type.
    const events = [
      { type: 'bid.received', event: 'bid.placed', payload: (u: string) => ({ hirerId: u, notify: [u] }) },
      { type: 'bid.rejected', event: 'bid.rejected', payload: (u: string) => ({ workerId: u, notify: [u] }) },
      {
        type: 'transfer.received',
        event: 'transfer.received',
        payload: (u: string) => ({ toUserId: u, amount: 5 }),
      },
      {
        type: 'payment.failed',
        event: 'payment.failed',
        payload: (u: string) => ({ userId: u, kind: 'top_up', amount: 5 }),
      },
      { type: 'contract.cancelled', event: 'contract.cancel', payload: (u: string) => ({ notify: [u] }) },
      { type: 'contract.delivered', event: 'contract.deliver', payload: (u: string) => ({ notify: [u] }) },
    ] as const;
    const worker = directWorker(async (userId) => (await presence.isOnline([userId]))[0] === true, 3_600_000);
    const rows: string[] = [];
    for (const online of [false, true]) {
      const user = await registerVerified();
      const preferences = Object.fromEntries(events.map((e, i) => [e.type, combos[i]]));
      const put = await api.call('PUT', '/v1/me/notification-preferences', {
        body: { preferences },
        token: user.accessToken,
      });
      expect(put.status).toBe(200);
      expect((put.body as { preferences: Record<string, unknown> }).preferences).toMatchObject(preferences);
      if (online) await presence.connected(user.id);
      for (const [i, e] of events.entries()) {
        // Written straight to the table, never relayed: this test runs the task itself.
        const row = await handle.db
          .insertInto('outbox_events')
          .values({ type: e.event, payload: e.payload(user.id), published_at: new Date() })
          .returning('id')
          .executeTakeFirstOrThrow();
        await runNotificationTask(worker, 'notifications.deliver', { eventId: row.id, userId: user.id });
        const stored = await handle.db
          .selectFrom('notifications')
          .select(['in_app', 'digest_id'])
          .where('event_id', '=', row.id)
          .executeTakeFirst();
        const combo = combos[i];
        const listed = (await list(user)).some((n) => n.type === e.type);
        rows.push(
          `${combo?.inApp ? 'inApp' : 'noApp'} ${combo?.email} ${online ? 'online' : 'offline'}: ${
            stored === undefined
              ? 'nothing'
              : `${listed ? 'listed' : 'unlisted'}${stored.digest_id === null ? '' : ' +email'}`
          }`,
        );
      }
      if (online) await presence.disconnected(user.id);
    }
    expect(rows).toEqual([
      'inApp never offline: listed',
      'inApp offline offline: listed +email',
      'inApp always offline: listed +email',
      'noApp never offline: nothing',
      'noApp offline offline: unlisted +email',
      'noApp always offline: unlisted +email',
      'inApp never online: listed',
      'inApp offline online: listed',
      'inApp always online: listed +email',
      'noApp never online: nothing',
      'noApp offline online: nothing',
      'noApp always online: unlisted +email',
    ]);
  }, 40_000);
  /** A bid.placed event written straight to the table, never relayed: the test runs its task itself. */
  const unrelayedBid = async (hirer: Registered, amount: number) =>
    (
      await handle.db
        .insertInto('outbox_events')
        .values({
          type: 'bid.placed',
          payload: { bidId: crypto.randomUUID(), hirerId: hirer.id, amount, notify: [hirer.id] },
          published_at: new Date(),
        })
        .returning('id')
        .executeTakeFirstOrThrow()
    ).id;

  it('mark all read up to the newest listed leaves one that arrived after the listing unread, and mails it', async () => {
    const user = await registerVerified();
    // Digests due in an hour: this test closes the digest itself, after the read.
    const worker = directWorker(async () => false, 3_600_000);
    const deliver = async (amount: number) =>
      runNotificationTask(worker, 'notifications.deliver', {
        eventId: await unrelayedBid(user, amount),
        userId: user.id,
      });
    expect(await deliver(1_100)).toBe('stored');
    expect(await deliver(2_200)).toBe('stored');
    const listed = await list(user);
    expect(listed).toHaveLength(2);
    // Arrives while the user looks at the list of two.
    expect(await deliver(3_300)).toBe('stored');
    const [unseen] = await list(user);
    expect(unseen?.body).toContain('33.00 USD');

    const watcher = await openSocket(wsUrl(nodeB), user.accessToken, 'json');
    await watcher.next((f) => f.t === 'hello');
    // Someone else's notification as the bound marks nothing.
    const other = await registerVerified();
    await runNotificationTask(worker, 'notifications.deliver', {
      eventId: await unrelayedBid(other, 10),
      userId: other.id,
    });
    const [othersId] = (await list(other)).map((n) => n.id);
    const foreign = await api.post('/v1/notifications/read', { all: true, upTo: othersId }, user.accessToken);
    expect(foreign.body).toEqual({ updated: 0, unreadCount: 3 });

    // The SDK's "mark all read" of the list it showed (over the WebSocket).
    const client = createClient({ url: wsUrl(nodeA), WebSocket, getAccessToken: () => user.accessToken });
    try {
      await client.whenConnected();
      expect(await client.markAllRead(listed[0]?.id ?? '')).toEqual({ updated: 2, unreadCount: 1 });
    } finally {
      client.close();
    }
    expect((await list(user, '?unread=true')).map((n) => n.id)).toEqual([unseen?.id]);
    const pushed = await watcher.next(
      (f) => f.t === 'notifications.read' && (f.d as { unreadCount: number }).unreadCount === 1,
    );
    expect(pushed.d).toEqual({ all: true, upTo: listed[0]?.id, unreadCount: 1 });
    watcher.close();

    // REST alike: nothing older than the bound is left, so nothing changes.
    const again = await api.post(
      '/v1/notifications/read',
      { all: true, upTo: listed[1]?.id },
      user.accessToken,
    );
    expect(again.body).toEqual({ updated: 0, unreadCount: 1 });

    // The digest mails the one still unread, and only it.
    const [digest] = await digestsOf(user);
    await handle.db
      .updateTable('notification_digests')
      .set({ due_at: new Date(Date.now() - 1000) })
      .where('id', '=', digest?.id ?? '')
      .execute();
    expect(await runNotificationTask(worker, 'notifications.digest', { digestId: digest?.id })).toBe('sent');
    const mail = await smtp.waitFor(isNotificationMailTo(user), 20_000);
    expect(mail.subject).toBe('New bid on your job');
    expect(mail.body).toContain('33.00 USD');
    expect(mail.body).not.toContain('11.00 USD');
  }, 40_000);

  it('does not close a digest before it is due: the early task fails retryably and changes nothing', async () => {
    const user = await registerVerified();
    const worker = directWorker(async () => false, 3_600_000);
    await runNotificationTask(worker, 'notifications.deliver', {
      eventId: await unrelayedBid(user, 700),
      userId: user.id,
    });
    const [digest] = await digestsOf(user);
    expect(digest?.status).toBe('open');
    // Run at once (a retry of a failed task, an operator's Retry, a promoted delayed task).
    const early = await runNotificationTask(worker, 'notifications.digest', { digestId: digest?.id }).then(
      () => undefined,
      (error: unknown) => error,
    );
    // An AppError CONFLICT, not BullMQ's UnrecoverableError: the worker tries it again with back-off.
    expect(isAppError(early) && early.code === 'CONFLICT' && early.details?.reason).toBe('DIGEST_NOT_DUE');
    expect((await digestsOf(user)).map((d) => d.status)).toEqual(['open']);
    // A notification arriving before due_at still joins the same digest.
    await runNotificationTask(worker, 'notifications.deliver', {
      eventId: await unrelayedBid(user, 800),
      userId: user.id,
    });
    const joined = await handle.db
      .selectFrom('notifications')
      .select('digest_id')
      .where('user_id', '=', user.id as UserId)
      .execute();
    expect(joined.map((n) => n.digest_id)).toEqual([digest?.id, digest?.id]);
    // Once due, the same task closes it with both.
    await handle.db
      .updateTable('notification_digests')
      .set({ due_at: new Date(Date.now() - 1000) })
      .where('id', '=', digest?.id ?? '')
      .execute();
    expect(await runNotificationTask(worker, 'notifications.digest', { digestId: digest?.id })).toBe('sent');
    const mail = await smtp.waitFor(isNotificationMailTo(user), 20_000);
    expect(mail.subject).toBe('2 new notifications on gigwire');
  }, 40_000);

  it('mails a digest past notifications it cannot render (a type this build does not know, null data): the security notice arrives, and a digest of only those closes empty', async () => {
    const user = await registerVerified();
    // Digests due in an hour: this test closes the digest itself.
    const worker = directWorker(async () => false, 3_600_000);
    const login = (
      await handle.db
        .insertInto('outbox_events')
        .values({
          type: 'user.new_login',
          payload: { userId: user.id, ip: '198.51.100.7', userAgent: 'intruder/2.0' },
          published_at: new Date(),
        })
        .returning('id')
        .executeTakeFirstOrThrow()
    ).id;
    expect(
      await runNotificationTask(worker, 'notifications.deliver', { eventId: login, userId: user.id }),
    ).toBe('stored');
    const [digest] = await digestsOf(user);
    expect(digest?.status).toBe('open');
    // Joined to the same digest as a rolling deploy's newer build, a removed type or an operator
    // would leave them. Before, rendering them threw, the digest stayed open and was retried for
    // hours, and every later notification (security notices too) joined it.
    const unrenderable = async (
      digestId: string,
      userId: string,
      type: string,
      title: string,
      data: string,
    ) =>
      (
        await sql<{
          id: string;
        }>`insert into notifications (user_id, event_id, type, title, body, data, digest_id)
          values (${userId}, ${`legacy.${crypto.randomUUID()}`}, ${type}, ${title}, 'x', ${data}::jsonb, ${digestId})
          returning id`.execute(handle.db)
      ).rows[0]?.id;
    const legacy = await unrenderable(digest?.id ?? '', user.id, 'legacy.type', 'LegacyTitle', '{}');
    const nullData = await unrenderable(digest?.id ?? '', user.id, 'bid.received', 'NullDataTitle', 'null');
    await handle.db
      .updateTable('notification_digests')
      .set({ due_at: new Date(Date.now() - 1000) })
      .where('id', '=', digest?.id ?? '')
      .execute();
    expect(await runNotificationTask(worker, 'notifications.digest', { digestId: digest?.id })).toBe('sent');
    const mail = await smtp.waitFor(isNotificationMailTo(user), 20_000);
    expect(mail.subject).toBe('New sign-in to your account');
    expect(mail.body).toContain('198.51.100.7');
    expect(mail.body).not.toContain('LegacyTitle');
    expect(mail.body).not.toContain('NullDataTitle');
    expect((await digestsOf(user)).map((d) => d.status)).toEqual(['sent']);
    for (const [id, level] of [
      [legacy, 40],
      [nullData, 50],
    ] as const) {
      expect(
        logs
          .lines()
          .some((line) => line.notificationId === id && line.digestId === digest?.id && line.level === level),
        `a log line for ${id}`,
      ).toBe(true);
    }

    // A digest holding only what cannot be rendered closes empty: nothing mailed, nothing held open.
    const other = await registerVerified();
    const opened = (
      await handle.db
        .insertInto('notification_digests')
        .values({ user_id: other.id as UserId, due_at: new Date(Date.now() - 1000) })
        .returning('id')
        .executeTakeFirstOrThrow()
    ).id;
    await unrenderable(opened, other.id, 'legacy.type', 'LegacyTitle', '{}');
    await unrenderable(opened, other.id, 'security.new_login', 'NullDataTitle', 'null');
    expect(await runNotificationTask(worker, 'notifications.digest', { digestId: opened })).toBe('empty');
    expect((await digestsOf(other)).map((d) => d.status)).toEqual(['empty']);
    await sleep(300);
    expect(mailsTo(other)).toHaveLength(0);
  }, 40_000);

  it('unsubscribes in one click from the List-Unsubscribe header of a digest; GET and forged links change nothing', async () => {
    const user = await registerVerified();
    await bidPlaced(user, 1_500);
    const mail = await smtp.waitFor(isNotificationMailTo(user), 20_000);
    const headerOf = (name: string) => {
      const head = mail.body.split(/\r?\n\r?\n/)[0]?.replace(/\r?\n[ \t]+/g, ' ') ?? '';
      return new RegExp(`^${name}:[ \t]*(.+)$`, 'im').exec(head)?.[1]?.trim();
    };
    expect(headerOf('List-Unsubscribe-Post')).toBe('List-Unsubscribe=One-Click');
    const target = /^<(https?:\/\/[^>]+)>$/.exec(headerOf('List-Unsubscribe') ?? '')?.[1];
    expect(target, headerOf('List-Unsubscribe')).toBeDefined();
    const link = new URL(target ?? '');
    expect(link.pathname).toBe('/v1/notifications/unsubscribe');
    const token = link.searchParams.get('token') ?? '';
    // The body links the same kind of link (its own token, issued when the digest was rendered).
    expect(mail.body).toContain(`${link.origin}/v1/notifications/unsubscribe?token=`);
    const path = `${link.pathname}${link.search}`;

    const preferences = async () =>
      (
        await api.get<{ preferences: Record<string, { inApp: boolean; email: string }> }>(
          '/v1/me/notification-preferences',
          user.accessToken,
        )
      ).body.preferences;
    const before = await preferences();

    // GET (what a link scanner does) changes nothing: a preview, or a page with a button for a browser.
    const preview = await api.get<{ emailOff: string[] }>(path);
    expect(preview.status).toBe(200);
    expect(preview.body.emailOff).toContain('bid.received');
    expect(preview.body.emailOff).not.toContain('security.new_login');
    const pageAnswer = await fetch(`${nodeA.baseUrl}${path}`, { headers: { accept: 'text/html' } });
    expect(pageAnswer.status).toBe(200);
    expect(pageAnswer.headers.get('content-type')).toContain('text/html');
    expect(await pageAnswer.text()).toContain('<form method="post"');
    expect(await preferences()).toEqual(before);

    // Forged, tampered, expired, malformed: problem+json, nothing changed.
    const [payload, mac] = token.split('.') as [string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const otherUser = Buffer.from(JSON.stringify({ ...claims, sub: crypto.randomUUID() })).toString(
      'base64url',
    );
    const expired = await unsubscribeTokens(handle.db).issue(
      user.id as UserId,
      new Date(Date.now() - UNSUBSCRIBE_TTL_MS - 60_000),
    );
    for (const [bad, status] of [
      [`${payload}.${mac.startsWith('A') ? 'B' : 'A'}${mac.slice(1)}`, 401],
      [`${otherUser}.${mac}`, 401],
      [expired, 401],
      ['not-a-token', 400],
    ] as const) {
      const refused = await fetch(
        `${nodeA.baseUrl}/v1/notifications/unsubscribe?token=${encodeURIComponent(bad)}`,
        {
          method: 'POST',
        },
      );
      expect(refused.status, bad).toBe(status);
      expect(refused.headers.get('content-type'), bad).toContain('application/problem+json');
    }
    // The token is no login.
    expect((await api.get('/v1/me', token)).status).toBe(401);
    expect(await preferences()).toEqual(before);

    // The mail client's one-click POST (RFC 8058): a form body, no login.
    const done = await fetch(`${nodeA.baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(done.status).toBe(200);
    expect(((await done.json()) as { emailOff: string[] }).emailOff).toContain('bid.received');
    const after = await preferences();
    for (const [type, preference] of Object.entries(after)) {
      expect(preference, type).toEqual({
        inApp: before[type]?.inApp,
        email: type.startsWith('security.') ? 'always' : 'never',
      });
    }
    // Twice is harmless; the confirmation page's button (a browser) gets a page back.
    const again = await fetch(`${nodeA.baseUrl}${path}`, {
      method: 'POST',
      headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(again.status).toBe(200);
    expect(again.headers.get('content-type')).toContain('text/html');
    expect(await again.text()).toContain('Unsubscribed');
  }, 40_000);
});
