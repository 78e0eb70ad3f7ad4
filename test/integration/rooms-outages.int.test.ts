/**
 * Redis and PostgreSQL restarted under load (issue 14): two gigwire nodes in this process share a
 * redis-server and a PostgreSQL of this file's own; members of one room are on both nodes (so one
 * side's sends are forwarded to the room's owner over the bus), and several SDK clients send without
 * pause, each send retried with the same clientMsgId until acknowledged.
 * (a) redis-server SIGKILLed and started again on the same port (nothing persisted: leases, bus
 *     subscriptions and counters are all gone when it returns);
 * (b) PostgreSQL stopped (fast shutdown) and started again on the same port and data directory.
 * For both: every acknowledged message is stored exactly once with the seq its ack named (no false
 * ack), every failed attempt carried a retryable code, every member ends with the whole sequence
 * once and in order (the SDK fills gaps from history), and afterwards sends from both nodes are
 * acknowledged again without restarting either node.
 * (c) Frozen instead of dead (SIGSTOP, then SIGCONT): Redis for twice the presence lease (bus
 *     publishes, forwarded requests and lease renewals wait in their sockets and time out; on waking
 *     every lease looks lapsed to every node at once), and every process of PostgreSQL for 4 s
 *     (statements hang instead of failing): the same guarantees hold.
 * (d) Regression: a pooled connection checked out across a PostgreSQL stop (a transaction awaiting
 *     something else, as the outbox relay's awaits Redis) fails its next query; it used to emit an
 *     unhandled 'error' that took the whole process down (main.ts exits on uncaughtException).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createClient, type GigwireClient, isGigwireError } from '../../protocol/src/client/index.js';
import { type RunningNode, startNode } from '../../src/bin/start-node.js';
import { createDb } from '../../src/db/create-db.js';
import { runShutdown } from '../../src/platform/shutdown.js';
import { until } from '../support/cluster.js';
import { captureLogs, tempDir, testConfig, uniqueRedisPrefix } from '../support/context.js';
import { createGroupRoom, httpClient, type Registered, registerUser } from '../support/http.js';
import {
  type PostgresServer,
  type RedisServer,
  startPostgresServer,
  startRedisServer,
} from '../support/servers.js';

const LEASE_MS = 2_000;
/** What a send may fail with while a dependency is away: each says "not stored, or maybe; resend". */
const RETRYABLE = new Set(['UNAVAILABLE', 'TIMEOUT', 'DISCONNECTED']);

interface Member {
  readonly index: number;
  readonly node: 'node-a' | 'node-b';
  readonly client: GigwireClient;
  readonly seqs: number[];
}
interface Ack {
  readonly label: string;
  readonly member: number;
  readonly clientMsgId: string;
  readonly seq: number;
  readonly issuedAt: number;
}
interface Failure {
  readonly label: string;
  readonly member: number;
  readonly code: string;
}

