/**
 * A network path to PostgreSQL that dies silently (a host that crashed without a RST, a partition,
 * a frozen proxy: no FIN, no RST): the pool had no client-side bound, so a statement in flight, and
 * every request and room write behind it, hung until the kernel gave up (~15 min). Now a statement
 * with no answer within DATABASE_QUERY_TIMEOUT_MS fails with an error isDependencyUnavailable
 * counts (REST 503 UNAVAILABLE), its connection is discarded (not handed out again with the dead
 * statement still on it), and once the path works again so do the statements.
 * Real PostgreSQL behind test/support/tcp-proxy.ts, which can blackhole every connection.
 */
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import type { Database } from '../../src/db/database.js';
import { isDependencyUnavailable } from '../../src/platform/errors.js';
import { runShutdown } from '../../src/platform/shutdown.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  testConfig,
  uniqueRedisPrefix,
} from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';
import { untilDefined } from '../support/poll.js';
import { joinedGroupRoom, resendUntilStored } from '../support/room-sends.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import type { TestSocket } from '../support/ws-client.js';

/** The database's URL with its host and port replaced by the proxy's. */
const throughProxy = (database: TestDatabase, proxy: TcpProxy) => {
  const url = new URL(database.url);
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  return url.toString();
};
const proxyTo = (database: TestDatabase) => {
  const url = new URL(database.url);
  return startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
};
const rejection = async (work: () => Promise<unknown>): Promise<unknown> => {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
};
const selectOne = async (db: Kysely<Database>) =>
  (await sql<{ one: number }>`select 1 as one`.execute(db)).rows[0]?.one;

describe('a statement on a network path that died silently', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let handle: DbHandle;

  beforeAll(async () => {
    database = await createMigratedDatabase();
    proxy = await proxyTo(database);
    handle = await createDb(
      { kind: 'postgres', url: throughProxy(database, proxy), poolMax: 2, queryTimeoutMs: 1_000 },
      captureLogs().log,
    );
  });
  afterAll(async () => {
    proxy?.resume();
    await handle?.close();
    await proxy?.close();
    await database?.drop();
  });

  it('fails UNAVAILABLE within the bound, discards the connection, and works again after the path does', async () => {
    expect(await selectOne(handle.db)).toBe(1);
    const connections = proxy.accepted;

    proxy.blackhole();
    const lost = await rejection(() => selectOne(handle.db));
    expect(lost).toMatchObject({ message: 'Query read timeout' });
    expect(isDependencyUnavailable(lost)).toBe(true);
    // In a transaction too (its rollback cannot be sent either).
    const lostInTransaction = await rejection(() => handle.db.transaction().execute((trx) => selectOne(trx)));
    expect(isDependencyUnavailable(lostInTransaction)).toBe(true);

    proxy.resume();
    // The timed-out connections were discarded: the next statement runs on a new one, not behind
    // the old statement's answer.
    expect(await selectOne(handle.db)).toBe(1);
    expect(proxy.accepted).toBeGreaterThan(connections);
  }, 30_000);

  it('runs migrations (unbounded) on a connection of their own', async () => {
    // A statement longer than the pool's bound is cut on the pool, not under `unbounded`.
    const slow = await rejection(() => sql`select pg_sleep(1.5)`.execute(handle.db));
    expect(slow).toMatchObject({ message: 'Query read timeout' });
    const result = await handle.unbounded(async (db) => {
      await sql`select pg_sleep(1.5)`.execute(db);
      return selectOne(db);
    });
    expect(result).toBe(1);
    expect(await selectOne(handle.db)).toBe(1);
  }, 30_000);
});

describe('REST and room sends while the path to PostgreSQL is silently dead', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let node: RunningNode | undefined;
  const logs = captureLogs();
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    database = await createMigratedDatabase();
    proxy = await proxyTo(database);
    node = await startNode(
      testConfig({
        DATABASE_URL: throughProxy(database, proxy),
        REDIS_URL: sharedRedisUrl(),
        REDIS_PREFIX: uniqueRedisPrefix(),
        DATABASE_QUERY_TIMEOUT_MS: '1000',
      }),
      logs.log,
      { pid: process.pid },
    );
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    proxy?.resume();
    if (node !== undefined) await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    await proxy?.close();
    await database?.drop();
  });

  it('answers a write 503 UNAVAILABLE problem+json (not a hang), and takes it once the path is back', async () => {
    const api = httpClient((node as RunningNode).baseUrl);
    const user = await registerUser(api);
    const updateMe = (displayName: string) =>
      api.call<Record<string, unknown>>('PATCH', '/v1/me', {
        body: { displayName },
        token: user.accessToken,
      });
    expect((await updateMe('before')).status).toBe(200);

    proxy.blackhole();
    const refused = await updateMe('during');
    expect(refused.status).toBe(503);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({ code: 'UNAVAILABLE', status: 503 });

    proxy.resume();
    const accepted = await untilDefined(async () => {
      const response = await updateMe('after');
      return response.status === 200 ? response : undefined;
    }, 'the write to be accepted again');
    expect(accepted.body).toMatchObject({ displayName: 'after' });
  }, 60_000);

  it('answers a room send UNAVAILABLE (not a hang), and stores the resend once the path is back', async () => {
    const { roomId, socket } = await joinedGroupRoom(node as RunningNode, sockets);
    expect((await socket.request('room.send', { roomId, clientMsgId: 'before', body: 'first' })).t).toBe(
      'ok',
    );

    proxy.blackhole();
    let refused: Awaited<ReturnType<TestSocket['request']>>;
    try {
      // Bounded, not fast: a statement gives up after DATABASE_QUERY_TIMEOUT_MS, a new connection
      // through the dead path after the pool's 5 s connect timeout (more on a loaded machine).
      refused = await socket.request('room.send', { roomId, clientMsgId: 'during', body: 'second' }, 20_000);
    } finally {
      proxy.resume();
    }
    expect(refused).toMatchObject({ t: 'error', d: { code: 'UNAVAILABLE' } });
    const stored = await resendUntilStored(socket, roomId, { clientMsgId: 'during', body: 'second' });
    expect(stored).toMatchObject({ d: { seq: 2 } });
  }, 60_000);
});
