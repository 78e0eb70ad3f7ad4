/**
 * `presence.subscribe` and `presence.unsubscribe` of one connection take effect in the order they
 * were sent. The subscribe checks contacts in the database before it registers its watch; an
 * unsubscribe sent right after it (the SDK sends one without waiting for the subscribe's `ok`,
 * PROTOCOL.md "Presence") was handled while the subscribe still waited, found nothing to drop, and
 * the subscribe then registered the watch anyway: the connection kept getting `presence` pushes of
 * a user it had unsubscribed from, for the rest of its life.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, makeContacts, type Registered, registerUser } from '../support/http.js';
import { openSocket, type TestSocket, type WireFrame } from '../support/ws-client.js';

describe('ws review 20: presence.unsubscribe sent while a presence.subscribe waits', () => {
  let testNode: TestNode;
  let watcher: Registered;
  let watched: Registered;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    testNode = await startTestNode();
    const api = httpClient(testNode.node.baseUrl);
    watcher = await registerUser(api);
    watched = await registerUser(api);
    await makeContacts(api, watcher, watched);
  }, 60_000);

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await testNode?.stop();
  });

  const open = async (who: Registered, encoding: 'json' | 'msgpack') => {
    const url = testNode.node.uwsUrl ?? `${testNode.node.baseUrl.replace(/^http/, 'ws')}/ws`;
    const socket = await openSocket(url, who.accessToken, encoding);
    sockets.push(socket);
    await socket.next((f) => f.t === 'hello');
    return socket;
  };
  const isPushOf = (userId: string) => (f: WireFrame) =>
    f.t === 'presence' && (f.d as { userId: string }).userId === userId;

  it('ends the watch: no presence push reaches the connection after both replies', async () => {
    const quick = await open(watcher, 'msgpack');
    // A second socket of the same user, subscribed the ordinary way: its push marks the moment.
    const control = await open(watcher, 'json');
    expect(await control.request('presence.subscribe', { userIds: [watched.id] })).toMatchObject({
      t: 'ok',
    });

    // Back to back, as the SDK's subscribePresence + unsubscribePresence send them.
    quick.send({ t: 'presence.subscribe', id: 9_001, d: { userIds: [watched.id] } });
    quick.send({ t: 'presence.unsubscribe', id: 9_002, d: { userIds: [watched.id] } });
    expect(await quick.next((f) => f.id === 9_001)).toMatchObject({ t: 'ok' });
    expect(await quick.next((f) => f.id === 9_002)).toMatchObject({ t: 'ok' });

    // The watched user comes online: the node pushes it to every watcher in one pass.
    await open(watched, 'json');
    await control.next(isPushOf(watched.id), 10_000);
    // Anything pushed to `quick` in that pass was written before the reply to this ping.
    expect(await quick.request('ping', {})).toMatchObject({ t: 'ok' });
    expect(quick.frames.filter(isPushOf(watched.id))).toEqual([]);
  });
});
