/**
 * Rooms across two nodes sharing Redis and Postgres: a room's messages reach members on the
 * sender's node (the bus delivers there without the Redis round trip) and members on the other
 * node (through Redis), each exactly once and in seq order.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { runShutdown } from '../../src/platform/shutdown.js';
import {
  captureLogs,
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  testConfig,
  uniqueRedisPrefix,
} from '../support/context.js';
import { addContact, httpClient, registerUser } from '../support/http.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

describe('rooms across nodes', () => {
  let db: TestDatabase;
  const nodes: RunningNode[] = [];
  const sockets: TestSocket[] = [];
  const logs = captureLogs();

  beforeAll(async () => {
    db = await createMigratedDatabase();
    const prefix = uniqueRedisPrefix();
    for (const nodeId of ['node-a', 'node-b']) {
      nodes.push(
        await startNode(
          testConfig({
            DATABASE_URL: db.url,
            REDIS_URL: sharedRedisUrl(),
            REDIS_PREFIX: prefix,
            NODE_ID: nodeId,
            WS_MAX_MESSAGES_PER_SECOND: '5000',
            WS_MAX_BURST: '5000',
          }),
          logs.log,
          { pid: process.pid },
        ),
      );
    }
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    for (const node of nodes) await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 10_000 });
    await db.drop();
  });

  it('delivers each message once, in seq order, to members on both nodes', async () => {
    const [nodeA, nodeB] = nodes as [RunningNode, RunningNode];
    const api = httpClient(nodeA.baseUrl);
    const [sender, local, remote] = [
      await registerUser(api),
      await registerUser(api),
      await registerUser(api),
    ];
    for (const member of [local, remote]) await addContact(api, member, sender);
    const created = await api.post<{ id: string }>(
      '/v1/rooms',
      { kind: 'group', memberIds: [local.id, remote.id] },
      sender.accessToken,
    );
    const roomId = created.body.id;
    const open = async (url: string | undefined, token: string) => {
      const socket = await openSocket(url ?? '', token, 'msgpack');
      sockets.push(socket);
      await socket.next((f) => f.t === 'hello');
      expect(await socket.request('room.join', { roomId })).toMatchObject({ t: 'ok' });
      return socket;
    };
    const senderSocket = await open(nodeA.uwsUrl, sender.accessToken);
    const localSocket = await open(nodeA.uwsUrl, local.accessToken);
    const remoteSocket = await open(nodeB.uwsUrl, remote.accessToken);

    const acks = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        senderSocket.request('room.send', { roomId, clientMsgId: `c${i}`, body: `m${i}` }, 15_000),
      ),
    );
    expect(acks.every((ack) => ack.t === 'ok')).toBe(true);
    const seqsOf = (socket: TestSocket) =>
      socket.frames.filter((f) => f.t === 'room.message').map((f) => (f.d as { seq: number }).seq);
    const expected = Array.from({ length: 200 }, (_, i) => i + 1);
    for (let waited = 0; waited < 5_000 && seqsOf(remoteSocket).length < 200; waited += 20) await sleep(20);
    await sleep(200); // anything delivered twice would have arrived by now
    for (const socket of [senderSocket, localSocket, remoteSocket]) expect(seqsOf(socket)).toEqual(expected);
  }, 60_000);
});
