/**
 * Replies and join backlogs of the largest legal messages. A `room.history` page of 100 of them
 * (what the SDK asks to fill a gap) encoded to 2.4–3.7 MB in one frame, and a join's 200-row backlog
 * page went out in one synchronous burst of up to 7 MB: both far past `limits.maxBufferedBytes`
 * (1 MiB), so on a real network, where the kernel takes much less than that at once, even a fast
 * reader was closed 1013 — and every reconnect asked for the same page again. Any member could
 * post a few large messages and keep the room's other members reconnecting.
 *
 * Now a history page is cut at a byte budget (newest first; the client pages on from the smallest
 * seq it got) and a backlog is written in bursts, each after the socket drained. Loopback takes
 * whole megabytes at once, so the reader here stops reading for a while during its join, as a
 * reader on a real network is slower than the server: it must still get every message once, in
 * order, and not be closed. Frame sizes are the bytes received.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_CHARS, MAX_META_CHARS } from '../../protocol/src/frames.js';
import {
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { addContact, httpClient, registerUser } from '../support/http.js';
import { untilDefined } from '../support/poll.js';
import { freePort } from '../support/servers.js';
import { type GigwireProcess, spawnGigwire } from '../support/spawn.js';
import { openSocket, type TestSocket, type WireFrame } from '../support/ws-client.js';

const MESSAGES = 300;
/** The largest legal message as JSON sees it: every body char escaped (\u0001), meta at its limit. */
const body = '\u0001'.repeat(MAX_BODY_CHARS);
const meta = { x: '中'.repeat(MAX_META_CHARS - '{"x":""}'.length) };

/** A socket that records the byte size of every frame it receives. */
async function measuredSocket(url: string, token: string) {
  const socket = await openSocket(url, token, 'json');
  const sizes: number[] = [];
  socket.ws.on('message', (data: Buffer) => sizes.push(data.length));
  const hello = await socket.next((f) => f.t === 'hello');
  const limits = (hello.d as { limits: { maxBufferedBytes: number } }).limits;
  return { socket, sizes, maxBufferedBytes: limits.maxBufferedBytes };
}

const roomSeqs = (socket: TestSocket, roomId: string) =>
  socket.frames
    .filter((f): f is WireFrame & { d: { roomId: string; seq: number } } => f.t === 'room.message')
    .filter((f) => f.d.roomId === roomId)
    .map((f) => f.d.seq);

