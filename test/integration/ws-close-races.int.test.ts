/**
 * A request whose handler awaits and then registers its connection somewhere (presence.subscribe →
 * hub.watch; auth.refresh → hub.rescheduleExpiry) may finish after the socket closed and the hub
 * dropped the connection. It must not put the closed connection back: nothing would ever remove it
 * again. Each round sends the request and closes at once, so the close arrives while the handler
 * waits for the database; afterwards no more Connections may stay reachable than before
 * (v8.queryObjects collects garbage before it counts), on both transports.
 */
import { queryObjects } from 'node:v8';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Connection } from '../../src/gateway/connection.js';
import { until } from '../support/cluster.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, makeContacts, type Registered, registerUser } from '../support/http.js';

const ROUNDS = 10;

describe('requests racing their socket’s close', () => {
  let test: TestNode;
  let api: ReturnType<typeof httpClient>;
  let alice: Registered;
  let bob: Registered;

  beforeAll(async () => {
    test = await startTestNode();
    api = httpClient(test.node.baseUrl);
    alice = await registerUser(api);
    bob = await registerUser(api);
    await makeContacts(api, alice, bob);
  });
  afterAll(async () => {
    await test.stop();
  });

  const urls = () => ({
    uws: test.node.uwsUrl ?? '',
    'fastify-ws': `${test.node.baseUrl.replace(/^http/, 'ws')}/ws`,
  });

  /** Opens a socket, sends `frame` as the first thing and closes right after, waiting for the close. */
  const sendThenClose = (url: string, token: string, frame: Record<string, unknown>) =>
    new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(url, ['gigwire.v1.json', `bearer.${token}`]);
      ws.once('open', () => {
        ws.send(JSON.stringify(frame));
        ws.close();
      });
      ws.once('close', () => resolve());
      ws.once('error', reject);
    });

  /** Reachable Connection objects (queryObjects collects garbage before it counts). */
  const liveConnections = () => queryObjects(Connection, { format: 'count' }) as number;

  /**
   * Whether the Connections are back to `before` once the handlers still running are done: only
   * this file's sockets connect to its node, and a leaked Connection never goes.
   */
  const backTo = (before: number) => until(() => liveConnections() <= before, 10_000);

  it.each(['uws', 'fastify-ws'] as const)(
    'control: open + ping + close leaves no Connection (%s)',
    async (t) => {
      const before = liveConnections();
      for (let i = 0; i < ROUNDS; i++)
        await sendThenClose(urls()[t], alice.accessToken, { t: 'ping', id: 1 });
      expect(await backTo(before)).toBe(true);
    },
  );

  it.each(['uws', 'fastify-ws'] as const)(
    'presence.subscribe then close leaves no Connection (%s)',
    async (t) => {
      const before = liveConnections();
      for (let i = 0; i < ROUNDS; i++)
        await sendThenClose(urls()[t], alice.accessToken, {
          t: 'presence.subscribe',
          id: 1,
          d: { userIds: [bob.id] },
        });
      expect(await backTo(before)).toBe(true);
    },
  );

  it.each(['uws', 'fastify-ws'] as const)('auth.refresh then close leaves no Connection (%s)', async (t) => {
    const before = liveConnections();
    for (let i = 0; i < ROUNDS; i++) {
      // A new session each round (a login elsewhere): its row is read from the database.
      const login = await api.post<{ accessToken: string }>('/v1/auth/login', {
        login: alice.username,
        password: alice.password,
      });
      await sendThenClose(urls()[t], alice.accessToken, {
        t: 'auth.refresh',
        id: 1,
        d: { accessToken: login.body.accessToken },
      });
    }
    expect(await backTo(before)).toBe(true);
  });
});
