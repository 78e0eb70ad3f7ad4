/**
 * Review 21c: a removal from a room whose announcement is lost.
 * - The DELETE's bus publish fails after the removal committed while every node's subscriber stays
 *   connected (a partial Redis failure: here the Redis user is denied PUBLISH for a moment). The
 *   DELETE fails; before, its retry found a non-member and announced nothing, so the removed user's
 *   sockets on the other node went on receiving the room. A retried DELETE now announces it again.
 * - A removal no room actor heard of (the announcement dropped altogether, here: the membership row
 *   deleted straight in the database) let the removed user send for up to the actor's 30 s member
 *   refresh. The group commit's own statement now checks every sender's membership: refused.
 * Two real nodes in this process on a redis-server of this file's own.
 */

import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { RunningNode } from '../../src/bin/start-node.js';
import { createGroupRoom, httpClient, type Registered, registerUser } from '../support/http.js';
import { twoNodesOnOwnRedis } from '../support/two-nodes.js';
import { openSocket, type TestSocket, type WireFrame } from '../support/ws-client.js';

describe('review 21c: removals whose announcement was lost', () => {
  const env = twoNodesOnOwnRedis('removal-21c', (admin) =>
    admin.call('ACL', 'SETUSER', 'default', '+publish'),
  );
  const { nodes, sockets } = env;

  const joined = async (url: string | undefined, user: Registered, roomId: string) => {
    const socket = await openSocket(url ?? '', user.accessToken, 'json');
    sockets.push(socket);
    await socket.next((f) => f.t === 'hello');
    expect(await socket.request('room.join', { roomId })).toMatchObject({ t: 'ok' });
    return socket;
  };
  const removalOf = (userId: string) => (f: WireFrame) =>
    f.t === 'room.member' &&
    (f.d as { userId: string; change: string }).userId === userId &&
    (f.d as { change: string }).change === 'removed';

  /** Runs `during` with PUBLISH refused to every client; subscriptions and other commands work. */
  const whilePublishFails = async (during: () => Promise<void>) => {
    await env.admin.call('ACL', 'SETUSER', 'default', '-publish');
    try {
      await during();
    } finally {
      await env.admin.call('ACL', 'SETUSER', 'default', '+publish');
    }
  };

  it.each([
    ['the creator removes a member', 'creator'],
    ['a member leaves', 'self'],
  ] as const)(
    'announces the removal again on a retried DELETE after a failed publish: %s',
    async (_, who) => {
      const [nodeA, nodeB] = nodes as [RunningNode, RunningNode];
      const api = httpClient(nodeA.baseUrl);
      const [owner, member] = [await registerUser(api), await registerUser(api)];
      const roomId = await createGroupRoom(api, owner, [member]);
      const memberOnB = await joined(nodeB.uwsUrl, member, roomId);
      const token = who === 'creator' ? owner.accessToken : member.accessToken;
      const remove = () => api.call('DELETE', `/v1/rooms/${roomId}/members/${member.id}`, { token });

      await whilePublishFails(async () => {
        // Committed, but not announced: the DELETE fails, the client retries.
        expect((await remove()).status).toBeGreaterThanOrEqual(500);
      });
      expect((await remove()).status).toBe(204);
      // Before: the retry found a non-member and announced nothing; node B kept pushing the room.
      expect(await memberOnB.next(removalOf(member.id), 5_000)).toMatchObject({
        d: { roomId, userId: member.id, change: 'removed' },
      });
    },
    20_000,
  );

  it("refuses a removed member's send even when no actor heard of the removal", async () => {
    const [nodeA] = nodes as [RunningNode, RunningNode];
    const api = httpClient(nodeA.baseUrl);
    const [owner, member] = [await registerUser(api), await registerUser(api)];
    const roomId = await createGroupRoom(api, owner, [member]);
    const ownerSocket = await joined(nodeA.uwsUrl, owner, roomId);
    const memberSocket = await joined(nodeA.uwsUrl, member, roomId);
    const send = (socket: TestSocket, clientMsgId: string) =>
      socket.request('room.send', { roomId, clientMsgId, body: clientMsgId });
    // The room's actor (and the gateway's access cache) know the member now.
    expect(await send(memberSocket, 'before')).toMatchObject({ t: 'ok', d: { seq: 1 } });

    // Removed with no announcement at all: nothing tells the actor or the gateway.
    const client = new pg.Client({ connectionString: env.db.url });
    await client.connect();
    try {
      await client.query('delete from room_members where room_id = $1 and user_id = $2', [roomId, member.id]);
      expect(await send(memberSocket, 'after-removal')).toMatchObject({
        t: 'error',
        d: { code: 'FORBIDDEN' },
      });
      // The remaining members' sends go on, with no gap in the seqs.
      expect(await send(ownerSocket, 'owner-after')).toMatchObject({ t: 'ok', d: { seq: 2 } });
      const stored = await client.query<{ client_msg_id: string }>(
        'select client_msg_id from messages where room_id = $1 order by seq',
        [roomId],
      );
      expect(stored.rows.map((row) => row.client_msg_id)).toEqual(['before', 'owner-after']);
    } finally {
      await client.end();
    }
  }, 20_000);
});
