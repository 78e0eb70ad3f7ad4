/**
 * Review 20: Redis pub/sub is at most once. A node whose bus subscriber connection drops (Redis
 * restarted, a network blip, Redis closing a subscriber past `client-output-buffer-limit pubsub`)
 * hears nothing published until it has reconnected and subscribed again; room pushes have the tail
 * sweep for that, but three announcements had nothing, and their loss lasted as long as the sockets:
 * - a member removed from a room went on receiving its messages on that node (the removal was never
 *   heard): once the subscriber is back, the store now decides who still gets each room there;
 * - a contact removal: the watch it should have ended went on, pushing the former contact's every
 *   transition (presence is for mutual contacts): the watches are now checked against the store;
 * - a contact's change of presence: watchers there kept the old state until the next change: the
 *   node now pushes the current presence of every user its sockets watch (after that check).
 * Two real nodes in this process on a redis-server of this file's own, whose pub/sub connections
 * are killed and, at `maxclients`, kept out while the announcement is made.
 */

import { describe, expect, it } from 'vitest';
import type { RunningNode } from '../../src/bin/start-node.js';
import { until } from '../support/cluster.js';
import { createGroupRoom, httpClient, makeContacts, type Registered, registerUser } from '../support/http.js';
import { twoNodesOnOwnRedis } from '../support/two-nodes.js';
import { openSocket, type WireFrame } from '../support/ws-client.js';

