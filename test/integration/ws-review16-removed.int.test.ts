/**
 * A member removed from a group room while joined is told: their joined sockets get the
 * `room.member` removal naming them as the room's last push (the SDK then drops the room and
 * reports `room.removed`). Before, they were taken out of the room first and got nothing, so a
 * client showed a room that had simply gone silent until a request or a reconnect failed FORBIDDEN.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { createGroupRoom, httpClient, type Registered, registerUser } from '../support/http.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

describe('ws review 16: a removed member hears of the removal', () => {
  let testNode: TestNode;
  let owner: Registered;
  let member: Registered;
  let roomId: string;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    testNode = await startTestNode();
    const api = httpClient(testNode.node.baseUrl);
    owner = await registerUser(api);
    member = await registerUser(api);
    roomId = await createGroupRoom(api, owner, [member]);
  }, 60_000);

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await testNode?.stop();
  });

  it("pushes room.member removed to the removed member's joined sockets, then nothing more of the room", async () => {
    const open = async (who: Registered, url: string, encoding: 'json' | 'msgpack') => {
      const socket = await openSocket(url, who.accessToken, encoding);
      sockets.push(socket);
      await socket.next((f) => f.t === 'hello');
      expect(await socket.request('room.join', { roomId })).toMatchObject({ t: 'ok' });
      return socket;
    };
    const fastify = `${testNode.node.baseUrl.replace(/^http/, 'ws')}/ws`;
    const ownerSocket = await open(owner, testNode.node.uwsUrl ?? fastify, 'msgpack');
    const viaUws = await open(member, testNode.node.uwsUrl ?? fastify, 'msgpack');
    const viaFastify = await open(member, fastify, 'json');

    const api = httpClient(testNode.node.baseUrl);
    const removal = await api.call('DELETE', `/v1/rooms/${roomId}/members/${member.id}`, {
      token: owner.accessToken,
    });
    expect(removal.status).toBe(204);

    const told = { t: 'room.member', d: { roomId, userId: member.id, change: 'removed' } };
    for (const socket of [ownerSocket, viaUws, viaFastify]) {
      expect(await socket.next((f) => f.t === 'room.member')).toEqual(told);
    }
    // Out of the room: the owner's next message reaches the owner only.
    await ownerSocket.request('room.send', { roomId, clientMsgId: 'after-removal', body: 'x' });
    await ownerSocket.next((f) => f.t === 'room.message');
    expect(await viaUws.request('room.send', { roomId, clientMsgId: 'late', body: 'y' })).toMatchObject({
      t: 'error',
      d: { code: 'FORBIDDEN' },
    });
    for (const socket of [viaUws, viaFastify]) {
      expect(socket.frames.filter((f) => f.t === 'room.message')).toEqual([]);
      expect(socket.frames.filter((f) => f.t === 'room.member')).toHaveLength(1);
    }
  }, 60_000);
});
