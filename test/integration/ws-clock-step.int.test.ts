/**
 * The wall clock stepping back (NTP correcting a fast clock, a VM resumed) must not lock clients out:
 * the WebSocket rate buckets and strike windows measure elapsed time on a monotonic clock. With the
 * wall clock read 60 s earlier after a connection opened, a client sending well under its limit is
 * still served, and new upgrades from the same address are still admitted.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RunningNode } from '../../src/bin/start-node.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

describe('a wall clock stepped back', () => {
  let testNode: TestNode;
  let node: RunningNode;
  let user: Registered;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    testNode = await startTestNode();
    node = testNode.node;
    user = await registerUser(httpClient(node.baseUrl));
  }, 60_000);

  afterAll(async () => {
    vi.restoreAllMocks();
    for (const socket of sockets) socket.close();
    await testNode?.stop();
  });

  it('keeps serving frames and admitting upgrades', async () => {
    const socket = await openSocket(node.uwsUrl ?? '', user.accessToken, 'json');
    sockets.push(socket);
    expect((await socket.request('ping')).t).toBe('ok');

    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() - 60_000);
    try {
      for (let i = 0; i < 5; i++) {
        const answer = await socket.request('ping');
        expect(answer.t, JSON.stringify(answer)).toBe('ok');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      for (let i = 0; i < 3; i++) {
        const another = await openSocket(node.uwsUrl ?? '', user.accessToken, 'json');
        sockets.push(another);
        expect((await another.request('ping')).t).toBe('ok');
      }
    } finally {
      vi.restoreAllMocks();
    }
  }, 60_000);
});
