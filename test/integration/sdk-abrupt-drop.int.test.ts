/**
 * The SDK after an abrupt drop (TCP gone, no close frame) while the server stays up: it reconnects
 * by itself, rejoins every room with `sinceSeq`, and each room's messages arrive exactly once and
 * in seq order — the few missed in one room (the rejoin's backlog from the node's recent messages),
 * the many missed in another (more than the node keeps in memory: from the database), and those
 * sent while the rejoin is under way; the server pushes every missed one (none needs history).
 * Real node (uWebSockets.js), PostgreSQL and Redis.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createClient, type GigwireClient } from '../../protocol/src/client/index.js';
import type { WebSocketLike } from '../../protocol/src/client/socket.js';
import { RECENT_PER_ROOM } from '../../src/gateway/room-joins.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { addContact, httpClient, registerUser } from '../support/http.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

type Handler = ((event: unknown) => void) | null;

/**
 * `ws` behind a switch: while offline, a socket the SDK creates waits (as on a dead network) and
 * starts when the switch goes back on; `drop()` terminates the open one (no close frame).
 */
function switchedNetwork() {
  let online = true;
  let waiting: (() => void)[] = [];
  let current: WebSocket | undefined;
  class SwitchedSocket implements WebSocketLike {
    #inner: WebSocket | undefined;
    onopen: unknown = null;
    onmessage: unknown = null;
    onclose: unknown = null;
    onerror: unknown = null;
    binaryType = 'arraybuffer';
    constructor(url: string, protocols?: string | string[]) {
      const start = () => {
        const ws = new WebSocket(url, protocols);
        ws.binaryType = 'arraybuffer';
        ws.onopen = (event) => (this.onopen as Handler)?.(event);
        ws.onmessage = (event) => (this.onmessage as Handler)?.(event);
        ws.onclose = (event) => (this.onclose as Handler)?.(event);
        ws.onerror = (event) => (this.onerror as Handler)?.(event);
        this.#inner = ws;
        current = ws;
      };
      if (online) start();
      else waiting.push(start);
    }
    get readyState() {
      return this.#inner?.readyState ?? 0;
    }
    get protocol() {
      return this.#inner?.protocol ?? '';
    }
    send(data: string | Uint8Array) {
      if (this.#inner === undefined) throw new Error('not connected');
      this.#inner.send(data);
    }
    close(code?: number, reason?: string) {
      this.#inner?.close(code, reason);
    }
  }
  return {
    WebSocket: SwitchedSocket,
    drop: () => {
      online = false;
      current?.terminate();
    },
    restore: () => {
      online = true;
      for (const start of waiting.splice(0)) start();
      waiting = [];
    },
  };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('SDK after an abrupt drop', () => {
  let t: TestNode;
  let client: GigwireClient | undefined;
  let sender: TestSocket | undefined;

  beforeAll(async () => {
    t = await startTestNode({ WS_MAX_MESSAGES_PER_SECOND: '1000', WS_MAX_BURST: '1000' });
  });
  afterAll(async () => {
    client?.close();
    sender?.close();
    await t.stop();
  });

  it('rejoins every room and receives each missed message once, in order', async () => {
    const wsUrl = t.node.uwsUrl;
    if (wsUrl === undefined) throw new Error('the node has no uWebSockets.js listener');
    const api = httpClient(t.node.baseUrl);
    const a = await registerUser(api);
    const b = await registerUser(api);
    await addContact(api, b, a);
    const makeRoom = async () =>
      (await api.post<{ id: string }>('/v1/rooms', { kind: 'group', memberIds: [b.id] }, a.accessToken)).body
        .id;
    // A few missed (within what the node keeps), and more than it keeps.
    const rooms = { few: await makeRoom(), many: await makeRoom() };
    const missed = { few: 5, many: RECENT_PER_ROOM + 20 };

    const network = switchedNetwork();
    client = createClient({
      url: wsUrl,
      WebSocket: network.WebSocket,
      getAccessToken: () => b.accessToken,
    });
    const received = new Map<string, number[]>([
      [rooms.few, []],
      [rooms.many, []],
    ]);
    client.on('room.message', (message) => received.get(message.roomId)?.push(message.seq));
    // What the server pushed, before the SDK's own ordering and dedupe: each seq once per connection.
    const pushed: string[] = [];
    let connection = '';
    client.on('hello', (hello) => {
      connection = hello.connectionId;
    });
    client.on('push', (frame) => {
      if (frame.t === 'room.message') pushed.push(`${connection}/${frame.d.roomId}/${frame.d.seq}`);
    });
    await client.whenConnected();
    for (const roomId of Object.values(rooms)) await client.joinRoom(roomId);

    sender = await openSocket(wsUrl, a.accessToken, 'msgpack');
    // The sender stays in both rooms, so the node keeps its subscriptions (and recent messages).
    for (const roomId of Object.values(rooms)) {
      expect((await sender.request('room.join', { roomId })).t).toBe('ok');
    }
    const send = async (roomId: string, id: string) => {
      const reply = await sender?.request('room.send', { roomId, clientMsgId: id, body: id }, 20_000);
      expect(reply?.t).toBe('ok');
    };
    const sent = { few: 0, many: 0 };
    const sendSome = async (key: keyof typeof rooms, count: number) => {
      for (let i = 0; i < count; i++) {
        sent[key] += 1;
        await send(rooms[key], `${key}-${sent[key]}`);
      }
    };
    // Before the drop: the node's subscription to each room has seen these.
    await sendSome('few', 3);
    await sendSome('many', 3);
    await until(
      () => received.get(rooms.few)?.length === 3 && received.get(rooms.many)?.length === 3,
      'the first messages',
    );

    network.drop();
    await until(() => client?.state !== 'open', 'the SDK to notice the drop');
    await sendSome('few', missed.few);
    await sendSome('many', missed.many);
    // The network comes back while both rooms keep sending.
    network.restore();
    await Promise.all([sendSome('few', 10), sendSome('many', 10)]);
    await client.whenConnected();

    const expected = (count: number) => Array.from({ length: count }, (_, i) => i + 1);
    await until(
      () => received.get(rooms.few)?.length === sent.few && received.get(rooms.many)?.length === sent.many,
      'every message',
    );
    expect(received.get(rooms.few)).toEqual(expected(sent.few));
    expect(received.get(rooms.many)).toEqual(expected(sent.many));
    // Nothing more arrives later (no duplicate was only late).
    await sleep(200);
    expect(received.get(rooms.few)).toEqual(expected(sent.few));
    expect(received.get(rooms.many)).toEqual(expected(sent.many));
    expect(pushed.length).toBe(new Set(pushed).size);
    // And the rejoins pushed every missed one: none had to be fetched through history.
    for (const [key, roomId] of Object.entries(rooms)) {
      const seqs = new Set(
        pushed.filter((p) => p.split('/')[1] === roomId).map((p) => Number(p.split('/')[2])),
      );
      expect([...seqs].sort((x, y) => x - y)).toEqual(expected(sent[key as keyof typeof rooms]));
    }
  }, 60_000);
});
