/**
 * Review 20, the SDK on a bad network: requests the app made while offline are not failed
 * RATE_LIMITED after the reconnect. A node starts a user's new socket from the rate bucket their
 * socket closed a moment ago left (PROTOCOL.md, Limits: at least 5 frames), while the SDK paces
 * from the full `maxBurst` that `hello` announces; so after a busy connection dropped, the queued
 * requests it sends at once at the next `hello` are partly refused RATE_LIMITED ("not processed",
 * with `retryAfterMs`). Before the fix those refusals reached the app: a mark-as-read or any other
 * request failed although the app kept to the announced limits. Now the SDK sends a refused frame
 * again after `retryAfterMs` (within its own timeout) and paces what follows from the server's
 * word. Real node (uWebSockets.js), PostgreSQL and Redis; the client's WebSocket is `ws` with a
 * switch to close the open socket from the client side (as a phone changing networks may).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { createClient, type GigwireClient } from '../../protocol/src/client/index.js';
import { NEW_CONNECTION_MIN_TOKENS } from '../../src/gateway/connection.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { hookedWebSocket } from '../support/hooked-websocket.js';
import { createGroupRoom, httpClient, registerUser } from '../support/http.js';

/** `ws`, plus `closeCurrent(code)`: the client side closes the open socket with that code. */
function closableNetwork() {
  let current: WebSocket | undefined;
  return {
    WebSocket: hookedWebSocket({ created: (socket) => (current = socket) }),
    closeCurrent: (code: number) => current?.close(code, 'network change'),
  };
}

const LIMITS = { perSecond: 10, burst: 20 };

describe('SDK requests queued offline, after a reconnect from a spent rate bucket (review 20)', () => {
  let t: TestNode;
  let client: GigwireClient | undefined;

  beforeAll(async () => {
    t = await startTestNode({
      WS_MAX_MESSAGES_PER_SECOND: String(LIMITS.perSecond),
      WS_MAX_BURST: String(LIMITS.burst),
    });
  });
  afterAll(async () => {
    client?.close();
    await t.stop();
  });

  it('answers every queued request, none refused RATE_LIMITED, and the connection stays open', async () => {
    const wsUrl = t.node.uwsUrl;
    if (wsUrl === undefined) throw new Error('the node has no uWebSockets.js listener');
    const api = httpClient(t.node.baseUrl);
    const user = await registerUser(api);
    const roomId = await createGroupRoom(api, await registerUser(api), [user]);
    const network = closableNetwork();
    client = createClient({
      url: wsUrl,
      WebSocket: network.WebSocket,
      getAccessToken: () => user.accessToken,
      requestTimeoutMs: 8_000,
    });
    const live = client;
    const closes: number[] = [];
    live.on('disconnected', (event) => closes.push(event.code));
    const hello = await live.whenConnected();
    expect(hello.limits).toMatchObject({ maxMessagesPerSecond: LIMITS.perSecond, maxBurst: LIMITS.burst });

    // A busy moment: most of the burst spent (the SDK's own pacing allows 90 % of it).
    await Promise.all(Array.from({ length: 18 }, () => live.request('ping')));
    // The network changes: the socket is closed from this side, the SDK reconnects by itself.
    network.closeCurrent(3000);
    await new Promise<void>((resolve) => {
      const off = live.on('disconnected', () => {
        off();
        resolve();
      });
    });
    // Meanwhile the app goes on: three times the requests the node's carried bucket lets in.
    const queued: Promise<unknown>[] = Array.from({ length: 3 * NEW_CONNECTION_MIN_TOKENS }, (_, i) =>
      i % 3 === 0 ? live.readNotifications('all') : live.request('ping'),
    );
    // And opens a room (a first join: refused, the SDK would forget the room again).
    queued.push(live.joinRoom(roomId));
    const outcomes = await Promise.allSettled(queued);
    const refused = outcomes.flatMap((outcome) =>
      outcome.status === 'rejected' ? [(outcome.reason as { code?: string }).code] : [],
    );
    expect(refused).toEqual([]);
    expect(await queued.at(-1)).toEqual({ lastSeq: 0 });
    expect(live.state).toBe('open');
    // The one close made here (the node answers it without echoing the code), no 1008 for the refusals.
    expect(closes).toHaveLength(1);
  }, 30_000);
});
