/** One contract, two implementations: the in-memory Bus (unit tests) and the Redis Bus (production). */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, createMemoryBus, type Topic } from '../../src/platform/bus/bus.js';
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

/** Test topics: a name and the payload schema, as in the catalogue (src/platform/bus/topics.ts). */
const Counted = z.object({ n: z.number(), nested: z.object({ list: z.array(z.number()) }).optional() });
const counted = (name: string): Topic<z.infer<typeof Counted>> => ({ name, payload: Counted });
const Flagged = z.object({ x: z.number().optional(), ok: z.boolean().optional() });
const flagged = (name: string): Topic<z.infer<typeof Flagged>> => ({ name, payload: Flagged });

const waitFor = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await sleep(10);
};

describe.each([
  ['memory', (log: Logger) => createMemoryBus((error) => log.error({ err: error }, 'bus handler failed'))],
  ['redis', (log: Logger) => redisBus(uniqueRedisPrefix(), log)],
] as const)('%s bus', (_name, makeBus) => {
  const logs = captureLogs();
  const make = () => makeBus(logs.log);
  it('delivers to every subscriber of a topic, in publish order; local subscribers get the object itself', async () => {
    const bus = make();
    const first: unknown[] = [];
    const second: unknown[] = [];
    await bus.subscribe(counted('t1'), (p) => first.push(p));
    await bus.subscribe(counted('t1'), (p) => second.push(p));
    const sent = { n: 1, nested: { list: [1, 2] } };
    for (let n = 1; n <= 50; n++) expect(await bus.publish(counted('t1'), n === 1 ? sent : { n })).toBe(1);
    await waitFor(() => first.length === 50 && second.length === 50);
    expect(first.map((p) => (p as { n: number }).n)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(second).toEqual(first);
    // No copy and no parse on the publisher's own node: payloads are immutable values.
    expect(first[0]).toBe(sent);
    expect(await bus.publish(counted('nobody-listens'), { n: 1 })).toBe(0);
  });

  it('keeps topics apart and stops delivering after unsubscribe', async () => {
    const bus = make();
    const got: unknown[] = [];
    const unsubscribe = await bus.subscribe(flagged('a'), (p) => got.push(p));
    await bus.publish(flagged('b'), { x: 1 });
    await bus.publish(flagged('a'), { x: 2 });
    await waitFor(() => got.length === 1);
    await unsubscribe();
    await bus.publish(flagged('a'), { x: 3 });
    await sleep(100);
    expect(got).toEqual([{ x: 2 }]);
  });

  it('survives a throwing handler: others still receive', async () => {
    const bus = make();
    const got: unknown[] = [];
    await bus.subscribe(flagged('c'), () => {
      throw new Error('handler bug');
    });
    await bus.subscribe(flagged('c'), (p) => got.push(p));
    await bus.publish(flagged('c'), { ok: true });
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
    await nodeA.subscribe(counted('shared'), (p) => onA.push(p.n));
    await nodeB.subscribe(counted('shared'), (p) => onB.push(p.n));
    for (let n = 1; n <= 20; n++) await nodeA.publish(counted('shared'), { n });
    await waitFor(() => onA.length >= 20 && onB.length >= 20);
    await sleep(200); // an echo from Redis delivered again would have arrived by now
    const expected = Array.from({ length: 20 }, (_, i) => i + 1);
    expect(onA).toEqual(expected);
    expect(onB).toEqual(expected);
  });

  it('parses what arrives from another process with the topic schema once, and drops a payload of the wrong shape', async () => {
    const prefix = uniqueRedisPrefix();
    const [nodeA, nodeB] = [redisBus(prefix, logs.log), redisBus(prefix, logs.log)];
    const got: unknown[] = [];
    await nodeB.subscribe(counted('typed'), (p) => got.push(p));
    // An older or broken publisher: same channel, a looser schema on its side.
    const loose: Topic<Record<string, unknown>> = {
      name: 'typed',
      payload: z.record(z.string(), z.unknown()),
    };
    await nodeA.publish(loose, { n: 'not a number' });
    await nodeA.publish(loose, { n: 7, extra: 'stripped' });
    await waitFor(() => got.length >= 1);
    await sleep(100);
    expect(got).toEqual([{ n: 7 }]);
    expect(logs.text()).toContain('bus message of the wrong shape dropped');
  });
});
