/**
 * The uWebSockets.js fresh-socket drop (uNetworking/uWebSockets #1928, src/gateway/uws.ts): every
 * asynchronous upgrade, a node's very first client socket included, completes under the cork of the
 * node's own loopback anchor, never under a plain res.cork() of its own. Proved on a whole node: the
 * listener reports its anchor open before it serves, a fresh node's first socket and each later one
 * opened while no other client socket is open are all anchored (the listener logs every unanchored
 * upgrade), each socket works, and the anchor does not hold the node's shutdown. Lone sockets whose
 * upgrade is decided synchronously (a connect token, its session row cached) work as well.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Subprotocol } from '../../protocol/src/version.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';
import { openSocket } from '../support/ws-client.js';

describe('uWebSockets.js: the first socket of a node is upgraded under a cork anchor', () => {
  let test: TestNode;
  beforeAll(async () => {
    test = await startTestNode();
  });
  afterAll(async () => {
    await test?.stop();
  });

  it.skipIf(process.versions.modules !== '115')(
    'anchors the first socket and every lone socket after it; the anchor ends with the node',
    async () => {
      const { node, logs } = test;
      expect(node.uwsUrl).toBeDefined();
      const listening = logs.lines().find((line) => line.msg === 'uWebSockets.js listening on /ws');
      expect(listening).toMatchObject({ corkAnchor: true });

      const user = await registerUser(httpClient(node.baseUrl));
      for (let i = 0; i < 5; i++) {
        // Each socket is the only client socket of the node: the case that used to take the plain path.
        const socket = await openSocket(
          node.uwsUrl ?? '',
          user.accessToken,
          i % 2 === 0 ? 'json' : 'msgpack',
        );
        expect((await socket.request('ping')).t).toBe('ok');
        expect((await socket.request('ping')).t).toBe('ok');
        socket.close();
        expect((await socket.closed).code).toBe(1005);
      }
      expect(logs.text()).not.toContain('without a cork anchor');
    },
  );

  it.skipIf(process.versions.modules !== '115')(
    'upgrades decided in the handler (a connect token, its session cached) open lone sockets that work',
    async () => {
      const { node, logs } = test;
      const api = httpClient(node.baseUrl);
      const user = await registerUser(api);
      const login = await api.post<{ connectToken: string }>('/v1/auth/login', {
        login: user.username,
        password: user.password,
      });
      expect(login.status).toBe(200);
      for (let i = 0; i < 5; i++) {
        // The first may wait for the session row; the later ones are upgraded synchronously.
        const ws = new WebSocket(node.uwsUrl ?? '', [Subprotocol.JSON, `connect.${login.body.connectToken}`]);
        const frames: { t: string; id?: number }[] = [];
        ws.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString('utf8')) as { t: string }));
        const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        });
        for (const id of [1, 2]) {
          ws.send(JSON.stringify({ t: 'ping', id }));
          await expect.poll(() => frames.some((frame) => frame.t === 'ok' && frame.id === id)).toBe(true);
        }
        expect(frames[0]).toMatchObject({ t: 'hello' });
        ws.close();
        expect(await closed).toBe(1005);
      }
      expect(logs.text()).not.toContain('without a cork anchor');
    },
  );
});
