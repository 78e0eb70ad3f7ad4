/**
 * Review 20, the SDK on a bad network: a gap in a room whose history read is not answered in time
 * is filled all the same. A push of the room is lost on the way to member B (as when a node's bus
 * subscriber blinked); the next one shows the jump and the SDK asks `room.history`, whose answer
 * is held past B's request timeout (a slow path or a busy node: TIMEOUT, "try again", the socket
 * stays up). Then the room goes quiet. Before the fix the SDK reported the TIMEOUT and stopped
 * filling: the message after the hole, already received, stayed hidden from the app with the
 * lost one, until the room spoke again or the client reconnected. Now the read is tried again and
 * the app gets every seq once, in order. Real node (uWebSockets.js), PostgreSQL and Redis; the
 * client's WebSocket is `ws` with a hand on the incoming frames (JSON encoding, to read them).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type GigwireClient, type GigwireError } from '../../protocol/src/client/index.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { type HookedFrame, hookedWebSocket } from '../support/hooked-websocket.js';
import { createGroupRoom, httpClient, registerUser } from '../support/http.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

type Frame = HookedFrame;

/**
 * `ws` whose incoming text frames pass `inbound` first: it returns false to lose a frame, or a
 * delay in ms to hold it (later frames still pass). Outgoing frames are shown to `outbound`.
 */
const handledNetwork = (inbound: (frame: Frame) => boolean | number, outbound: (frame: Frame) => void) =>
  hookedWebSocket({ inbound, outbound });

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (check()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('SDK gap fill on a slow path (review 20)', () => {
  let t: TestNode;
  let client: GigwireClient | undefined;
  let sender: TestSocket | undefined;

  beforeAll(async () => {
    t = await startTestNode({});
  });
  afterAll(async () => {
    client?.close();
    sender?.close();
    await t.stop();
  });

  it('asks history again after a read that timed out, and shows the held messages', async () => {
    const wsUrl = t.node.uwsUrl;
    if (wsUrl === undefined) throw new Error('the node has no uWebSockets.js listener');
    const api = httpClient(t.node.baseUrl);
    const a = await registerUser(api);
    const b = await registerUser(api);
    const roomId = await createGroupRoom(api, a, [b]);

    const REQUEST_TIMEOUT_MS = 2_500;
    const historyIds = new Set<unknown>();
    let historyReplies = 0;
    const HandledSocket = handledNetwork(
      (frame) => {
        // Seq 2 is lost on the way (the server counts it as sent: no sweep pushes it again).
        if (frame.t === 'room.message' && frame.d?.seq === 2) return false;
        if ((frame.t === 'ok' || frame.t === 'error') && historyIds.has(frame.id)) {
          historyReplies += 1;
          // The first history answer comes late: after the request timed out.
          if (historyReplies === 1) return REQUEST_TIMEOUT_MS * 2;
        }
        return true;
      },
      (frame) => {
        if (frame.t === 'room.history') historyIds.add(frame.id);
      },
    );
    client = createClient({
      url: wsUrl,
      WebSocket: HandledSocket,
      encoding: 'json',
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      getAccessToken: () => b.accessToken,
    });
    const received: number[] = [];
    const errors: GigwireError[] = [];
    client.on('room.message', (message) => received.push(message.seq));
    client.on('error', (error) => errors.push(error));
    await client.whenConnected();
    expect(await client.joinRoom(roomId)).toEqual({ lastSeq: 0 });

    sender = await openSocket(wsUrl, a.accessToken, 'json');
    for (const n of [1, 2, 3]) {
      const reply = await sender.request('room.send', { roomId, clientMsgId: `m${n}`, body: `m${n}` });
      expect(reply.t).toBe('ok');
    }
    // The room stays quiet from here on.
    await until(() => received.length === 3, 'every message, the one after the hole included');
    expect(received).toEqual([1, 2, 3]);
    expect(historyIds.size).toBeGreaterThanOrEqual(2);
    // Nothing arrives twice later, and the connection never dropped for it.
    await sleep(100);
    expect(received).toEqual([1, 2, 3]);
    expect(errors.filter((error) => error.code !== 'TIMEOUT')).toEqual([]);
    expect(client.state).toBe('open');
  }, 30_000);
});
