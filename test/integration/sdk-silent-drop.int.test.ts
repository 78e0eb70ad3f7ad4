/**
 * Silent drops (issue 14): member B reaches the node through a TCP proxy that stops forwarding
 * without closing anything. B's SDK notices through its heartbeat (hello.heartbeatMs, half of
 * WS_IDLE_TIMEOUT_S), reconnects through its other URL (direct) and fills the gap: it ends with
 * every message of the room once, in seq order. The messages B sent into the dead path are resent
 * with their clientMsgId after the reconnect and stored once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  createClient,
  type DisconnectedEvent,
  type GigwireClient,
  type SentMessage,
} from '../../protocol/src/client/index.js';
import type { RoomMessage } from '../../protocol/src/frames.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { createGroupRoom, httpClient, registerUser } from '../support/http.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

/** Messages A sends while B's path is dead. */
const DURING = 40;
const B_SENDS = 3;

describe('SDK over a silently dropped path', () => {
  let testNode: TestNode;
  let proxy: TcpProxy;
  const clients: GigwireClient[] = [];

  beforeAll(async () => {
    // The smallest idle timeout: the server announces heartbeatMs = 4 000.
    testNode = await startTestNode({
      WS_IDLE_TIMEOUT_S: '8',
      WS_MAX_MESSAGES_PER_SECOND: '1000',
      WS_MAX_BURST: '1000',
    });
    const direct = new URL(testNode.node.uwsUrl ?? '');
    proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port) });
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await proxy?.close();
    await testNode?.stop();
  });

  async function until(what: string, done: () => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
      await sleep(25);
    }
  }

  it('notices through heartbeats, reconnects by the other path, fills the gap and resends its own sends once', async () => {
    const api = httpClient(testNode.node.baseUrl);
    const [a, b] = [await registerUser(api), await registerUser(api)];
    const roomId = await createGroupRoom(api, a, [b]);

    const directUrl = testNode.node.uwsUrl ?? '';
    const proxyUrl = `ws://127.0.0.1:${proxy.port}/ws`;
    const bUrls: string[] = [];
    // The `ws` WebSocket, noting which path each attempt of B takes.
    class RecordingWebSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        bUrls.push(url);
        super(url, protocols);
      }
    }
    const clientA = createClient({ url: directUrl, WebSocket, getAccessToken: () => a.accessToken });
    const clientB = createClient({
      url: [proxyUrl, directUrl],
      WebSocket: RecordingWebSocket,
      getAccessToken: () => b.accessToken,
      reconnect: { initialDelayMs: 100 },
    });
    clients.push(clientA, clientB);
    const seenByA: RoomMessage[] = [];
    const seenByB: RoomMessage[] = [];
    const bDrops: DisconnectedEvent[] = [];
    clientA.on('room.message', (message) => seenByA.push(message));
    clientB.on('room.message', (message) => seenByB.push(message));
    clientB.on('disconnected', (event) => bDrops.push(event));

    const helloB = await clientB.whenConnected();
    expect(helloB.heartbeatMs).toBe(4_000);
    await clientA.joinRoom(roomId);
    await clientB.joinRoom(roomId);
    for (let i = 0; i < 5; i += 1) await clientA.sendMessage(roomId, `before ${i}`);
    await until('the first messages at B', () => seenByB.length === 5);

    proxy.blackhole();
    const bSends: Promise<SentMessage>[] = [];
    for (let i = 0; i < B_SENDS; i += 1) bSends.push(clientB.sendMessage(roomId, `from b ${i}`));
    for (let i = 0; i < DURING; i += 1) await clientA.sendMessage(roomId, `during ${i}`);

    // B's sends resolve only once they went through the new path.
    const bAcks = await Promise.all(bSends);
    const total = 5 + DURING + B_SENDS;
    await until('every message at B', () => seenByB.length >= total);
    await until('every message at A', () => seenByA.length >= total);

    expect(bDrops).toHaveLength(1);
    expect(bDrops[0]).toMatchObject({ code: 1006, action: 'reconnect' });
    expect(bDrops[0]?.reason).toMatch(/ping/);
    expect(bUrls).toEqual([proxyUrl, directUrl]);

    const seqs = Array.from({ length: total }, (_, i) => i + 1);
    expect(seenByB.map((m) => m.seq)).toEqual(seqs);
    expect(seenByA.map((m) => m.seq)).toEqual(seqs);
    // Every body once: B's three sends were stored once each, with the seq their ok named.
    const bodies = seenByB.map((m) => m.body);
    expect(new Set(bodies).size).toBe(total);
    for (let i = 0; i < DURING; i += 1) expect(bodies).toContain(`during ${i}`);
    for (const [i, ack] of bAcks.entries()) {
      const stored = seenByB.filter((m) => m.body === `from b ${i}`);
      expect(stored).toHaveLength(1);
      expect(stored[0]).toMatchObject({ seq: ack.seq, clientMsgId: ack.clientMsgId, senderId: b.id });
    }
    // And history (the database) agrees.
    const history = await clientA.request('room.history', { roomId, limit: 100 });
    expect(history.messages.map((m) => m.seq).sort((x, y) => x - y)).toEqual(seqs);
  }, 30_000);
});
