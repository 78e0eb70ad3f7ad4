/**
 * The per-user socket cap counted half-open sockets: a user whose network flapped (a phone
 * switching networks, a laptop lid) with as many tabs as WS_MAX_SOCKETS_PER_USER reconnected while
 * the server still held the dead sockets, and each new one was closed 1008, which tells a client
 * to stop: locked out of realtime until the dead sockets timed out. Now a socket arriving at the
 * cap has the user's others pinged (refused 4101 meanwhile, a reconnect code); the next attempt
 * replaces the one silent longest (closed 4100) and is admitted, and only when every open socket
 * answered is it refused 1008.
 *
 * Silence is made the way a vanished peer looks from the server: the client's socket is paused,
 * so it reads nothing (no pong for the server's pings) and sends nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createClient } from '../../protocol/src/client/index.js';
import type { RunningNode } from '../../src/bin/start-node.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { untilDefined } from '../support/poll.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

const CAP = 3;

const wsUrls = (node: RunningNode) => ({
  uws: node.uwsUrl ?? `${node.baseUrl.replace(/^http/, 'ws')}/ws`,
  'fastify-ws': `${node.baseUrl.replace(/^http/, 'ws')}/ws`,
});

describe('ws review 17: the per-user socket cap and half-open sockets', () => {
  let testNode: TestNode;
  let node: RunningNode;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    // A long idle timeout: the server's own heartbeat must not be what frees the cap here.
    testNode = await startTestNode({ WS_MAX_SOCKETS_PER_USER: String(CAP), WS_IDLE_TIMEOUT_S: '300' });
    node = testNode.node;
  }, 60_000);

  afterAll(async () => {
    for (const socket of sockets) {
      socket.ws.resume();
      socket.ws.terminate();
    }
    await testNode?.stop();
  });

  /** Opens a socket; answers it with 'hello' once it said hello, or with the close it got first. */
  const attempt = async (url: string, user: Registered) => {
    const socket = await openSocket(url, user.accessToken, 'json');
    sockets.push(socket);
    const outcome = await Promise.race([
      socket.next((f) => f.t === 'hello', 10_000).then(() => 'hello' as const),
      socket.closed,
    ]);
    return { socket, outcome };
  };

  /**
   * Attempts a socket until the answer is not "checking the others" (4101); answers the socket,
   * its outcome and the refusals seen before.
   */
  const attemptPastChecking = async (url: string, user: Registered) => {
    const refusals: { code: number; reason: string }[] = [];
    const settled = await untilDefined(async () => {
      const result = await attempt(url, user);
      if (result.outcome !== 'hello' && result.outcome.code === 4101) {
        refusals.push({ code: result.outcome.code, reason: result.outcome.reason });
        return undefined;
      }
      return result;
    }, 'an attempt decided past the check of the other sockets');
    return { ...settled, refusals };
  };

  it('lets the SDK of a user whose other sockets went half-open back in instead of stopping', async () => {
    const url = wsUrls(node).uws;
    const user = await registerUser(httpClient(node.baseUrl));
    // The tabs of a laptop whose network switched: open on the server, gone at the client.
    for (let i = 0; i < CAP; i++) {
      const result = await attempt(url, user);
      expect(result.outcome).toBe('hello');
      result.socket.ws.pause();
    }
    const client = createClient({
      url,
      WebSocket,
      encoding: 'json',
      getAccessToken: () => user.accessToken,
      reconnect: { initialDelayMs: 200, maxDelayMs: 1_000 },
    });
    const disconnects: { code: number; action: string }[] = [];
    client.on('disconnected', (event) => disconnects.push({ code: event.code, action: event.action }));
    try {
      const hello = await client.whenConnected();
      expect(hello.userId).toBe(user.id);
      // Told to retry while the others were asked, never to stop.
      for (const event of disconnects) expect(event).toEqual({ code: 4101, action: 'reconnect' });
      expect(await client.request('ping')).toMatchObject({ serverTime: expect.any(Number) });
    } finally {
      client.close();
    }
  }, 60_000);

  describe.each(['uws', 'fastify-ws'] as const)('over %s', (transport) => {
    it('replaces the socket silent longest with a new one of the same user, and refuses 1008 only when all answer', async () => {
      const url = wsUrls(node)[transport];
      const user = await registerUser(httpClient(node.baseUrl));
      const other = await registerUser(httpClient(node.baseUrl));
      const open = async (who: Registered) => {
        const result = await attempt(url, who);
        expect(result.outcome).toBe('hello');
        return result.socket;
      };
      const [a, b, c] = [await open(user), await open(user), await open(user)];
      // Another user at the cap too: their sockets are never asked about nor closed for `user`.
      const others = [await open(other), await open(other), await open(other)];
      for (const socket of others) socket.ws.pause();
      // `a` goes silent first, then `b` and `c` after a frame each: `a` is the one heard from longest ago.
      a.ws.pause();
      expect((await b.request('ping')).t).toBe('ok');
      expect((await c.request('ping')).t).toBe('ok');
      b.ws.pause();
      c.ws.pause();

      const d = await attemptPastChecking(url, user);
      expect(d.outcome).toBe('hello');
      for (const refusal of d.refusals) {
        expect(refusal).toEqual({
          code: 4101,
          reason: 'too many sockets for this user: checking the others, retry',
        });
      }
      // `a` was closed 4100 (read once its client reads again); `b` and `c` were left open.
      a.ws.resume();
      expect(await a.closed).toMatchObject({ code: 4100, reason: 'replaced by a newer socket of this user' });
      b.ws.resume();
      c.ws.resume();
      expect((await b.request('ping')).t).toBe('ok');
      expect((await c.request('ping')).t).toBe('ok');
      expect((await d.socket.request('ping')).t).toBe('ok');

      // Every socket of the user answers now: one more is refused 1008 and nothing is closed.
      const e = await attemptPastChecking(url, user);
      expect(e.outcome).toEqual(
        expect.objectContaining({ code: 1008, reason: 'too many sockets for this user' }),
      );
      expect(e.socket.frames.filter((f) => f.t === 'hello')).toEqual([]);
      for (const socket of [b, c, d.socket]) expect((await socket.request('ping')).t).toBe('ok');

      // The other user's silent sockets were never touched: they still serve once read again.
      for (const socket of others) {
        socket.ws.resume();
        expect((await socket.request('ping')).t).toBe('ok');
      }
    }, 60_000);
  });
});