describe("review 20: announcements made while a node's bus subscriber was away", () => {
  const env = twoNodesOnOwnRedis('bus-away', (admin) => admin.config('SET', 'maxclients', '10000'));
  const { nodes, sockets } = env;

  /**
   * Runs `during` with both nodes' bus subscribers cut and kept out (Redis at `maxclients`); their
   * main connections stay. Waits first for both subscribers to be connected (the previous test's
   * may still be coming back).
   */
  const whileBusAway = async (during: () => Promise<void>) => {
    const listClients = async () =>
      String(await env.admin.client('LIST'))
        .split('\n')
        .filter((line) => line.trim() !== '');
    const isBus = (line: string) => / name=gigwire:bus /.test(` ${line} `);
    expect(await until(async () => (await listClients()).filter(isBus).length === 2, 10_000)).toBe(true);
    const clients = await listClients();
    await env.admin.config('SET', 'maxclients', String(clients.length - clients.filter(isBus).length));
    await env.admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    try {
      await during();
    } finally {
      await env.admin.config('SET', 'maxclients', '10000');
    }
  };

  it('takes the removed member out of the room there once the subscriber is back', async () => {
    const [nodeA, nodeB] = nodes as [RunningNode, RunningNode];
    const api = httpClient(nodeA.baseUrl);
    const [owner, member] = [await registerUser(api), await registerUser(api)];
    const roomId = await createGroupRoom(api, owner, [member]);
    const joined = async (url: string | undefined, token: string) => {
      const socket = await openSocket(url ?? '', token, 'json');
      sockets.push(socket);
      await socket.next((f) => f.t === 'hello');
      expect(await socket.request('room.join', { roomId })).toMatchObject({ t: 'ok' });
      return socket;
    };
    const ownerOnA = await joined(nodeA.uwsUrl, owner.accessToken);
    // The owner on node B too: it receives what node B fans out to the room, the moment to look.
    const ownerOnB = await joined(nodeB.uwsUrl, owner.accessToken);
    const memberOnB = await joined(nodeB.uwsUrl, member.accessToken);
    const isRemoval = (f: WireFrame) =>
      f.t === 'room.member' && (f.d as { userId: string; change: string }).userId === member.id;

    // Both nodes' bus subscribers cut and kept out (Redis full) meanwhile; their main connections stay.
    await whileBusAway(async () => {
      const removed = await api.call('DELETE', `/v1/rooms/${roomId}/members/${member.id}`, {
        token: owner.accessToken,
      });
      expect(removed.status).toBe(204);
      // Announced: node A's own sockets hear it (in-process), node B's do not.
      await ownerOnA.next(isRemoval, 5_000);
    });

    // Node B's subscriber comes back: the member's socket there is told and taken out of the room.
    expect(await memberOnB.next(isRemoval, 8_000)).toMatchObject({
      d: { roomId, userId: member.id, change: 'removed' },
    });
    expect(
      await ownerOnA.request('room.send', { roomId, clientMsgId: 'after-removal', body: 'members only' }),
    ).toMatchObject({ t: 'ok' });
    const isSecret = (f: WireFrame) =>
      f.t === 'room.message' && (f.d as { clientMsgId: string }).clientMsgId === 'after-removal';
    await ownerOnB.next(isSecret, 5_000);
    // Anything node B wrote to the member's socket in that fan-out came before this reply.
    expect(await memberOnB.request('ping', {})).toMatchObject({ t: 'ok' });
    expect(memberOnB.frames.filter(isSecret)).toEqual([]);
  }, 30_000);

  it("pushes no more of a former contact's presence once the subscriber is back", async () => {
    const [nodeA, nodeB] = nodes as [RunningNode, RunningNode];
    const api = httpClient(nodeA.baseUrl);
    const [alice, bob, carol, dave] = [
      await registerUser(api),
      await registerUser(api),
      await registerUser(api),
      await registerUser(api),
    ];
    await makeContacts(api, alice, bob);
    await makeContacts(api, alice, carol);
    const roomId = await createGroupRoom(api, dave, [alice]);
    const open = async (url: string | undefined, who: Registered) => {
      const socket = await openSocket(url ?? '', who.accessToken, 'json');
      sockets.push(socket);
      await socket.next((f) => f.t === 'hello');
      return socket;
    };
    const watcher = await open(nodeB.uwsUrl, alice);
    expect(await watcher.request('presence.subscribe', { userIds: [bob.id, carol.id] })).toMatchObject({
      t: 'ok',
    });
    expect(await watcher.request('room.join', { roomId })).toMatchObject({ t: 'ok' });
    const daveOnA = await open(nodeA.uwsUrl, dave);

    // Both nodes' bus subscribers cut and kept out (Redis full) meanwhile; their main connections stay.
    await whileBusAway(async () => {
      // Published before the 204, while node B hears nothing.
      const removed = await api.call('DELETE', `/v1/me/contacts/${alice.id}`, { token: bob.accessToken });
      expect(removed.status).toBe(204);
    });

    // Node B hears the bus again once a room message sent now reaches the watcher there.
    const heard = (clientMsgId: string) => (f: WireFrame) =>
      f.t === 'room.message' && (f.d as { clientMsgId: string }).clientMsgId === clientMsgId;
    let back = false;
    for (let attempt = 0; attempt < 40 && !back; attempt += 1) {
      await daveOnA.request('room.send', { roomId, clientMsgId: `probe-${attempt}`, body: 'probe' });
      back = await watcher.next(heard(`probe-${attempt}`), 250).then(
        () => true,
        () => false,
      );
    }
    expect(back).toBe(true);

    // Bob, then carol (still a contact) come online and go offline, on node A: their pushes reach
    // node B in that order. A round without a push of bob before carol's shows the watch ended
    // (a round may still see one: a refresh of watched presence racing the check).
    const pushOf = (userId: string, status: string) => (f: WireFrame) =>
      f.t === 'presence' &&
      (f.d as { userId: string; status: string }).userId === userId &&
      (f.d as { status: string }).status === status;
    let bobPushed = true;
    for (let round = 0; round < 5 && bobPushed; round += 1) {
      const from = watcher.frames.length;
      const bobSocket = await open(nodeA.uwsUrl, bob);
      const carolSocket = await open(nodeA.uwsUrl, carol);
      await watcher.next((f) => watcher.frames.indexOf(f) >= from && pushOf(carol.id, 'online')(f), 5_000);
      bobSocket.close();
      await bobSocket.closed;
      carolSocket.close();
      await carolSocket.closed;
      await watcher.next((f) => watcher.frames.indexOf(f) >= from && pushOf(carol.id, 'offline')(f), 5_000);
      bobPushed = watcher.frames.slice(from).some((f) => (f.d as { userId?: string })?.userId === bob.id);
    }
    expect(bobPushed).toBe(false);
  }, 30_000);

  it("tells a watcher a contact's change it missed while its node's subscriber was away", async () => {
    const [nodeA, nodeB] = nodes as [RunningNode, RunningNode];
    const api = httpClient(nodeA.baseUrl);
    const [alice, bob] = [await registerUser(api), await registerUser(api)];
    await makeContacts(api, alice, bob);
    const watcher = await openSocket(nodeB.uwsUrl ?? '', alice.accessToken, 'json');
    expect(await watcher.request('presence.subscribe', { userIds: [bob.id] })).toMatchObject({ t: 'ok' });
    const bobOnA = await openSocket(nodeA.uwsUrl ?? '', bob.accessToken, 'json');
    await bobOnA.next((f) => f.t === 'hello');
    const statusOf = (status: string) => (f: { t: string; d?: unknown }) =>
      f.t === 'presence' &&
      (f.d as { userId: string; status: string }).userId === bob.id &&
      (f.d as { status: string }).status === status;
    await watcher.next(statusOf('online'), 5_000);

    // Both nodes' bus subscribers cut and kept out (Redis full) meanwhile; their main connections stay.
    await whileBusAway(async () => {
      bobOnA.close();
      // Counted and announced by node A while node B heard nothing.
      const bobOnline = async () =>
        (await api.get(`/v1/users/${bob.id}`, alice.accessToken)).body as { presence?: { status: string } };
      expect(await until(async () => (await bobOnline()).presence?.status === 'offline', 5_000)).toBe(true);
    });
    const offline = await watcher.next(statusOf('offline'), 6_000);
    expect((offline.d as { lastSeenAt: string | null }).lastSeenAt).not.toBeNull();
    watcher.close();
  }, 30_000);
});
