/**
 * Review 22: the SDK keeps a sender's own messages in the order they were sent across a drop.
 * `sendMessage` resends a message whose frame was lost with the connection (DISCONNECTED) or
 * unanswered (TIMEOUT). The resend went to the END of the request queue, behind the app's later
 * messages still waiting there (for the announced rate bucket, or the next connection): after the
 * reconnect they were stored first, and every member read "m2, m3, m4, m1". Now a resend keeps the
 * place of its first call. Real node (uWebSockets.js), PostgreSQL and Redis; the network in front of
 * the SDK loses the frames sent while it is failing and then drops the TCP connection.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createClient, type GigwireClient } from '../../protocol/src/client/index.js';
import type { WebSocketLike } from '../../protocol/src/client/socket.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { createGroupRoom, httpClient, registerUser } from '../support/http.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

type Handler = ((event: unknown) => void) | null;

/** `ws` on a failing network: while `failing`, frames sent are lost; `drop()` ends the TCP connection. */
function failingNetwork() {
  let current: WebSocket | undefined;
  const state = { failing: false };
  class FailingSocket implements WebSocketLike {
    readonly #inner: WebSocket;
    onopen: unknown = null;
    onmessage: unknown = null;
    onclose: unknown = null;
    onerror: unknown = null;
    binaryType = 'arraybuffer';
    constructor(url: string, protocols?: string | string[]) {
      const ws = new WebSocket(url, protocols);
      ws.binaryType = 'arraybuffer';
      ws.onopen = (event) => (this.onopen as Handler)?.(event);
      ws.onmessage = (event) => (this.onmessage as Handler)?.(event);
      ws.onclose = (event) => (this.onclose as Handler)?.(event);
      ws.onerror = (event) => (this.onerror as Handler)?.(event);
      this.#inner = ws;
      current = ws;
    }
    get readyState() {
      return this.#inner.readyState;
    }
    get protocol() {
      return this.#inner.protocol;
    }
    send(data: string | Uint8Array) {
      if (!state.failing) this.#inner.send(data);
    }
    close(code?: number, reason?: string) {
      this.#inner.close(code, reason);
    }
  }
  return {
    WebSocket: FailingSocket,
    state,
    drop: () => current?.terminate(),
  };
}

describe('ws review 22: SDK send order across a drop', () => {
  let t: TestNode;
  let client: GigwireClient | undefined;
  let reader: TestSocket | undefined;

  beforeAll(async () => {
    // A small bucket (the SDK paces itself by hello's limits): messages wait in the SDK's queue.
    t = await startTestNode({ WS_MAX_MESSAGES_PER_SECOND: '2', WS_MAX_BURST: '2' });
  }, 60_000);
  afterAll(async () => {
    client?.close();
    reader?.close();
    await t?.stop();
  });

  it("stores a message resent after a drop before the sender's later ones", async () => {
    const wsUrl = t.node.uwsUrl ?? `${t.node.baseUrl.replace(/^http/, 'ws')}/ws`;
    const api = httpClient(t.node.baseUrl);
    const sender = await registerUser(api);
    const member = await registerUser(api);
    const roomId = await createGroupRoom(api, sender, [member]);
    reader = await openSocket(wsUrl, member.accessToken, 'json');
    await reader.next((f) => f.t === 'hello');
    expect((await reader.request('room.join', { roomId })).t).toBe('ok');

    const network = failingNetwork();
    client = createClient({
      url: wsUrl,
      WebSocket: network.WebSocket,
      getAccessToken: () => sender.accessToken,
    });
    await client.whenConnected();

    const bodies = ['m1', 'm2', 'm3', 'm4'];
    network.state.failing = true;
    // m1 leaves at once (and is lost); the others wait for the rate bucket.
    const sends = bodies.map((body) => client?.sendMessage(roomId, body, { clientMsgId: body }));
    await sleep(50);
    network.drop();
    network.state.failing = false;
    const acks = await Promise.all(sends);

    const stored = [...acks].sort((x, y) => (x?.seq ?? 0) - (y?.seq ?? 0)).map((ack) => ack?.clientMsgId);
    expect(stored).toEqual(bodies);
    const messages = async () => reader?.frames.filter((f) => f.t === 'room.message') ?? [];
    for (let i = 0; i < 200 && (await messages()).length < bodies.length; i++) await sleep(25);
    expect((await messages()).map((f) => (f.d as { body: string }).body)).toEqual(bodies);
  }, 60_000);
});
