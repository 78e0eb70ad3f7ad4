/**
 * Notify review 22: the notification list answered a 500 for the user's whole list (every page
 * holding the row) when one stored row did not fit the response schema: a type this build does not
 * know (added by a newer build and read by an older node during a rolling deploy, or left behind by
 * a rollback) or `data` that is no JSON object (jsonb `null`, an operator's insert). The digest
 * already left such rows out; the list now leaves out unknown types (and the badge does not count
 * them: it counts what the list shows) and answers odd `data` as `{}`.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';

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

interface Page {
  readonly data: { id: string; type: string; data: unknown }[];
  readonly nextCursor: string | null;
}

describe('notification list with rows this build cannot answer as stored', () => {
  it('lists the rest when a newer build stored a type this one does not know', async () => {
    const user = await registerUser(api);
    await sql`insert into notifications (user_id, event_id, type, title, body, created_at)
      values
        (${user.id}::uuid, 'r22-old', 'payment.succeeded', 'Top-up', 'done', now() - interval '3 minutes'),
        (${user.id}::uuid, 'r22-new', 'payout.scheduled', 'Payout', 'soon', now() - interval '2 minutes'),
        (${user.id}::uuid, 'r22-last', 'bid.received', 'Bid', 'new bid', now() - interval '1 minute')`.execute(
      handle.db,
    );
    const first = await api.get<Page>('/v1/notifications?limit=1', user.accessToken);
    expect(first.status).toBe(200);
    expect(first.body.data.map((n) => n.type)).toEqual(['bid.received']);
    const second = await api.get<Page>(
      `/v1/notifications?limit=1&cursor=${first.body.nextCursor}`,
      user.accessToken,
    );
    expect(second.status).toBe(200);
    expect(second.body.data.map((n) => n.type)).toEqual(['payment.succeeded']);
    const unread = await api.get<Page>('/v1/notifications?unread=true', user.accessToken);
    expect(unread.status).toBe(200);
    expect(unread.body.data).toHaveLength(2);
    // The badge counts what the list shows.
    const count = await api.get<{ count: number }>('/v1/notifications/unread-count', user.accessToken);
    expect(count.body).toEqual({ count: 2 });
    const read = await api.post(
      '/v1/notifications/read',
      { ids: unread.body.data.map((n) => n.id) },
      user.accessToken,
    );
    expect(read.status).toBe(200);
    expect(read.body).toEqual({ updated: 2, unreadCount: 0 });
  });

  it('answers data that is no object as {}', async () => {
    const user = await registerUser(api);
    await sql`insert into notifications (user_id, event_id, type, title, body, data)
      values (${user.id}::uuid, 'r22-null', 'bid.received', 'Bid', 'new bid', 'null'::jsonb),
        (${user.id}::uuid, 'r22-array', 'bid.accepted', 'Bid', 'accepted', '[1]'::jsonb)`.execute(handle.db);
    const list = await api.get<Page>('/v1/notifications', user.accessToken);
    expect(list.status).toBe(200);
    expect(list.body.data.map((n) => n.data)).toEqual([{}, {}]);
  });
});
