/**
 * Review 33, against a real node in this process: a change of a user that revokes no session — an
 * operator's SQL lock or session-version bump, announced on no bus — reaches the gateway only as a
 * user-level row of the revocation feed. Those rows closed nothing (they cannot tell the user's
 * older sessions from one opened after the change), so the user's open sockets lived on until
 * their tokens expired (15 min) while every REST request was refused within 1 s. Now each of the
 * user's sockets is checked again against its session row and its own token's version: the stale
 * ones close 4001, a socket whose check still passes (another user's roles changed) stays open.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';
import { openSocket } from '../support/ws-client.js';

describe('accounts review 33: user-level feed rows close the sockets they end', () => {
  let testNode: TestNode;
  let api: ReturnType<typeof httpClient>;
  let wsUrl: string;

  beforeAll(async () => {
    testNode = await startTestNode();
    api = httpClient(testNode.node.baseUrl);
    wsUrl = testNode.node.uwsUrl ?? '';
  });
  afterAll(async () => testNode.stop());

  const sql = (query: string, values: unknown[]) => queryRows(testNode.db.url, query, values);

  it("closes sockets stale after an operator's SQL version bump or lock, not a socket still valid", async () => {
    const user = await registerUser(api);
    const other = await registerUser(api);
    const bumped = await openSocket(wsUrl, user.accessToken);
    await bumped.next((frame) => frame.t === 'hello');
    const bystander = await openSocket(wsUrl, other.accessToken);
    await bystander.next((frame) => frame.t === 'hello');

    await sql('update users set session_version = session_version + 1 where id = $1', [user.id]);
    expect((await bumped.closed).code).toBe(4001);

    // A session started after the bump carries the new version; a lock ends it too.
    const login = await api.post<{ accessToken: string }>('/v1/auth/login', {
      login: user.username,
      password: user.password,
    });
    expect(login.status).toBe(200);
    const locked = await openSocket(wsUrl, login.body.accessToken);
    await locked.next((frame) => frame.t === 'hello');
    // The bystander's roles change first: the same polls (and the same batched read) see both.
    await sql(`update users set roles = array['worker', 'hirer']::text[] where id = $1`, [other.id]);
    await sql('update users set locked_at = now() where id = $1', [user.id]);
    expect((await locked.closed).code).toBe(4001);
    expect((await bystander.request('ping')).t).toBe('ok');
    bystander.close();
  });
});
