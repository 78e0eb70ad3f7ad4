/**
 * The marketplace on the embedded database (PGlite: what `npm start` runs with no DATABASE_URL). It
 * has one connection, so anything that reads through the pool while a transaction holds it waits
 * for good: the outbox relay once did, pushing a contract's room message from inside its batch's
 * transaction, and the first accepted bid stopped every later database request. One node, every
 * role, the real flow over REST and a WebSocket: top up, post, bid, accept, deliver, approve, and a
 * transfer and the wallet's history.
 */

import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import type { Logger } from '../../src/platform/logger.js';
import { runShutdown } from '../../src/platform/shutdown.js';
import {
  captureLogs,
  migratedDataDir,
  sharedRedisUrl,
  testConfig,
  uniqueRedisPrefix,
} from '../support/context.js';
import { addContact, httpClient, type Registered, registerUser } from '../support/http.js';
import { type RedisServer, startRedisServer } from '../support/servers.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

type Json = Record<string, unknown>;

/** Polls `read` until `done`; a database that stopped answering fails here instead of hanging. */
const until = async <T>(read: () => Promise<T>, done: (value: T) => boolean, what: string) => {
  for (let i = 0; i < 200; i++) {
    const value = await read();
    if (done(value)) return value;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
};

/** A node running every role on PGlite under `dataDir` (what `npm start` runs with no DATABASE_URL). */
const startEmbeddedNode = (dataDir: string, log: Logger, env: Record<string, string>) =>
  startNode(
    testConfig({ DATA_DIR: dataDir, OUTBOX_POLL_MS: '20', LEDGER_AUDIT_INTERVAL_S: '0', ...env }),
    log,
    { pid: process.pid },
  );

describe('the marketplace on the embedded database', () => {
  const logs = captureLogs();
  let dataDir: string;
  let node: RunningNode;
  let api: ReturnType<typeof httpClient>;
  let socket: TestSocket | undefined;

  beforeAll(async () => {
    dataDir = migratedDataDir('embedded-market');
    node = await startEmbeddedNode(dataDir, logs.log, {
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: uniqueRedisPrefix(),
    });
    api = httpClient(node.baseUrl);
    // PGlite's start: ~1 s of one core from the run's migrated copy, far longer on a loaded box.
  }, 180_000);

  afterAll(async () => {
    socket?.close();
    if (node !== undefined) await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    await rm(dataDir, { recursive: true, force: true });
  });

  const post = (path: string, token: string, body?: Json, headers: Record<string, string> = {}) =>
    api.call<Json>('POST', path, {
      token,
      headers: { 'idempotency-key': randomUUID(), ...headers },
      ...(body === undefined ? {} : { body }),
    });
  const wallet = async (user: Registered) =>
    (await api.get<{ available: number }>('/v1/wallet', user.accessToken)).body.available;

  it('accepts a bid, pushes the room messages and completes the contract; the node stays ready', async () => {
    const hirer = await registerUser(api, { roles: ['hirer'] });
    const worker = await registerUser(api, { roles: ['worker'] });
    expect(
      (await post('/v1/wallet/top-ups', hirer.accessToken, { amount: 10_000, card: SandboxCard.SUCCEEDS }))
        .status,
    ).toBe(202);
    await until(
      () => wallet(hirer),
      (available) => available === 10_000,
      'the top-up',
    );
    const categories = await api.get<{ data: { id: string }[] }>('/v1/categories', hirer.accessToken);
    const job = await api.post<Json>(
      '/v1/jobs',
      {
        title: 'Menu for a cafe',
        description: 'One page, two languages.',
        categoryId: categories.body.data[0]?.id,
        skills: ['layout'],
        budget: { kind: 'fixed', amount: 6_000, currency: 'USD' },
        remote: true,
      },
      hirer.accessToken,
    );
    expect(job.status).toBe(201);
    const bid = await post(`/v1/jobs/${job.body.id}/bids`, worker.accessToken, {
      amount: 5_000,
      deliveryDays: 2,
      coverLetter: 'Gladly.',
    });
    expect(bid.status).toBe(201);
    const accepted = await post(`/v1/bids/${bid.body.id}/accept`, hirer.accessToken, undefined, {
      'if-match': `"${bid.body.version}"`,
    });
    expect(accepted.status).toBe(201);
    const contract = accepted.body;

    socket = await openSocket(node.uwsUrl ?? `${node.baseUrl.replace(/^http/, 'ws')}/ws`, worker.accessToken);
    await socket.next((frame) => frame.t === 'hello');
    expect((await socket.request('room.join', { roomId: contract.roomId, sinceSeq: 0 })).t).toBe('ok');
    await until(
      async () => (await api.get('/health/ready')).status,
      (status) => status === 200,
      'readiness after the accept',
    );

    const act = async (action: string, user: Registered) => {
      const response = await post(`/v1/contracts/${contract.id}/${action}`, user.accessToken);
      expect(response.status, JSON.stringify(response.body)).toBe(200);
    };
    await act('deliver', worker);
    // The transition's system message reaches the joined member live (pushed after the relay's commit).
    await socket.next(
      (frame) =>
        frame.t === 'room.message' &&
        ((frame.d as Json).meta as Json | undefined)?.system === 'contract.delivered',
      10_000,
    );
    await act('approve', hirer);
    await until(
      () => wallet(worker),
      (available) => available > 0,
      'the payout to the worker',
    );
    expect(await wallet(hirer)).toBe(5_000);

    // 64-bit ids (ledger transactions) come back as decimal strings, as from PostgreSQL: PGlite's
    // default gave numbers, failing the response schema after the money had moved.
    const sent = await post('/v1/wallet/transfers', hirer.accessToken, { toUserId: worker.id, amount: 100 });
    expect(sent.status, JSON.stringify(sent.body)).toBe(201);
    const lines = await api.get<{ data: { transactionId: unknown }[] }>(
      '/v1/wallet/transactions',
      hirer.accessToken,
    );
    expect(lines.status).toBe(200);
    expect(lines.body.data.length).toBeGreaterThanOrEqual(3);
    for (const line of lines.body.data) expect(line.transactionId).toMatch(/^[1-9][0-9]*$/);
    expect((await api.get('/health/ready')).status).toBe(200);
  }, 90_000);

  it('creates a group room with an Idempotency-Key and replays it on a retry without hanging the one connection', async () => {
    const [a, b] = [await registerUser(api), await registerUser(api)];
    await addContact(api, b, a);
    // The room's checks once read through the pool while the key's transaction held the only
    // connection: the request, and every one after it, never got an answer.
    const within = <T>(request: Promise<T>, what: string) =>
      Promise.race([
        request,
        sleep(10_000).then(() => {
          throw new Error(`no answer to ${what}: the embedded database is held`);
        }),
      ]);
    const create = (body: Json, key: string) =>
      within(
        api.call<Json>('POST', '/v1/rooms', {
          token: a.accessToken,
          body,
          headers: { 'idempotency-key': key },
        }),
        `POST /v1/rooms (${key})`,
      );
    const group = { kind: 'group', memberIds: [b.id], title: 'embedded' };
    const first = await create(group, 'embedded-group');
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const retry = await create(group, 'embedded-group');
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body.id).toBe(first.body.id);
    const direct = { kind: 'direct', memberIds: [b.id] };
    const opened = await create(direct, 'embedded-direct');
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    const again = await create(direct, 'embedded-direct-2');
    expect([again.status, again.body.id]).toEqual([200, opened.body.id]);
    const rooms = await within(
      api.get<{ data: { id: string }[] }>('/v1/rooms', b.accessToken),
      'GET /v1/rooms',
    );
    expect(rooms.body.data.map((room) => room.id).sort()).toEqual([first.body.id, opened.body.id].sort());
    expect((await within(api.get('/health/ready'), 'GET /health/ready')).status).toBe(200);
  }, 60_000);
});

