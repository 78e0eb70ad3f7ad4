/**
 * A slow consumer is closed 1013 (PROTOCOL.md "Close codes"), and the close frame reaches a client
 * that stalled and then reads again (review 21). TCP delivers in order, so the frame waits behind
 * what was queued before it: a reader that never reads again cannot see it (it finds the connection
 * dropped, 1006, after the closing grace); one that resumes within the grace must get 1013, not 1006.
 * Two ways it used to get 1006:
 * - on WS_PORT, a busy room's frames reach topic subscribers without our per-send check; the sweep
 *   looks at each socket about once a second, and by then uWS had passed its own limit and dropped
 *   the socket without a close frame. The hub now checks a room's subscribers every quarter of
 *   WS_MAX_BUFFERED_BYTES published.
 * - on /ws of PORT, a closed socket was dropped 2 s after our close; a slow consumer now has the
 *   grace uWS gives (16 s at the default WS_IDLE_TIMEOUT_S).
 * Real node over loopback; the client stops reading its TCP socket, then resumes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RoomId, UserId } from '../../protocol/src/ids.js';
import { NOTIFICATIONS_TOPIC } from '../../src/gateway/index.js';
import type { Bus } from '../../src/platform/bus/bus.js';
import { createRedisBus } from '../../src/platform/bus/redis-bus.js';
import { roomTopic } from '../../src/platform/bus/topics.js';
import { createRedisClient } from '../../src/platform/redis.js';
import { sharedRedisUrl, startTestNode, type TestNode, uniqueRedisPrefix } from '../support/context.js';
import { createGroupRoom, httpClient, registerUser } from '../support/http.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

describe('a stalled reader closed as a slow consumer', () => {
  let test: TestNode;
  let bus: Bus;
  let disconnect: () => void;
  const prefix = uniqueRedisPrefix();

  beforeAll(async () => {
    test = await startTestNode({ REDIS_PREFIX: prefix, WS_MAX_BUFFERED_BYTES: '65536' });
    const publisher = createRedisClient({ endpoint: sharedRedisUrl(), name: 'test-pub', log: test.logs.log });
    const subscriber = createRedisClient({
      endpoint: sharedRedisUrl(),
      name: 'test-sub',
      log: test.logs.log,
    });
    bus = createRedisBus({ publisher, subscriber, prefix, log: test.logs.log });
    disconnect = () => {
      publisher.disconnect();
      subscriber.disconnect();
    };
  });
  afterAll(async () => {
    await bus.close();
    disconnect();
    await test.stop();
  });

  const tcp = (socket: TestSocket) =>
    (socket.ws as unknown as { _socket: { pause: () => void; resume: () => void } })._socket;
  const body = 'x'.repeat(30_000);
  const slowConsumerClosed = (from: number) =>
    test.logs
      .lines()
      .slice(from)
      .some((line) => line.msg === 'slow consumer closed');

  it('gets 1013 from a busy room on WS_PORT when it reads again a second later', async ({ skip }) => {
    if (test.node.uwsUrl === undefined) return skip('no uWS build loads on this Node');
    const api = httpClient(test.node.baseUrl);
    const [sender, reader] = [await registerUser(api), await registerUser(api)];
    const roomId = RoomId.parse(await createGroupRoom(api, sender, [reader]));
    const socket = await openSocket(test.node.uwsUrl, reader.accessToken, 'msgpack');
    await socket.next((f) => f.t === 'hello');
    expect((await socket.request('room.join', { roomId })).t).toBe('ok');
    // The room's frames as its owner publishes them to the nodes (bodies larger than a client may
    // send, to fill the buffers fast); consecutive seqs, so the reader is fed by the topic.
    const message = (seq: number) => ({
      frame: {
        t: 'room.message' as const,
        d: {
          roomId,
          seq,
          senderId: sender.id,
          clientMsgId: `m${seq}`,
          body,
          sentAt: new Date().toISOString(),
        },
      },
    });
    await bus.publish(roomTopic(roomId), message(1) as never);
    await socket.next((f) => f.t === 'room.message');
    tcp(socket).pause();
    // 60 MB in a fraction of a second: far past both bounds before the sweep comes by.
    for (let seq = 2; seq < 2_002; seq += 20) {
      await Promise.all(
        Array.from({ length: 20 }, (_, k) => bus.publish(roomTopic(roomId), message(seq + k) as never)),
      );
    }
    await sleep(1_000);
    tcp(socket).resume();
    expect((await socket.closed).code).toBe(1013);
  }, 9_000);

  it('gets 1013 on /ws of PORT when it reads again 3 s later', async () => {
    const api = httpClient(test.node.baseUrl);
    const user = await registerUser(api);
    const socket = await openSocket(
      `${test.node.baseUrl.replace(/^http/, 'ws')}/ws`,
      user.accessToken,
      'msgpack',
    );
    await socket.next((f) => f.t === 'hello');
    tcp(socket).pause();
    const from = test.logs.lines().length;
    for (let n = 0; !slowConsumerClosed(from) && n < 2_000; n++) {
      await bus.publish(NOTIFICATIONS_TOPIC, {
        userId: UserId.parse(user.id),
        notification: {
          id: `n${n}`,
          kind: 'test.flood',
          title: 'flood',
          body,
          createdAt: new Date().toISOString(),
        },
      });
    }
    expect(slowConsumerClosed(from)).toBe(true);
    await sleep(3_000);
    tcp(socket).resume();
    expect((await socket.closed).code).toBe(1013);
  }, 9_000);
});
