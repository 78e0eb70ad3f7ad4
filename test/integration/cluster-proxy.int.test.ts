/**
 * The compose topology for real (test/support/cluster.ts): nginx with deploy/nginx.conf in front of
 * three gateway processes, an api and a worker process. Everything the clients do goes through the
 * proxy's one origin: register over REST, create a room, SDK clients join over /ws and send; every
 * member gets each message once, in seq order, without a gap, and REST history agrees. Then one
 * gateway process is SIGKILLed: its clients reconnect through the proxy to the others and fill the
 * gap from history, while the rest keep sending. Whatever node owns the room, an acknowledged
 * message is in every member's sequence exactly once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createClient, createRestClient, type GigwireClient } from '../../protocol/src/client/index.js';
import {
  type Cluster,
  type ClusterProcess,
  metricSum,
  sendUntilAcked,
  startCluster,
  until,
} from '../support/cluster.js';
import {
  createMigratedDatabase,
  sharedRedisUrl,
  type TestDatabase,
  tempDir,
  uniqueRedisPrefix,
} from '../support/context.js';
import { addContact, httpClient, type Registered, registerUser } from '../support/http.js';

interface Member {
  readonly user: Registered;
  readonly client: GigwireClient;
  readonly seqs: number[];
  readonly bodies: Map<number, string>;
  disconnects: number;
}

/** Open WebSockets of one gateway process. */
const openSockets = (gateway: ClusterProcess) => metricSum(gateway, 'gigwire_ws_connections');

describe('the compose topology behind nginx, through its one origin', () => {
  let db: TestDatabase;
  let cluster: Cluster | undefined;
  const members: Member[] = [];
  let roomId = '';

  beforeAll(async () => {
    db = await createMigratedDatabase();
    cluster = await startCluster({
      databaseUrl: db.url,
      redisUrl: sharedRedisUrl(),
      redisPrefix: uniqueRedisPrefix(),
      gateways: 3,
      dir: tempDir('nginx'),
      env: {
        // A dead gateway's leases (presence, and room ownership where it applies) expire quickly.
        PRESENCE_LEASE_MS: '2000',
        WS_MAX_MESSAGES_PER_SECOND: '5000',
        WS_MAX_BURST: '5000',
        RATE_LIMIT_PER_MINUTE: '100000',
      },
    });
  }, 120_000);
  afterAll(async () => {
    for (const member of members) member.client.close();
    await cluster?.stop(5_000);
    await db?.drop();
  });

  const send = async (member: Member, clientMsgId: string): Promise<number> =>
    (await sendUntilAcked(member.client, roomId, clientMsgId, 25_000)).seq;

  const expectEveryoneHas = async (count: number) => {
    await until(() => members.every((m) => m.seqs.length >= count), 20_000);
    await sleep(300); // anything delivered twice would have arrived by now
    const expected = Array.from({ length: count }, (_, i) => i + 1);
    for (const member of members) expect(member.seqs).toEqual(expected);
  };

  it('REST and SDK clients on the one origin: every member gets each message once, in order', async () => {
    const c = cluster as Cluster;
    const api = httpClient(c.origin);
    const owner = await registerUser(api);
    const others: Registered[] = [];
    for (let i = 0; i < 5; i++) {
      const user = await registerUser(api);
      await addContact(api, user, owner);
      others.push(user);
    }
    const created = await api.post<{ id: string }>(
      '/v1/rooms',
      { kind: 'group', memberIds: others.map((u) => u.id) },
      owner.accessToken,
    );
    expect(created.status).toBe(201);
    roomId = created.body.id;
    // The SDK's REST half on the same origin.
    const rest = createRestClient({ baseUrl: c.origin, accessToken: () => owner.accessToken });
    expect((await rest.wallet()).available).toBe(0);

    for (const user of [owner, ...others]) {
      const member: Member = {
        user,
        client: createClient({
          url: c.wsUrl,
          WebSocket,
          getAccessToken: () => user.accessToken,
          reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 },
        }),
        seqs: [],
        bodies: new Map(),
        disconnects: 0,
      };
      member.client.on('room.message', (message) => {
        member.seqs.push(message.seq);
        member.bodies.set(message.seq, message.body);
      });
      member.client.on('disconnected', () => {
        member.disconnects += 1;
      });
      await member.client.whenConnected();
      expect(await member.client.joinRoom(roomId)).toEqual({ lastSeq: 0 });
      members.push(member);
    }
    // nginx spreads the six sockets over the three gateway processes.
    const perGateway = await Promise.all(c.gateways.map(openSockets));
    expect(perGateway.reduce((a, b) => a + b, 0)).toBe(6);
    expect(perGateway.every((n) => n > 0)).toBe(true);

    // 300 messages, 50 from each member, all in flight at once.
    const acks = await Promise.all(
      members.flatMap((member, m) =>
        Array.from({ length: 50 }, (_, i) => send(member, `m${m}-${i}`).then((seq) => ({ m, i, seq }))),
      ),
    );
    expect(new Set(acks.map((a) => a.seq)).size).toBe(300);
    await expectEveryoneHas(300);
    for (const { m, i, seq } of acks) expect(members[0]?.bodies.get(seq)).toBe(`m${m}-${i}`);

    // History over REST through the proxy: the same 300, newest first, page by page.
    const history: number[] = [];
    for (let before: number | undefined; history.length < 300; ) {
      const page = await api.get<{ data: { seq: number }[] }>(
        `/v1/rooms/${roomId}/messages?limit=100${before === undefined ? '' : `&beforeSeq=${before}`}`,
        others[2]?.accessToken,
      );
      expect(page.status).toBe(200);
      if (page.body.data.length === 0) break;
      history.push(...page.body.data.map((row) => row.seq));
      before = page.body.data.at(-1)?.seq;
    }
    expect(history).toEqual(Array.from({ length: 300 }, (_, i) => 300 - i));
  }, 60_000);

  it('a gateway process killed: its clients reconnect through the proxy and fill the gap', async () => {
    const c = cluster as Cluster;
    const perGateway = await Promise.all(c.gateways.map(openSockets));
    const victim = c.gateways[perGateway.indexOf(Math.max(...perGateway))] as ClusterProcess;
    const before = members.map((m) => m.disconnects);

    await victim.process().stop('SIGKILL');
    // The others keep sending while the victim's clients are away or coming back.
    const acks = await Promise.all(
      members.flatMap((member, m) => Array.from({ length: 20 }, (_, i) => send(member, `k${m}-${i}`))),
    );
    expect(new Set(acks).size).toBe(120);
    await expectEveryoneHas(420);

    const dropped = members.filter((m, i) => m.disconnects > (before[i] ?? 0));
    expect(dropped.length).toBe(Math.max(...perGateway));
    // Reconnected through the proxy: the survivors now hold all six sockets.
    const survivors = c.gateways.filter((g) => g !== victim);
    await until(() => members.every((m) => m.client.state === 'open'), 10_000);
    expect((await Promise.all(survivors.map(openSockets))).reduce((a, b) => a + b, 0)).toBe(6);
  }, 60_000);
});
