/**
 * The SDK resumes rooms by itself: a member whose connection died misses 100 messages and, after
 * reconnecting on its own, receives exactly those 100 in order, then live ones, each once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createClient, type GigwireClient } from '../../protocol/src/client/index.js';
import {
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { addContact, httpClient, registerUser } from '../support/http.js';
import { freePort } from '../support/servers.js';
import { type GigwireProcess, spawnGigwire } from '../support/spawn.js';
import { openSocket } from '../support/ws-client.js';

describe('SDK room resume', () => {
  let db: TestDatabase;
  let server: GigwireProcess | undefined;
  let client: GigwireClient | undefined;
  const env: Record<string, string> = {};

  beforeAll(async () => {
    db = await createMigratedDatabase();
    Object.assign(env, {
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: uniqueRedisPrefix(),
      NODE_ID: 'sdk-rooms-node',
      PORT: String(await freePort()),
      WS_PORT: String(await freePort()),
      WS_MAX_MESSAGES_PER_SECOND: '1000',
      WS_MAX_BURST: '1000',
    });
  });
  afterAll(async () => {
    client?.close();
    await server?.stop('SIGKILL').catch(() => undefined);
    await db.drop();
  });

  it('delivers exactly the missed messages in order after the SDK reconnects, then live ones', async () => {
    server = spawnGigwire(env);
    const baseUrl = await server.waitUntilUp(60_000);
    const wsUrl = `ws://127.0.0.1:${env.WS_PORT}/ws`;
    const api = httpClient(baseUrl);
    const [a, b] = [await registerUser(api), await registerUser(api)];
    await addContact(api, b, a);
    const room = await api.post<{ id: string }>(
      '/v1/rooms',
      { kind: 'group', memberIds: [b.id] },
      a.accessToken,
    );
    const roomId = room.body.id;

    client = createClient({
      url: wsUrl,
      WebSocket,
      getAccessToken: () => b.accessToken,
      // Stay away long enough for the sender to send everything while we are gone.
      reconnect: { initialDelayMs: 2_500, maxDelayMs: 3_000 },
    });
    const received: number[] = [];
    client.on('room.message', (message) => received.push(message.seq));
    await client.whenConnected();
    expect(await client.joinRoom(roomId)).toEqual({ lastSeq: 0 });

    let sender = await openSocket(wsUrl, a.accessToken, 'msgpack');
    await sender.request('room.send', { roomId, clientMsgId: 'first', body: 'before the crash' });
    for (let i = 0; i < 100 && received.length < 1; i++) await sleep(20);
    expect(received).toEqual([1]);

    await server.stop('SIGKILL');
    server = spawnGigwire(env);
    await server.waitUntilUp(60_000);
    sender = await openSocket(wsUrl, a.accessToken, 'msgpack');
    for (let i = 0; i < 100; i++) {
      const reply = await sender.request(
        'room.send',
        { roomId, clientMsgId: `missed-${i}`, body: `missed ${i}` },
        20_000,
      );
      expect(reply.t).toBe('ok');
    }
    await client.whenConnected();
    for (let i = 0; i < 300 && received.length < 101; i++) await sleep(20);
    await sender.request('room.send', { roomId, clientMsgId: 'live', body: 'after the resume' }, 20_000);
    for (let i = 0; i < 300 && received.length < 102; i++) await sleep(20);
    expect(received).toEqual(Array.from({ length: 102 }, (_, i) => i + 1));
    sender.close();
  }, 120_000);
});
