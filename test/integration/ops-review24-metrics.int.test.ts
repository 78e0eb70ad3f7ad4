/**
 * Ops review 24: `/metrics` takes no credential and no rate limit (scrapers; nginx keeps it
 * internal, but a process's PORT may be reached without it: a load balancer forwarding every path,
 * a gateway's fallback /ws on PORT). Each scrape read every task queue from Redis, some 40
 * commands, so a client hammering /metrics turned each cheap request into that much work on the
 * Redis every node shares. Now one reading of the queues answers the scrapes of the next second.
 * Counted with MONITOR on the real Redis: the commands that name this node's task prefix (an api
 * node runs no task worker, so the scrapes are all that reads its queues).
 */
import { connect, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bullPrefix } from '../../src/platform/queues/tasks.js';
import { sharedRedisUrl, startTestNode, type TestNode, uniqueRedisPrefix } from '../support/context.js';
import { untilDefined } from '../support/poll.js';

const redisPrefix = uniqueRedisPrefix();
let testNode: TestNode;
let monitor: Socket | undefined;
let seen = 0;

/**
 * MONITOR on a plain socket, one line per command Redis runs. Not ioredis's `monitor()`: on the
 * Redis every test file shares, lines of other files' commands can come in the same read as the
 * +OK, before ioredis is in its monitoring mode, and it threw "Command queue state error".
 */
async function startMonitor(onLine: (line: string) => void): Promise<Socket> {
  const { hostname, port } = new URL(sharedRedisUrl());
  const socket = connect(Number(port || 6379), hostname);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let pending = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\r\n');
    pending = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
  socket.write('MONITOR\r\n');
  return socket;
}

beforeAll(async () => {
  testNode = await startTestNode({ ROLE: 'api', REDIS_PREFIX: redisPrefix });
  const prefix = bullPrefix(redisPrefix);
  monitor = await startMonitor((line) => {
    if (line.includes(prefix)) seen += 1;
  });
}, 60_000);

afterAll(async () => {
  monitor?.destroy();
  await testNode?.stop();
});

/** Redis commands naming this node's queues that `scrape` caused (MONITOR lines arrive after the answer). */
async function commandsOf(scrape: () => Promise<void>): Promise<number> {
  const marker = new Redis(sharedRedisUrl());
  const flush = async () => {
    const key = `${bullPrefix(redisPrefix)}:marker:${Math.random()}`;
    const before = seen;
    await marker.get(key);
    await untilDefined(async () => (seen > before ? true : undefined), 'the marker in MONITOR');
    seen -= 1;
  };
  try {
    await flush();
    const start = seen;
    await scrape();
    await flush();
    return seen - start;
  } finally {
    marker.disconnect();
  }
}

describe('/metrics against a client hammering it', () => {
  it('reads the task queues from Redis once for a burst of scrapes, not once per scrape', async () => {
    const url = `${testNode.node.baseUrl}/metrics`;
    const fetchText = async () => {
      const response = await fetch(url);
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(text).toContain('gigwire_tasks{');
    };
    const one = await commandsOf(fetchText);
    expect(one).toBeGreaterThan(0);
    const burst = await commandsOf(async () => {
      await Promise.all(Array.from({ length: 40 }, fetchText));
    });
    // Per scrape, 40 scrapes cost 40 readings; now one (a few if the burst spans seconds).
    expect(burst).toBeLessThan(one * 8);
  }, 60_000);
});
