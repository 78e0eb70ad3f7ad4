/** One contract, two implementations: the in-memory Bus (unit tests) and the Redis Bus (production). */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { type Bus, createMemoryBus } from '../../src/platform/bus/bus.js';
import { createRedisBus } from '../../src/platform/bus/redis-bus.js';
import type { Logger } from '../../src/platform/logger.js';
import { closeRedisClient, createRedisClient } from '../../src/platform/redis.js';
import { captureLogs, sharedRedisUrl, uniqueRedisPrefix } from '../support/context.js';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

function redisBus(prefix: string, log: Logger): Bus {
  const publisher = createRedisClient({ endpoint: sharedRedisUrl(), name: 'bus-test-pub', log });
  const subscriber = createRedisClient({
    endpoint: sharedRedisUrl(),
    name: 'bus-test-sub',
    log,
    maxRetriesPerRequest: null,
  });
  const bus = createRedisBus({ publisher, subscriber, prefix, log });
  cleanups.push(async () => {
    await bus.close();
    await closeRedisClient(subscriber);
    await closeRedisClient(publisher);
  });
  return bus;
}

const waitFor = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await sleep(10);
};

describe.each([
  ['memory', (log: Logger) => createMemoryBus((error) => log.error({ err: error }, 'bus handler failed'))],
  ['redis', (log: Logger) => redisBus(uniqueRedisPrefix(), log)],
] as const)('%s bus', (_name, makeBus) => {
  const logs = captureLogs();
  const make = () => makeBus(logs.log);
  it('delivers to every subscriber of a topic, in publish order, as copies', async () => {
    const bus = make();
    const first: unknown[] = [];
    const second: unknown[] = [];
    await bus.subscribe('t1', (p) => first.push(p));
    await bus.subscribe('t1', (p) => second.push(p));
    const sent = { n: 1, nested: { list: [1, 2] } };
    for (let n = 1; n <= 50; n++) await bus.publish('t1', n === 1 ? sent : { n });
    await waitFor(() => first.length === 50 && second.length === 50);
    expect(first.map((p) => (p as { n: number }).n)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(second).toEqual(first);
    expect(first[0]).toEqual(sent);
    expect(first[0]).not.toBe(sent);
  });

  it('keeps topics apart and stops delivering after unsubscribe', async () => {
    const bus = make();
    const got: unknown[] = [];
    const unsubscribe = await bus.subscribe('a', (p) => got.push(p));
    await bus.publish('b', { x: 1 });
    await bus.publish('a', { x: 2 });
    await waitFor(() => got.length === 1);
    await unsubscribe();
    await bus.publish('a', { x: 3 });
    await sleep(100);
    expect(got).toEqual([{ x: 2 }]);
  });

  it('survives a throwing handler: others still receive', async () => {
    const bus = make();
    const got: unknown[] = [];
    await bus.subscribe('c', () => {
      throw new Error('handler bug');
    });
    await bus.subscribe('c', (p) => got.push(p));
    await bus.publish('c', { ok: true });
    await waitFor(() => got.length === 1);
    expect(got).toEqual([{ ok: true }]);
    await waitFor(() => logs.text().includes('handler bug'));
    expect(logs.text()).toContain('handler bug');
  });
});

describe('redis bus across processes', () => {
  const logs = captureLogs();

  it("gives the publisher's own subscribers each message once, and another node every message in order", async () => {
    const prefix = uniqueRedisPrefix();
    const [nodeA, nodeB] = [redisBus(prefix, logs.log), redisBus(prefix, logs.log)];
    const onA: number[] = [];
    const onB: number[] = [];
    await nodeA.subscribe('shared', (p) => onA.push((p as { n: number }).n));
    await nodeB.subscribe('shared', (p) => onB.push((p as { n: number }).n));
    for (let n = 1; n <= 20; n++) await nodeA.publish('shared', { n });
    await waitFor(() => onA.length >= 20 && onB.length >= 20);
    await sleep(200); // an echo from Redis delivered again would have arrived by now
    const expected = Array.from({ length: 20 }, (_, i) => i + 1);
    expect(onA).toEqual(expected);
    expect(onB).toEqual(expected);
  });
});
