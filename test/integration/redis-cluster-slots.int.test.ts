/**
 * Redis Cluster readiness (issue 14 §5): every multi-key script and transaction gigwire runs keeps
 * its keys in one hash slot. Proved on a real redis-server in cluster mode (one node owning all
 * 16 384 slots): such a server refuses any script or MULTI whose keys span slots with CROSSSLOT,
 * exactly as a many-node cluster does, while a plain ioredis client can still reach every key.
 * Checked: the presence store, the window counters (login throttling), BullMQ with our prefix,
 * and a whole node (register, throttled logins, a socket opening and closing, its email task).
 * Every EVAL/EVALSHA the server sees is recorded with MONITOR and its keys' slots computed here
 * (CRC16-XMODEM, cross-checked against the server's CLUSTER KEYSLOT).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisPresenceStore } from '../../src/platform/presence-store.js';
import { bullPrefix } from '../../src/platform/queues/tasks.js';
import { createRedisWindowCounter } from '../../src/platform/window-counter.js';
import { startTestNode, type TestNode, tempDir, uniqueRedisPrefix } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';
import { ensureRedisServer, freePort } from '../support/servers.js';
import { openSocket } from '../support/ws-client.js';

/** CRC16-XMODEM (poly 0x1021, init 0), as the Redis Cluster specification defines it. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The key's slot: only the part inside the first non-empty {…} counts, when there is one. */
function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(key, 'utf8')) % 16_384;
}

interface ScriptCall {
  readonly command: string;
  readonly keys: readonly string[];
}

