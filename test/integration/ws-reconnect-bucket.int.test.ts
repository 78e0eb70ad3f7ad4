/**
 * Reconnecting does not refill a user's rate bucket: a closed connection leaves its bucket on the
 * node and the user's next connection starts from it (before, opening and closing one socket in a
 * loop stored ~2 000 messages a second against a limit of 50). Another user is not affected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../../src/bin/start-node.js';
import { NEW_CONNECTION_MIN_TOKENS } from '../../src/gateway/connection.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

const BURST = 20;

describe('rate buckets across reconnects', () => {
  let testNode: TestNode;
  let node: RunningNode;
  let user: Registered;
  let other: Registered;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    testNode = await startTestNode({ WS_MAX_MESSAGES_PER_SECOND: '1', WS_MAX_BURST: String(BURST) });
    node = testNode.node;
    const api = httpClient(node.baseUrl);
    user = await registerUser(api);
    other = await registerUser(api);
  }, 60_000);

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await testNode?.stop();
  });

  const open = async (who: Registered) => {
    const socket = await openSocket(node.uwsUrl ?? '', who.accessToken, 'json');
    sockets.push(socket);
    return socket;
  };
  /** Sends a burst of pings; answers how many were served. */
  const burst = async (socket: TestSocket) => {
    const answers = await Promise.all(Array.from({ length: BURST }, () => socket.request('ping')));
    return answers.filter((answer) => answer.t === 'ok').length;
  };

  it("starts a user's new connection from the bucket their closed one left", async () => {
    const first = await open(user);
    expect(await burst(first)).toBe(BURST);
    first.close();
    await first.closed;
    // The server handles its side of the close just after the client's: wait until it counts no
    // open connection (the bucket is kept before the count drops).
    for (let i = 0; i < 200; i++) {
      const metrics = await (await fetch(`${node.baseUrl}/metrics`)).text();
      if (!/^gigwire_ws_connections\{[^}]*\} [1-9]/m.test(metrics)) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }

    // At one token a second, the new socket has what refilled since, or the few frames every new
    // connection may send at once (NEW_CONNECTION_MIN_TOKENS): not the full burst.
    const second = await open(user);
    expect(await burst(second)).toBeLessThanOrEqual(NEW_CONNECTION_MIN_TOKENS + 2);
    // Another user starts full.
    expect(await burst(await open(other))).toBe(BURST);
  }, 60_000);
});
