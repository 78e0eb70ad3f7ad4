/**
 * The rate bucket a user's closed connection leaves behind (BucketCarry) was handed to the first
 * new connection only: a second socket opened right after started full. So a client that
 * reconnected with two sockets at a time instead of one got a whole fresh burst per round again,
 * which is what carrying the bucket was to stop. Every new connection of the user now starts from
 * the carried bucket (refilled to now, at least NEW_CONNECTION_MIN_TOKENS) while it has not
 * refilled.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../../src/bin/start-node.js';
import { NEW_CONNECTION_MIN_TOKENS } from '../../src/gateway/connection.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { untilDefined } from '../support/poll.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

const BURST = 30;

describe('ws review 16: rate buckets across a reconnect with several sockets', () => {
  let testNode: TestNode;
  let node: RunningNode;
  let user: Registered;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    testNode = await startTestNode({ WS_MAX_MESSAGES_PER_SECOND: '1', WS_MAX_BURST: String(BURST) });
    node = testNode.node;
    user = await registerUser(httpClient(node.baseUrl));
  }, 60_000);

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await testNode?.stop();
  });

  const open = async (who: Registered) => {
    const socket = await openSocket(node.uwsUrl ?? '', who.accessToken, 'json');
    sockets.push(socket);
    await socket.next((f) => f.t === 'hello');
    return socket;
  };
  /** Sends a burst of pings (a whole maxBurst by default); answers how many were served. */
  const burst = async (socket: TestSocket, frames = BURST) => {
    const answers = await Promise.all(Array.from({ length: frames }, () => socket.request('ping')));
    return answers.filter((answer) => answer.t === 'ok').length;
  };
  /** Closes every socket opened so far and waits until the node counts none open. */
  const closeAll = async () => {
    for (const socket of sockets.splice(0)) {
      socket.close();
      await socket.closed;
    }
    // The server keeps a closed socket's bucket as it handles its side of the close, just after the client's.
    await untilDefined(async () => {
      const metrics = await (await fetch(`${node.baseUrl}/metrics`)).text();
      return /^gigwire_ws_connections\{[^}]*\} [1-9]/m.test(metrics) ? undefined : true;
    }, 'the closed sockets to be counted gone');
  };

  it('starts every new socket of the user from the carried bucket, not only the first', async () => {
    const first = await open(user);
    expect(await burst(first)).toBe(BURST);
    await closeAll();

    // Fewer frames than would close a socket for rate abuse: only how many are served counts here.
    const [a, b] = await Promise.all([open(user), open(user)]);
    const served = [await burst(a as TestSocket, 12), await burst(b as TestSocket, 12)];
    for (const count of served) expect(count).toBeLessThanOrEqual(NEW_CONNECTION_MIN_TOKENS + 2);
  }, 60_000);

  it('never closes 1008 a client that paces itself with the limits hello announced, right after a reconnect', async () => {
    await closeAll();
    const paced = await registerUser(httpClient(node.baseUrl));
    const first = await open(paced);
    expect(await burst(first)).toBe(BURST);
    await closeAll();

    // hello announces maxBurst: a client pacing itself with that bucket (the SDK does) sends a
    // whole burst at once. The carried bucket refuses most of them RATE_LIMITED (the rate holds),
    // but more than maxStrikes (20) such refusals closed the socket 1008, which tells a client to
    // stop for good, although it kept to PROTOCOL.md's "pace yourself with the same bucket".
    const second = await open(paced);
    const hello = await second.next((f) => f.t === 'hello');
    expect((hello.d as { limits: { maxBurst: number } }).limits.maxBurst).toBe(BURST);
    const answers = await Promise.all(Array.from({ length: BURST }, () => second.request('ping')));
    const refused = answers.filter((a) => (a.d as { code?: string } | undefined)?.code === 'RATE_LIMITED');
    expect(refused.length).toBeGreaterThan(20);
    expect(answers.length - refused.length).toBeLessThanOrEqual(NEW_CONNECTION_MIN_TOKENS + 2);
    // Still open: a later request is answered (served or refused, but answered).
    const later = await second.request('ping');
    expect(['ok', 'error']).toContain(later.t);
    expect(second.ws.readyState).toBe(second.ws.OPEN);
  }, 60_000);
});
