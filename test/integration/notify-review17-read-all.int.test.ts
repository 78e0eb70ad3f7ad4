/**
 * Notify review 17: "mark all read" (`{all: true}` without `upTo`, what older clients send) loaded
 * the id of every notification it changed into the node's memory (a user with 100k unread ones:
 * 100k ids, for a push that did not even carry them), and told the user's other devices to clear
 * "every notification you have so far" — also one that arrived after the update, still unread in the
 * database. Now it is one statement answering a count and the newest row it marked, and the push
 * names that row as `upTo`: the other devices clear exactly what was marked. One node; the
 * notifications are rows of the user's own, written in bulk.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';
import { openSocket } from '../support/ws-client.js';

let node: TestNode;
let api: ReturnType<typeof httpClient>;
let handle: DbHandle;

beforeAll(async () => {
  node = await startTestNode({});
  api = httpClient(node.node.baseUrl);
  handle = await createDb({ kind: 'postgres', url: node.db.url, poolMax: 2 }, captureLogs().log);
}, 60_000);

afterAll(async () => {
  await handle?.close();
  await node?.stop();
});

const wsUrl = () => node.node.uwsUrl ?? `${node.node.baseUrl.replace(/^http/, 'ws')}/ws`;

describe('mark all read', () => {
  it('marks thousands in one go, and the push to other devices names the newest one marked', async () => {
    const user = await registerUser(api);
    const N = 5_000;
    await sql`insert into notifications (user_id, event_id, type, title, body, created_at)
      select ${user.id}::uuid, 'review17-' || g, 'payment.succeeded', 'Top-up', 'done',
        now() - interval '1 hour' + g * interval '1 ms'
      from generate_series(1, ${N}) g`.execute(handle.db);
    // One already read, one hidden from the app: neither counts.
    await sql`update notifications set read_at = now() where user_id = ${user.id}::uuid and event_id = 'review17-1'`.execute(
      handle.db,
    );
    await sql`update notifications set in_app = false where user_id = ${user.id}::uuid and event_id = 'review17-2'`.execute(
      handle.db,
    );
    const newest = await sql<{ id: string }>`select id from notifications
      where user_id = ${user.id}::uuid and event_id = ${`review17-${N}`}`.execute(handle.db);

    const other = await openSocket(wsUrl(), user.accessToken, 'json');
    await other.next((f) => f.t === 'hello');
    const read = await api.post<{ updated: number; unreadCount: number }>(
      '/v1/notifications/read',
      { all: true },
      user.accessToken,
    );
    expect(read.status).toBe(200);
    expect(read.body).toEqual({ updated: N - 2, unreadCount: 0 });
    const push = await other.next((f) => f.t === 'notifications.read');
    expect(push.d).toEqual({ all: true, upTo: newest.rows[0]?.id, unreadCount: 0 });

    // Nothing left to mark: the count, and a push all the same (a device that missed one catches up).
    const again = await api.post('/v1/notifications/read', { all: true }, user.accessToken);
    expect(again.body).toEqual({ updated: 0, unreadCount: 0 });
    const second = await other.next((f) => f.t === 'notifications.read' && f !== push);
    expect(second.d).toEqual({ all: true, unreadCount: 0 });
    other.close();
  }, 60_000);

  it('with upTo: marks that one and the older ones, and the push keeps the client bound', async () => {
    const user = await registerUser(api);
    await sql`insert into notifications (user_id, event_id, type, title, body, created_at)
      select ${user.id}::uuid, 'bound-' || g, 'payment.succeeded', 'Top-up', 'done',
        now() - interval '1 hour' + g * interval '1 ms'
      from generate_series(1, 10) g`.execute(handle.db);
    const sixth = await sql<{ id: string }>`select id from notifications
      where user_id = ${user.id}::uuid and event_id = 'bound-6'`.execute(handle.db);
    const upTo = sixth.rows[0]?.id;
    const other = await openSocket(wsUrl(), user.accessToken, 'json');
    await other.next((f) => f.t === 'hello');
    const read = await api.post('/v1/notifications/read', { all: true, upTo }, user.accessToken);
    expect(read.body).toEqual({ updated: 6, unreadCount: 4 });
    const push = await other.next((f) => f.t === 'notifications.read');
    expect(push.d).toEqual({ all: true, upTo, unreadCount: 4 });
    other.close();
  }, 30_000);
});
