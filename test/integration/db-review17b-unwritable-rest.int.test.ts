/**
 * REST writes while PostgreSQL cannot take them: a database that is read-only (25006
 * read_only_sql_transaction, as after a failover that landed the pool on a standby, or an operator's
 * `default_transaction_read_only`) or a `lock_timeout` running out behind a lock held elsewhere
 * (55P03 lock_not_available) answered 500 INTERNAL ("our bug, report it") instead of 503
 * UNAVAILABLE ("retry later"), unlike room sends over WebSocket, which already fail UNAVAILABLE.
 * Once writes are accepted again the same request succeeds. An Idempotency-Key still in flight
 * (its own lock timeout) stays 409 CONFLICT.
 * One node, real PostgreSQL (the database is switched to read-only and its sessions ended, as a
 * failover does).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { untilDefined } from '../support/poll.js';

describe('REST writes while the database cannot take writes (read-only, lock timeout)', () => {
  let testNode: TestNode;

  beforeAll(async () => {
    testNode = await startTestNode();
  });
  afterAll(async () => {
    await testNode?.stop();
  });

  /** Runs `text` on the node's database through a connection of its own. */
  const admin = async (text: string) => {
    const client = new pg.Client({ connectionString: testNode.db.url });
    await client.connect();
    try {
      // This session may start read-only itself (the switch applies to new sessions).
      await client.query('set default_transaction_read_only = off');
      await client.query(text);
    } finally {
      await client.end();
    }
  };
  /** Ends the node's sessions: its pool reconnects and picks up the database's new settings. */
  const endSessions = () =>
    admin(
      `select pg_terminate_backend(pid) from pg_stat_activity where datname = '${testNode.db.name}' and pid <> pg_backend_pid()`,
    );

  const updateMe = (api: ReturnType<typeof httpClient>, user: Registered, displayName: string) =>
    api.call<Record<string, unknown>>('PATCH', '/v1/me', { body: { displayName }, token: user.accessToken });

  const expectUnavailable = (response: { status: number; headers: Headers; body: unknown }) => {
    expect(response.status).toBe(503);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(response.headers.get('retry-after')).toBe('2');
    expect(response.body).toMatchObject({
      type: 'urn:gigwire:problem:UNAVAILABLE',
      status: 503,
      code: 'UNAVAILABLE',
      requestId: expect.any(String),
    });
  };

  /** Polls until a read answers 200: the pool is connected again (to sessions with the new settings). */
  const untilReadsWork = (api: ReturnType<typeof httpClient>, user: Registered) =>
    untilDefined(async () => {
      const response = await api.get('/v1/me', user.accessToken);
      return response.status === 200 ? true : undefined;
    }, 'reads to work again');
  const untilWritten = (api: ReturnType<typeof httpClient>, user: Registered, displayName: string) =>
    untilDefined(async () => {
      const response = await updateMe(api, user, displayName);
      return response.status === 200 ? response : undefined;
    }, 'the write to be accepted again');

  it('answers a write 503 UNAVAILABLE while the database is read-only, and takes it once writes are back', async () => {
    const api = httpClient(testNode.node.baseUrl);
    const user = await registerUser(api);
    expect((await updateMe(api, user, 'before')).status).toBe(200);

    await admin(`alter database ${testNode.db.name} set default_transaction_read_only = on`);
    try {
      await endSessions();
      await untilReadsWork(api, user);
      expectUnavailable(await updateMe(api, user, 'during'));
      expectUnavailable(await updateMe(api, user, 'during'));
    } finally {
      await admin(`alter database ${testNode.db.name} reset default_transaction_read_only`);
      await endSessions();
    }
    const accepted = await untilWritten(api, user, 'after');
    expect(accepted.body).toMatchObject({ displayName: 'after' });
    expect((await api.get('/v1/me', user.accessToken)).body).toMatchObject({ displayName: 'after' });
  }, 60_000);

  it('answers a write 503 UNAVAILABLE when a lock_timeout runs out behind a lock held elsewhere', async () => {
    const api = httpClient(testNode.node.baseUrl);
    const user = await registerUser(api);
    // A lock_timeout for the node's sessions (a common production setting), and the user's row
    // locked by a long transaction elsewhere (an operator's, a slow transition's).
    await admin(`alter database ${testNode.db.name} set lock_timeout = '200ms'`);
    const holder = new pg.Client({ connectionString: testNode.db.url });
    try {
      await endSessions();
      await untilReadsWork(api, user);
      await holder.connect();
      await holder.query('begin');
      await holder.query('select id from users where id = $1 for update', [user.id]);
      expectUnavailable(await updateMe(api, user, 'during'));
    } finally {
      await holder.query('rollback').catch(() => undefined);
      await holder.end().catch(() => undefined);
      await admin(`alter database ${testNode.db.name} reset lock_timeout`);
      await endSessions();
    }
    const accepted = await untilWritten(api, user, 'after');
    expect(accepted.body).toMatchObject({ displayName: 'after' });
  }, 60_000);
});
