/**
 * Durability under a crash: 20 clients send into one room continuously; the server is SIGKILLed
 * mid-stream and restarted. Every acknowledged message must be in history with the seq it was
 * acknowledged with, seqs must run 1..N with no gap or duplicate, and messages resent after the
 * restart with the same clientMsgId must end up stored exactly once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  uniqueRedisPrefix,
} from '../support/context.js';
import { addContact, httpClient, type Registered, registerUser } from '../support/http.js';
import { freePort } from '../support/servers.js';
import { type GigwireProcess, spawnGigwire } from '../support/spawn.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

const CLIENTS = 20;

describe('rooms across a server crash', () => {
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
      RATE_LIMIT_PER_MINUTE: '100000',
    });
  });
  afterAll(async () => {
    await server?.stop('SIGKILL').catch(() => undefined);
    await db.drop();
  });

  it('keeps every acknowledged message, in order, without gaps or duplicates, and stores resends once', async () => {
    server = spawnGigwire(env);
    const baseUrl = await server.waitUntilUp(60_000);
    const wsUrl = `ws://127.0.0.1:${env.WS_PORT}/ws`;
    const api = httpClient(baseUrl);
    const users: Registered[] = [];
    for (let i = 0; i < CLIENTS; i++) users.push(await registerUser(api));
    const [owner, ...others] = users as [Registered, ...Registered[]];
    for (const other of others) await addContact(api, other, owner);
    const room = await api.post<{ id: string }>(
      '/v1/rooms',
      { kind: 'group', memberIds: others.map((u) => u.id) },
      owner.accessToken,
    );
    const roomId = room.body.id;

    const acked = new Map<string, number>();
    const unacked = new Set<string>();
    let stop = false;
    const sender = async (user: Registered, index: number, socket: TestSocket) => {
      let n = 0;
      while (!stop) {
        const clientMsgId = `c${index}-${n++}`;
        unacked.add(clientMsgId);
        try {
          const reply = await Promise.race([
            socket.request('room.send', { roomId, clientMsgId, body: `from ${user.username}` }),
            socket.closed.then(() => undefined),
          ]);
          if (reply?.t === 'ok') {
            acked.set(clientMsgId, (reply.d as { seq: number }).seq);
            unacked.delete(clientMsgId);
          } else return;
        } catch {
          return;
        }
      }
    };
    const sockets = await Promise.all(users.map((u) => openSocket(wsUrl, u.accessToken, 'msgpack')));
    const loops = sockets.map((socket, i) => sender(users[i] as Registered, i, socket));
    await sleep(1_500);
    await server.stop('SIGKILL');
    stop = true;
    await Promise.all(loops);
    expect(acked.size).toBeGreaterThan(50);

    server = spawnGigwire(env);
    const restartedUrl = await server.waitUntilUp(60_000);
    // Resends go through the Fastify port: on a freshly restarted node the first uWS sockets have no
    // cork anchor yet and can hit the upstream uWS drop (README), leaving a request unanswered here.
    const resendUrl = `${restartedUrl.replace(/^http/, 'ws')}/ws`;
    // Every client resends what it never saw acknowledged, with the same clientMsgId.
    const resent = [...unacked];
    const byClient = new Map<number, string[]>();
    for (const id of resent) {
      const index = Number(id.slice(1, id.indexOf('-')));
      byClient.set(index, [...(byClient.get(index) ?? []), id]);
    }
    await Promise.all(
      [...byClient].map(async ([index, ids]) => {
        const user = users[index] as Registered;
        const socket = await openSocket(resendUrl, user.accessToken, 'json');
        for (const clientMsgId of ids) {
          // Generous: the restarted process is cold and CI runs other files beside this one.
          const reply = await socket.request(
            'room.send',
            { roomId, clientMsgId, body: `from ${user.username}` },
            30_000,
          );
          expect(reply.t).toBe('ok');
          acked.set(clientMsgId, (reply.d as { seq: number }).seq);
        }
        socket.close();
      }),
    );

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query<{ seq: string; client_msg_id: string }>(
      'select seq, client_msg_id from messages where room_id = $1 order by seq',
      [roomId],
    );
    await client.end();
    const seqs = rows.map((r) => Number(r.seq));
    expect(seqs).toEqual(Array.from({ length: rows.length }, (_, i) => i + 1));
    expect(new Set(rows.map((r) => r.client_msg_id)).size).toBe(rows.length);
    const storedSeq = new Map(rows.map((r) => [r.client_msg_id, Number(r.seq)]));
    for (const [clientMsgId, seq] of acked) expect(storedSeq.get(clientMsgId)).toBe(seq);
    expect(rows.length).toBe(acked.size);
    await server.stop('SIGTERM');
  }, 120_000);
});