describe('Redis Cluster: every script and transaction stays in one slot', () => {
  let server: ChildProcess;
  let url: string;
  let redis: Redis;
  let monitor: Redis;
  const scripts: ScriptCall[] = [];

  beforeAll(async () => {
    const binary = await ensureRedisServer();
    const port = await freePort();
    const dir = tempDir('redis-cluster');
    server = spawn(
      binary,
      [
        '--bind',
        '127.0.0.1',
        '--port',
        String(port),
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ].concat(['--cluster-enabled', 'yes', '--cluster-config-file', `${dir}/nodes.conf`]),
      { stdio: 'ignore' },
    );
    url = `redis://127.0.0.1:${port}`;
    redis = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: () => 100 });
    redis.on('error', () => undefined); // refused until the server listens: the client retries
    await redis.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    for (let i = 0; i < 100; i++) {
      const info = String(await redis.call('CLUSTER', 'INFO'));
      if (info.includes('cluster_state:ok')) break;
      await sleep(50);
    }
    monitor = await redis.monitor();
    monitor.on('monitor', (_time: string, args: string[]) => {
      const command = String(args[0]).toLowerCase();
      if (command === 'eval' || command === 'evalsha') {
        const count = Number(args[2]);
        scripts.push({ command, keys: args.slice(3, 3 + count) });
      }
    });
  });
  afterAll(async () => {
    monitor?.disconnect();
    redis?.disconnect();
    server?.kill('SIGKILL');
  });

  it('is a server that refuses cross-slot scripts and transactions (the check has teeth)', async () => {
    expect(String(await redis.call('CLUSTER', 'INFO'))).toContain('cluster_state:ok');
    const lua = "redis.call('SET', KEYS[1], 1); redis.call('SET', KEYS[2], 1); return 0";
    await expect(redis.eval(lua, 2, 'presence:user:a', 'presence:node-users:n')).rejects.toThrow(/CROSSSLOT/);
    await expect(redis.multi().set('a', '1').set('b', '1').exec()).rejects.toThrow(/CROSSSLOT|EXECABORT/);
    // Our CRC16 agrees with the server's on tagged and untagged keys.
    for (const key of [
      'a',
      'user:1',
      '{gw:presence:3}:user:x',
      'x{}y',
      '{gw-tasks}:emails:wait',
      'a{b}{c}',
    ]) {
      expect(keySlot(key), key).toBe(Number(await redis.call('CLUSTER', 'KEYSLOT', key)));
    }
  });

  it('presence: connects, disconnects, lookups and the reaping of a dead node', async () => {
    const prefix = uniqueRedisPrefix();
    const nodeA = createRedisPresenceStore({ redis, prefix, nodeId: 'a', leaseMs: 60_000 });
    const nodeB = createRedisPresenceStore({ redis, prefix, nodeId: 'b', leaseMs: 60_000 });
    const dying = createRedisPresenceStore({ redis, prefix, nodeId: 'dying', leaseMs: 1 });
    const users = Array.from({ length: 40 }, (_, i) => `user-${i}`);
    for (const user of users) expect(await nodeA.connected(user)).toBe('online');
    for (const user of users) expect(await nodeB.connected(user)).toBeNull();
    expect(await nodeA.isOnline([...users, 'nobody'])).toEqual([...users.map(() => true), false]);
    for (const user of users) expect(await nodeA.disconnected(user)).toBeNull();
    expect(await nodeB.disconnected(users[0] as string)).toBe('offline');

    await dying.renewLease();
    expect(await dying.connected('only-on-dying')).toBe('online');
    expect(await dying.connected(users[1] as string)).toBeNull();
    await sleep(5);
    expect((await nodeA.reapDeadNodes()).sort()).toEqual(['only-on-dying']);
    expect((await nodeB.clearNode()).sort()).toEqual(users.slice(1).sort());
    expect(await nodeA.isOnline(users)).toEqual(users.map(() => false));

    const presenceScripts = scripts.filter((call) => call.keys.some((key) => key.startsWith(`{${prefix}:`)));
    expect(presenceScripts.length).toBeGreaterThan(users.length * 3);
    for (const call of presenceScripts)
      expect(new Set(call.keys.map(keySlot)).size, call.keys.join(' ')).toBe(1);
    // …and presence is spread over several slots, not piled on one.
    expect(new Set(presenceScripts.map((call) => keySlot(call.keys[0] as string))).size).toBeGreaterThan(4);
  });

  it('window counters (login throttling): hit, peek, release, clear', async () => {
    const counters = createRedisWindowCounter(redis, uniqueRedisPrefix());
    expect((await counters.hit('login:ip:1', 60_000)).count).toBe(1);
    expect((await counters.hit('login:ip:1', 60_000)).count).toBe(2);
    await counters.release('login:ip:1');
    expect((await counters.peek('login:ip:1')).count).toBe(1);
    await counters.clear('login:ip:1');
    expect((await counters.peek('login:ip:1')).count).toBe(0);
  });

  it('BullMQ with our prefix: immediate, delayed and retried jobs complete', async () => {
    const prefix = bullPrefix(uniqueRedisPrefix());
    const before = scripts.length;
    const queue = new Queue('cluster-check', { connection: redis, prefix });
    const failedOnce = new Set<string>();
    const done: string[] = [];
    const worker = new Worker(
      'cluster-check',
      async (job) => {
        if (job.name === 'flaky' && !failedOnce.has(job.id ?? '')) {
          failedOnce.add(job.id ?? '');
          throw new Error('first attempt fails');
        }
        done.push(job.name);
      },
      { connection: new Redis(url, { maxRetriesPerRequest: null }), prefix },
    );
    try {
      await queue.add('now', {}, { jobId: 'now' });
      await queue.add('later', {}, { jobId: 'later', delay: 200 });
      await queue.add('flaky', {}, { jobId: 'flaky', attempts: 2, backoff: { type: 'fixed', delay: 50 } });
      for (let i = 0; i < 200 && done.length < 3; i++) await sleep(50);
      expect(done.sort()).toEqual(['flaky', 'later', 'now']);
      expect(await queue.getJobCounts('completed', 'failed')).toEqual({ completed: 3, failed: 0 });
    } finally {
      await worker.close();
      await worker.disconnect();
      await queue.close();
    }
    const ours = scripts.slice(before).filter((call) => call.keys.some((key) => key.startsWith(prefix)));
    expect(ours.length).toBeGreaterThan(0);
    for (const call of ours) expect(new Set(call.keys.map(keySlot)).size, call.keys.join(' ')).toBe(1);
  });

  describe('a whole node on the cluster-mode server', () => {
    let test: TestNode;
    beforeAll(async () => {
      test = await startTestNode({ REDIS_URL: url, NODE_ID: 'cl' });
    });
    afterAll(async () => {
      await test?.stop();
    });

    it('registers, throttles logins, counts a socket online and offline, without a CROSSSLOT anywhere', async () => {
      const before = scripts.length;
      const { node, logs } = test;
      const api = httpClient(node.baseUrl);
      const user = await registerUser(api);
      for (let i = 0; i < 3; i++) {
        const wrong = await api.post('/v1/auth/login', {
          login: user.username,
          password: 'not-the-password-1',
        });
        expect(wrong.status).toBe(401);
      }
      const socket = await openSocket(
        node.uwsUrl ?? `${node.baseUrl.replace('http', 'ws')}/ws`,
        user.accessToken,
      );
      expect((await socket.request('ping')).t).toBe('ok');
      const me = await api.get<{ id: string }>(`/v1/me`, user.accessToken);
      expect(me.status).toBe(200);
      socket.close();
      const presenceCalls = () =>
        scripts.slice(before).filter((call) => call.keys[0]?.includes(':presence:'));
      // The socket's connect and its disconnect (each one script) reach Redis through the user actor;
      // on a slow machine the node's periodic presence scripts (its lease renewal) may run meanwhile
      // too (7 instead of 2 in a CI run under load): what counts is that every one stays in its slot.
      for (let i = 0; i < 100 && presenceCalls().length < 2; i++) await sleep(50);
      expect(presenceCalls().length).toBeGreaterThanOrEqual(2);
      const calls = scripts.slice(before);
      for (const call of calls) expect(new Set(call.keys.map(keySlot)).size, call.keys.join(' ')).toBe(1);
      expect(logs.text()).not.toMatch(/CROSSSLOT/);
    });
  });
});
