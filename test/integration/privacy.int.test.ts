/**
 * Privacy between users (issue 10, finding 9): presence is visible only between mutual contacts
 * (each added the other: adding back accepts a contact request), alike over REST and on both
 * WebSocket transports, and stops at once when either removes the other; nobody is put into a
 * room (direct or group) by someone they have not added as a contact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../../src/bin/start-node.js';
import { createDb } from '../../src/db/create-db.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import {
  addContact,
  httpClient,
  makeContacts,
  promoteToAdmin,
  type Registered,
  registerUser,
} from '../support/http.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

describe('privacy: presence for mutual contacts, rooms by consent', () => {
  let testNode: TestNode;
  let node: RunningNode;
  let api: ReturnType<typeof httpClient>;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    testNode = await startTestNode();
    node = testNode.node;
    api = httpClient(node.baseUrl);
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await testNode.stop();
  });

  const endpoints = () => ({
    uws: node.uwsUrl ?? `${node.baseUrl.replace(/^http/, 'ws')}/ws`,
    'fastify-ws': `${node.baseUrl.replace(/^http/, 'ws')}/ws`,
  });
  const open = async (url: string, user: Registered) => {
    const socket = await openSocket(url, user.accessToken, 'json');
    sockets.push(socket);
    await socket.next((f) => f.t === 'hello');
    return socket;
  };
  const profile = (viewer: Registered, id: string) =>
    api.get<Record<string, unknown>>(`/v1/users/${id}`, viewer.accessToken);

  describe('GET /v1/users/:id', () => {
    it('shows presence and lastSeenAt only to mutual contacts and to the user themself', async () => {
      const [owner, stranger, follower, friend] = [
        await registerUser(api),
        await registerUser(api),
        await registerUser(api),
        await registerUser(api),
      ];
      // Seen once, so there is a lastSeenAt to leak.
      const socket = await open(endpoints().uws, owner);
      socket.close();
      await socket.closed;
      await addContact(api, follower, owner); // one-sided: follower added owner, not back
      await makeContacts(api, friend, owner);

      for (const viewer of [stranger, follower]) {
        const seen = await profile(viewer, owner.id);
        expect(seen.status).toBe(200);
        expect(seen.body.id).toBe(owner.id);
        expect(seen.body).not.toHaveProperty('presence');
        expect(JSON.stringify(seen.body)).not.toContain('lastSeenAt');
      }
      const byFriend = await profile(friend, owner.id);
      expect(byFriend.body.presence).toMatchObject({ status: expect.stringMatching(/^(online|offline)$/) });
      expect((await profile(owner, owner.id)).body).toHaveProperty('presence');
    });
  });

  describe.each(['uws', 'fastify-ws'] as const)('presence over %s', (transport) => {
    it('refuses presence.subscribe for a one-sided contact, accepts it once the other adds back', async () => {
      const [watcher, watched] = [await registerUser(api), await registerUser(api)];
      await addContact(api, watcher, watched);
      const socket = await open(endpoints()[transport], watcher);
      const refused = await socket.request('presence.subscribe', { userIds: [watched.id] });
      expect(refused).toMatchObject({
        t: 'error',
        d: { code: 'FORBIDDEN', details: { userIds: [watched.id] } },
      });

      // The watched user online: nothing is pushed to the refused watcher.
      const watchedSocket = await open(endpoints().uws, watched);
      await addContact(api, watched, watcher); // accepts: now mutual
      const accepted = await socket.request('presence.subscribe', { userIds: [watched.id] });
      expect(accepted).toMatchObject({
        t: 'ok',
        d: { presence: [{ userId: watched.id, status: 'online', lastSeenAt: null }] },
      });
      watchedSocket.close();
      await socket.next((f) => f.t === 'presence' && (f.d as { status: string }).status === 'offline');
    });

    it('stops presence pushes as soon as the watched user removes the watcher', async () => {
      const [watcher, leaver, stayer] = [
        await registerUser(api),
        await registerUser(api),
        await registerUser(api),
      ];
      await makeContacts(api, watcher, leaver);
      await makeContacts(api, watcher, stayer);
      const socket = await open(endpoints()[transport], watcher);
      expect(await socket.request('presence.subscribe', { userIds: [leaver.id, stayer.id] })).toMatchObject({
        t: 'ok',
      });

      const removed = await api.call('DELETE', `/v1/me/contacts/${watcher.id}`, {
        token: leaver.accessToken,
      });
      expect(removed.status).toBe(204);
      // The leaver comes online first, then the stayer: the stayer's push arriving proves the
      // leaver's would have arrived before it (one bus, in order) had it been sent.
      await open(endpoints().uws, leaver);
      await open(endpoints()['fastify-ws'], stayer);
      await socket.next((f) => f.t === 'presence' && (f.d as { userId: string }).userId === stayer.id);
      expect(
        socket.frames.filter((f) => f.t === 'presence' && (f.d as { userId: string }).userId === leaver.id),
      ).toEqual([]);
      // And a new subscription is refused, over REST the presence is gone too.
      expect(await socket.request('presence.subscribe', { userIds: [leaver.id] })).toMatchObject({
        t: 'error',
        d: { code: 'FORBIDDEN' },
      });
      expect((await profile(watcher, leaver.id)).body).not.toHaveProperty('presence');
    });

    it('stops presence pushes when the watcher removes the contact too', async () => {
      const [watcher, watched, stayer] = [
        await registerUser(api),
        await registerUser(api),
        await registerUser(api),
      ];
      await makeContacts(api, watcher, watched);
      await makeContacts(api, watcher, stayer);
      const socket = await open(endpoints()[transport], watcher);
      await socket.request('presence.subscribe', { userIds: [watched.id, stayer.id] });
      await api.call('DELETE', `/v1/me/contacts/${watched.id}`, { token: watcher.accessToken });
      await open(endpoints().uws, watched);
      await open(endpoints().uws, stayer);
      await socket.next((f) => f.t === 'presence' && (f.d as { userId: string }).userId === stayer.id);
      expect(
        socket.frames.filter((f) => f.t === 'presence' && (f.d as { userId: string }).userId === watched.id),
      ).toEqual([]);
    });
  });

  it('refuses presence.subscribe of a mutual contact whose account an admin locked, as of a non-contact (review30c)', async () => {
    const [watcher, locked, admin] = [
      await registerUser(api),
      await registerUser(api),
      await registerUser(api),
    ];
    await makeContacts(api, watcher, locked);
    // Seen once, so there is a lastSeenAt to leak.
    const lockedSocket = await open(endpoints().uws, locked);
    lockedSocket.close();
    await lockedSocket.closed;
    const handle = await createDb({ kind: 'postgres', url: testNode.db.url, poolMax: 1 }, captureLogs().log);
    let adminToken: string;
    try {
      adminToken = await promoteToAdmin(api, handle.db, admin, []);
    } finally {
      await handle.close();
    }
    expect((await api.post(`/v1/admin/users/${locked.id}/lock`, undefined, adminToken)).status).toBe(204);

    const socket = await open(endpoints().uws, watcher);
    expect(await socket.request('presence.subscribe', { userIds: [locked.id] })).toMatchObject({
      t: 'error',
      d: { code: 'FORBIDDEN', details: { userIds: [locked.id] } },
    });
    expect((await profile(watcher, locked.id)).status).toBe(404);

    // Unlocked, they are contacts again.
    expect((await api.post(`/v1/admin/users/${locked.id}/unlock`, undefined, adminToken)).status).toBe(204);
    expect(await socket.request('presence.subscribe', { userIds: [locked.id] })).toMatchObject({
      t: 'ok',
      d: { presence: [{ userId: locked.id, status: 'offline' }] },
    });
  });

  describe('rooms need the consent of who is added', () => {
    it('refuses a group or direct room with users who have not added the creator, names them, creates nothing', async () => {
      const [creator, willing, unwilling] = [
        await registerUser(api),
        await registerUser(api),
        await registerUser(api),
      ];
      await addContact(api, willing, creator);
      await addContact(api, creator, unwilling); // the creator's own contact list grants nothing

      const group = await api.post(
        '/v1/rooms',
        { kind: 'group', memberIds: [willing.id, unwilling.id], title: 'x' },
        creator.accessToken,
      );
      expect(group.status).toBe(403);
      expect(group.body).toMatchObject({ code: 'FORBIDDEN', userIds: [unwilling.id] });
      const direct = await api.post(
        '/v1/rooms',
        { kind: 'direct', memberIds: [unwilling.id] },
        creator.accessToken,
      );
      expect(direct.status).toBe(403);
      expect(direct.body).toMatchObject({ code: 'FORBIDDEN' });
      for (const user of [creator, unwilling]) {
        const rooms = await api.get<{ data: unknown[] }>('/v1/rooms', user.accessToken);
        expect(rooms.body.data).toEqual([]);
      }

      expect(
        (await api.post('/v1/rooms', { kind: 'direct', memberIds: [willing.id] }, creator.accessToken))
          .status,
      ).toBe(201);
      await addContact(api, unwilling, creator);
      expect(
        (
          await api.post(
            '/v1/rooms',
            { kind: 'group', memberIds: [willing.id, unwilling.id], title: 'x' },
            creator.accessToken,
          )
        ).status,
      ).toBe(201);
    });

    it('refuses adding a member who has not added the adder; the creator cannot be bypassed by another member', async () => {
      const [creator, member, outsider] = [
        await registerUser(api),
        await registerUser(api),
        await registerUser(api),
      ];
      await addContact(api, member, creator);
      await addContact(api, outsider, creator); // the outsider consents to the creator only
      const created = await api.post<{ id: string }>(
        '/v1/rooms',
        { kind: 'group', memberIds: [member.id], title: 'x' },
        creator.accessToken,
      );
      expect(created.status).toBe(201);
      const roomId = created.body.id;

      const byMember = await api.post(
        `/v1/rooms/${roomId}/members/${outsider.id}`,
        undefined,
        member.accessToken,
      );
      expect(byMember.status).toBe(403);
      expect(byMember.body).toMatchObject({ code: 'FORBIDDEN', userIds: [outsider.id] });
      const outsiderRooms = await api.get<{ data: unknown[] }>('/v1/rooms', outsider.accessToken);
      expect(outsiderRooms.body.data).toEqual([]);

      const byCreator = await api.post(
        `/v1/rooms/${roomId}/members/${outsider.id}`,
        undefined,
        creator.accessToken,
      );
      expect(byCreator.status).toBe(204);
    });
  });
});