describe('ws review 16: history pages and join backlogs of the largest messages', () => {
  let db: TestDatabase;
  let server: GigwireProcess | undefined;
  const env: Record<string, string> = {};

  beforeAll(async () => {
    db = await createMigratedDatabase();
    Object.assign(env, {
      DATABASE_URL: db.url,
      REDIS_URL: sharedRedisUrl(),
      REDIS_PREFIX: uniqueRedisPrefix(),
      PORT: String(await freePort()),
      WS_PORT: String(await freePort()),
      WS_MAX_MESSAGES_PER_SECOND: '1000',
      WS_MAX_BURST: '1000',
    });
  });
  afterAll(async () => {
    await server?.stop('SIGKILL').catch(() => undefined);
    await db.drop();
  });

  it('pages history and replays a join backlog of max-size messages: each once, in order, no frame near the bound', async () => {
    server = spawnGigwire(env);
    const baseUrl = await server.waitUntilUp(60_000);
    const api = httpClient(baseUrl);
    const [a, b] = [await registerUser(api), await registerUser(api)];
    await addContact(api, b, a);
    const room = await api.post<{ id: string }>(
      '/v1/rooms',
      { kind: 'group', memberIds: [b.id] },
      a.accessToken,
    );
    const roomId = room.body.id;
    const uwsUrl = `ws://127.0.0.1:${env.WS_PORT}/ws`;
    const httpWsUrl = `${baseUrl.replace(/^http/, 'ws')}/ws`;

    const sender = await openSocket(uwsUrl, a.accessToken, 'msgpack');
    await sender.next((f) => f.t === 'hello');
    const send = async (i: number) => {
      const reply = await sender.request(
        'room.send',
        { roomId, clientMsgId: `big-${i}`, body, meta },
        20_000,
      );
      expect(reply.t).toBe('ok');
    };
    for (let i = 1; i <= MESSAGES; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, k) => send(i + k)));
    }

    let posted = MESSAGES;
    for (const [transport, url] of [
      ['uws', uwsUrl],
      ['fastify-ws', httpWsUrl],
    ] as const) {
      const reader = await measuredSocket(url, b.accessToken);
      const bound = reader.maxBufferedBytes / 4;

      // History, paged back as PROTOCOL.md says: from the smallest seq received, until seq 1.
      const paged: number[] = [];
      const pageSizes: number[] = [];
      let beforeSeq: number | undefined;
      for (let pages = 0; pages < 1_000; pages++) {
        const reply = await reader.socket.request('room.history', {
          roomId,
          limit: 100,
          ...(beforeSeq === undefined ? {} : { beforeSeq }),
        });
        expect(reply.t, `${transport}: ${JSON.stringify(reply.d).slice(0, 200)}`).toBe('ok');
        const seqs = (reply.d as { messages: { seq: number }[] }).messages.map((m) => m.seq);
        pageSizes.push(seqs.length);
        if (seqs.length === 0) break;
        paged.push(...seqs);
        beforeSeq = Math.min(...seqs);
        if (beforeSeq === 1) break;
      }
      expect(paged, transport).toEqual(Array.from({ length: posted }, (_, i) => posted - i));
      // Pages were cut below `limit` (otherwise they would have been megabytes).
      expect(Math.max(...pageSizes), transport).toBeLessThan(100);
      expect(Math.max(...reader.sizes), transport).toBeLessThanOrEqual(bound);

      // A join replaying the whole room while the reader reads nothing for a while (as a real
      // network's reader is slower than the server), with live messages sent meanwhile.
      const sizesBefore = reader.sizes.length;
      const tcp = (reader.socket.ws as unknown as { _socket: { pause: () => void; resume: () => void } })
        ._socket;
      tcp.pause();
      reader.socket.send({ t: 'room.join', id: 900_001, d: { roomId, sinceSeq: 0 } });
      await sleep(500);
      for (let i = 1; i <= 5; i++) await send(10_000 * (transport === 'uws' ? 1 : 2) + i);
      posted += 5;
      await sleep(1_000);
      tcp.resume();
      // Closed 1013 (the bug) fails at once instead of waiting for an answer that never comes.
      const joined = await Promise.race([
        reader.socket.next((f) => f.id === 900_001, 60_000),
        reader.socket.closed.then((closed) => {
          throw new Error(`${transport}: closed ${closed.code} ${closed.reason} during the join`);
        }),
      ]);
      expect(joined, transport).toMatchObject({ t: 'ok', d: { lastSeq: expect.any(Number) } });
      await untilDefined(
        async () => (roomSeqs(reader.socket, roomId).length >= posted ? true : undefined),
        `${transport}: all ${posted} messages`,
        60_000,
      );
      expect(roomSeqs(reader.socket, roomId), transport).toEqual(
        Array.from({ length: posted }, (_, i) => i + 1),
      );
      // Still open: a live message arrives, once.
      await send(20_000 * (transport === 'uws' ? 1 : 2));
      posted += 1;
      await untilDefined(
        async () => (roomSeqs(reader.socket, roomId).length >= posted ? true : undefined),
        `${transport}: the live message`,
      );
      expect(roomSeqs(reader.socket, roomId), transport).toEqual(
        Array.from({ length: posted }, (_, i) => i + 1),
      );
      expect(Math.max(...reader.sizes.slice(sizesBefore)), transport).toBeLessThanOrEqual(bound);
      reader.socket.close();
    }
    sender.close();
  }, 180_000);
});
