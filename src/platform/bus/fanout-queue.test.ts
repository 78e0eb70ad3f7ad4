import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createLogger } from '../logger.js';
import { createManualTimers } from '../timers.js';
import type { Bus } from './bus.js';
import { createFanOutQueue } from './fanout-queue.js';
import type { Topic } from './topics.js';

const topicN: Topic<{ n: number }> = { name: 't', payload: z.object({ n: z.number() }) };

/** A bus whose publishes stay unanswered until the test settles them (a frozen Redis). */
function stalledBus() {
  const issued: { payload: unknown; resolve: () => void; reject: (e: unknown) => void }[] = [];
  const bus: Bus = {
    publish: (_topic, payload) =>
      new Promise<number>((resolve, reject) => {
        issued.push({ payload, resolve: () => resolve(1), reject });
      }),
    subscribe: async () => async () => undefined,
    close: async () => undefined,
  };
  return { bus, issued };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

function setup(bus: Bus, capacity = 3, maxInFlight = 2) {
  const timers = createManualTimers(1_000);
  const lines: string[] = [];
  const registry = new Registry();
  const queue = createFanOutQueue({
    bus,
    timers,
    metrics: registry,
    log: createLogger({
      level: 'debug',
      pretty: false,
      destination: { write: (l: string) => lines.push(l) },
    }),
    capacity,
    maxInFlight,
    publishTimeoutMs: 500,
  });
  const metric = async (name: string) =>
    (await registry.getSingleMetric(name)?.get())?.values[0]?.value ?? Number.NaN;
  return { queue, timers, lines, metric };
}

describe('fan-out queue', () => {
  it('never waits for the bus: enqueue returns while publishes hang, in order, bounded in flight', async () => {
    const { bus, issued } = stalledBus();
    const { queue } = setup(bus);
    for (let i = 1; i <= 4; i++) queue.enqueue(topicN, { n: i });
    expect(issued.map((p) => (p.payload as { n: number }).n)).toEqual([1, 2]);
    expect(queue.size()).toBe(4);
    issued[0]?.resolve();
    await flush();
    expect(issued.map((p) => (p.payload as { n: number }).n)).toEqual([1, 2, 3]);
  });

  it('drops the oldest waiting publish when full, counts it and logs it', async () => {
    const { bus, issued } = stalledBus();
    const { queue, lines, metric } = setup(bus, 2, 1);
    for (let i = 1; i <= 5; i++) queue.enqueue(topicN, { n: i });
    // 1 in flight; 2..5 through a queue of 2: 2 and 3 dropped, 4 and 5 wait.
    expect(await metric('gigwire_bus_fanout_dropped_total')).toBe(2);
    expect(lines.join('')).toContain('bus fan-out degraded');
    issued[0]?.resolve();
    await flush();
    issued[1]?.resolve();
    await flush();
    expect(issued.map((p) => (p.payload as { n: number }).n)).toEqual([1, 4, 5]);
  });

  it('frees the slot of a publish that never answers after publishTimeoutMs', async () => {
    const { bus, issued } = stalledBus();
    const { queue, timers, metric } = setup(bus, 10, 1);
    queue.enqueue(topicN, { n: 1 });
    queue.enqueue(topicN, { n: 2 });
    expect(issued).toHaveLength(1);
    timers.advance(500);
    await flush();
    expect(issued.map((p) => (p.payload as { n: number }).n)).toEqual([1, 2]);
    expect(await metric('gigwire_bus_fanout_failed_total')).toBe(1);
  });

  it('counts a rejected publish as failed and keeps going; drain resolves when all are answered', async () => {
    const { bus, issued } = stalledBus();
    const { queue, metric } = setup(bus, 10, 5);
    queue.enqueue(topicN, { n: 1 });
    queue.enqueue(topicN, { n: 2 });
    let drained = false;
    const draining = queue.drain(60_000).then(() => {
      drained = true;
    });
    issued[0]?.reject(new Error('Command timed out'));
    await flush();
    expect(drained).toBe(false);
    issued[1]?.resolve();
    await draining;
    expect(queue.size()).toBe(0);
    expect(await metric('gigwire_bus_fanout_failed_total')).toBe(1);
  });
});