describe('the embedded database while Redis is stalled', () => {
  const logs = captureLogs();
  let dataDir: string;
  let redis: RedisServer;
  let node: RunningNode;
  let api: ReturnType<typeof httpClient>;
  const freeze = () => process.kill(redis.process().pid as number, 'SIGSTOP');
  const thaw = () => process.kill(redis.process().pid as number, 'SIGCONT');

  beforeAll(async () => {
    dataDir = migratedDataDir('embedded-stall');
    redis = await startRedisServer(join(dataDir, 'redis'));
    node = await startEmbeddedNode(dataDir, logs.log, {
      REDIS_URL: redis.url,
      // Longer than the test: a request that waits on Redis inside a transaction would hold the
      // database (and every request after it) until the test times out.
      REDIS_COMMAND_TIMEOUT_MS: '60000',
    });
    api = httpClient(node.baseUrl);
  }, 180_000);

  afterAll(async () => {
    thaw();
    if (node !== undefined) await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    await redis?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('answers requests that need only the database while the outbox relay and a read announcement wait for Redis', async () => {
    const hirer = await registerUser(api, { roles: ['hirer'] });
    const categories = await api.get<{ data: { id: string }[] }>('/v1/categories', hirer.accessToken);
    const postJob = (title: string) =>
      api.post<Json>(
        '/v1/jobs',
        {
          title,
          description: 'Two pages.',
          categoryId: categories.body.data[0]?.id,
          skills: ['copy'],
          budget: { kind: 'fixed', amount: 3_000, currency: 'USD' },
          remote: true,
        },
        hirer.accessToken,
      );
    const worker = await registerUser(api, { roles: ['worker'] });
    const job = await postJob('Flyer text');
    expect(job.status).toBe(201);
    freeze();
    try {
      // The bid's event waits in the outbox: the relay's enqueue of the hirer's notification task
      // waits for Redis. Before, the relay held the embedded database's one connection in a
      // transaction meanwhile, and every request after it waited as long as Redis did.
      const bid = await api.call<Json>('POST', `/v1/jobs/${job.body.id}/bids`, {
        token: worker.accessToken,
        headers: { 'idempotency-key': randomUUID() },
        body: { amount: 2_500, deliveryDays: 2, coverLetter: 'Gladly.' },
      });
      expect(bid.status).toBe(201);
      // Marking notifications read announces the new count on the bus: sent, not awaited, inside
      // its transaction.
      const marked = await api.post<Json>('/v1/notifications/read', { all: true }, hirer.accessToken);
      expect(marked.status).toBe(200);
      await sleep(500);
      for (let i = 0; i < 3; i++) {
        const read = await api.get<Json>(`/v1/jobs/${job.body.id}`, hirer.accessToken);
        expect(read.status).toBe(200);
      }
    } finally {
      thaw();
    }
    // Redis is back: the relay publishes the event (the job's outbox row is marked).
    await until(
      async () => (await api.get('/health/ready')).status,
      (status) => status === 200,
      'readiness after Redis came back',
    );
  }, 45_000);
});