describe('rooms through Redis and PostgreSQL restarts under load', () => {
  let redis: RedisServer;
  let postgres: PostgresServer;
  let databaseUrl = '';
  const pgDir = tempDir('outage-pg');
  /** The PostgreSQL server's processes (postmaster and its children): all of them are frozen. */
  const postgresPids = () => {
    const postmaster = Number(readFileSync(join(pgDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    const children = readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .filter((entry) => {
        try {
          return (
            Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]) === postmaster
          );
        } catch {
          return false;
        }
      })
      .map(Number);
    return [postmaster, ...children];
  };
  const nodes: RunningNode[] = [];
  const logs = captureLogs();
  const members: Member[] = [];
  const acks: Ack[] = [];
  const failures: Failure[] = [];
  let roomId = '';

  const query = async <R extends pg.QueryResultRow>(text: string, values: unknown[] = []) => {
    // A client per query: a pooled connection would not survive the PostgreSQL restart.
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      return (await client.query<R>(text, values)).rows;
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    [redis, postgres] = await Promise.all([
      startRedisServer(tempDir('outage-redis')),
      startPostgresServer(pgDir),
    ]);
    const admin = new pg.Client({ connectionString: `${postgres.baseUrl}/postgres` });
    await admin.connect();
    await admin.query('create database gigwire');
    await admin.end();
    databaseUrl = `${postgres.baseUrl}/gigwire`;
    const prefix = uniqueRedisPrefix();
    for (const nodeId of ['node-a', 'node-b']) {
      nodes.push(
        await startNode(
          testConfig({
            DATABASE_URL: databaseUrl,
            REDIS_URL: redis.url,
            REDIS_PREFIX: prefix,
            NODE_ID: nodeId,
            PRESENCE_LEASE_MS: String(LEASE_MS),
            REDIS_COMMAND_TIMEOUT_MS: '500',
            WS_MAX_MESSAGES_PER_SECOND: '5000',
            WS_MAX_BURST: '5000',
            RATE_LIMIT_PER_MINUTE: '100000',
          }),
          logs.log,
          { pid: process.pid },
        ),
      );
    }

    const [nodeA, nodeB] = nodes as [RunningNode, RunningNode];
    const api = httpClient(nodeA.baseUrl);
    const users: Registered[] = [];
    for (let i = 0; i < 6; i++) users.push(await registerUser(api));
    const [creator, ...others] = users as [Registered, ...Registered[]];
    roomId = await createGroupRoom(api, creator, others);
    for (const [index, user] of users.entries()) {
      const node = index % 2 === 0 ? nodeA : nodeB;
      const member: Member = {
        index,
        node: node === nodeA ? 'node-a' : 'node-b',
        client: createClient({
          url: node.uwsUrl ?? `${node.baseUrl.replace(/^http/, 'ws')}/ws`,
          WebSocket,
          getAccessToken: () => user.accessToken,
          reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 },
          requestTimeoutMs: 3_000,
        }),
        seqs: [],
      };
      member.client.on('room.message', (message) => {
        if (message.roomId === roomId) member.seqs.push(message.seq);
      });
      await member.client.whenConnected();
      await member.client.joinRoom(roomId);
      members.push(member);
    }
  }, 60_000);

  afterAll(async () => {
    for (const member of members) member.client.close();
    for (const node of nodes) await runShutdown(node.shutdownSteps, { log: logs.log, timeoutMs: 5_000 });
    await redis?.stop();
    await postgres?.stop();
  });

  /** room.send until acknowledged, always with the same clientMsgId; every failure recorded. */
  const sendUntilAcked = async (member: Member, label: string, clientMsgId: string, deadline: number) => {
    const issuedAt = Date.now();
    for (;;) {
      try {
        const ack = await member.client.request(
          'room.send',
          { roomId, clientMsgId, body: clientMsgId },
          { timeoutMs: 3_000 },
        );
        acks.push({ label, member: member.index, clientMsgId, seq: ack.seq, issuedAt });
        return;
      } catch (error) {
        const code = isGigwireError(error) ? error.code : `thrown: ${String(error)}`;
        failures.push({ label, member: member.index, code });
        if (Date.now() > deadline) throw error;
        await sleep(100);
      }
    }
  };

  /**
   * Four members (two per node) send one message after another while `outage` takes a dependency
   * away and `recover` brings it back; they stop once every one of them had a send issued after the
   * recovery acknowledged.
   */
  const underLoad = async (label: string, outage: () => Promise<void>, recover: () => Promise<void>) => {
    const senders = members.slice(0, 4);
    const deadline = Date.now() + 45_000;
    let stop = false;
    const loops = senders.map(async (member) => {
      for (let i = 0; !stop; i++)
        await sendUntilAcked(member, label, `${label}-${member.index}-${i}`, deadline);
    });
    const mine = () => acks.filter((ack) => ack.label === label);
    try {
      expect(await until(() => mine().length >= 40, 15_000)).toBe(true);
      await outage();
      await sleep(1_500); // sends keep arriving at both nodes while the dependency is away
      await recover();
      const upAt = Date.now();
      const recovered = await until(
        () => senders.every((s) => mine().some((ack) => ack.member === s.index && ack.issuedAt >= upAt)),
        25_000,
      );
      if (!recovered) console.log(warnings(label));
      expect(recovered).toBe(true);
    } finally {
      stop = true;
      await Promise.allSettled(loops);
    }
    await Promise.all(loops);
    const codes = failures.filter((f) => f.label === label).map((f) => f.code);
    console.log(
      `${label}: ${mine().length} acknowledged, ${codes.length} failed attempts (${[...new Set(codes)].join(', ') || 'none'})`,
    );
    return codes;
  };

  /** Warnings and errors the nodes logged, for a report when something did not recover. */
  const warnings = (label: string) =>
    `${label}: node warnings/errors:\n${logs
      .lines()
      .filter((line) => Number(line.level) >= 40)
      .slice(-40)
      .map((line) => `${String(line.nodeId ?? '')} ${String(line.msg)} ${JSON.stringify(line.err ?? '')}`)
      .join('\n')}`;

  /** Stored once each with the ack's seq, no gap, and every member has the whole sequence once. */
  const expectNothingLostOrDoubled = async () => {
    const rows = await query<{ seq: string; client_msg_id: string }>(
      'select seq, client_msg_id from messages where room_id = $1 order by seq',
      [roomId],
    );
    const stored = new Map(rows.map((row) => [row.client_msg_id, Number(row.seq)]));
    expect(stored.size).toBe(rows.length);
    const expected = Array.from({ length: rows.length }, (_, i) => i + 1);
    expect(rows.map((row) => Number(row.seq))).toEqual(expected);
    // No false ack: each acknowledged message is stored, under the seq its ack named.
    const falseAcks = acks.filter((ack) => stored.get(ack.clientMsgId) !== ack.seq);
    expect(falseAcks).toEqual([]);
    // Every send was retried until acknowledged, so nothing is stored that was not acknowledged.
    expect(new Set(acks.map((ack) => ack.clientMsgId)).size).toBe(rows.length);

    const complete = await until(() => members.every((m) => m.seqs.length >= rows.length), 30_000);
    await sleep(300); // anything delivered twice would have arrived by now
    if (!complete) console.log(warnings('delivery'));
    for (const member of members) expect(member.seqs).toEqual(expected);
  };

  it('Redis SIGKILLed and restarted while members on both nodes send: no false ack, nothing lost, recovers', async () => {
    const codes = await underLoad(
      'redis',
      () => redis.kill(),
      () => redis.restart(),
    );
    expect(codes.filter((code) => !RETRYABLE.has(code))).toEqual([]);
    await expectNothingLostOrDoubled();
  }, 90_000);

  it('PostgreSQL stopped and started again while members on both nodes send: no false ack, nothing lost, recovers', async () => {
    const codes = await underLoad(
      'postgres',
      () => postgres.stop('fast'),
      () => postgres.start(),
    );
    expect(codes.filter((code) => !RETRYABLE.has(code))).toEqual([]);
    // The outage was felt (the sends did not all slip through before the stop).
    expect(codes.length).toBeGreaterThan(0);
    await expectNothingLostOrDoubled();
  }, 90_000);

  it('Redis SIGSTOPped past the lease and woken while members on both nodes send: no false ack, nothing lost, recovers', async () => {
    const pid = redis.process().pid as number;
    const codes = await underLoad(
      'freeze',
      async () => {
        process.kill(pid, 'SIGSTOP');
        await sleep(2 * LEASE_MS);
      },
      async () => {
        process.kill(pid, 'SIGCONT');
      },
    );
    expect(codes.filter((code) => !RETRYABLE.has(code))).toEqual([]);
    await expectNothingLostOrDoubled();
  }, 120_000);

  it('PostgreSQL SIGSTOPped (every process of it) and woken while members on both nodes send: no false ack, nothing lost, recovers', async () => {
    let frozen: number[] = [];
    const codes = await underLoad(
      'pg-freeze',
      async () => {
        frozen = postgresPids();
        for (const pid of frozen) process.kill(pid, 'SIGSTOP');
        await sleep(4_000);
      },
      async () => {
        for (const pid of frozen) process.kill(pid, 'SIGCONT');
      },
    );
    expect(codes.filter((code) => !RETRYABLE.has(code))).toEqual([]);
    await expectNothingLostOrDoubled();
  }, 120_000);

  it('a transaction holding its connection across a PostgreSQL stop fails instead of crashing the process', async () => {
    const handle = await createDb({ kind: 'postgres', url: databaseUrl, poolMax: 2 }, logs.log);
    try {
      let release = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      let began = () => {};
      const begun = new Promise<void>((resolve) => {
        began = resolve;
      });
      const transaction = handle.db.transaction().execute(async (trx) => {
        await sql`select 1`.execute(trx);
        began();
        await held; // checked out, no query running: the server's goodbye has nobody to answer to
        await sql`select 1`.execute(trx);
      });
      await begun;
      await postgres.stop('fast');
      release();
      await expect(transaction).rejects.toThrow();
      await postgres.start();
      // The same pool serves again (the broken client was dropped, not reused).
      const answers = async () =>
        sql`select 1`.execute(handle.db).then(
          () => true,
          () => false,
        );
      expect(await until(answers, 10_000)).toBe(true);
    } finally {
      await handle.close();
    }
  }, 30_000);
});
