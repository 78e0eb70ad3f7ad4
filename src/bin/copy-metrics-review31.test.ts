/**
 * Review 31 (operator): under GATEWAY_PROCESSES the supervisor merges every copy's series with
 * prom-client's aggregation, which omits metrics whose aggregator is `omit`, among them the default
 * `process_start_time_seconds`: the merged /metrics had none, so a copy's restarts and uptime were
 * invisible. Every series carries its copy's `node` label, so each is kept as it is.
 */
import type { Worker } from 'node:cluster';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetricsMerger } from './copy-metrics.js';

function fakeCopy(node: string, startedAt: number) {
  const registry = new Registry();
  registry.setDefaultLabels({ node });
  // As prom-client's default metric declares it.
  new Gauge({
    name: 'process_start_time_seconds',
    help: 'Start time of the process since unix epoch in seconds.',
    aggregator: 'omit',
    registers: [registry],
  }).set(startedAt);
  const copy = new EventEmitter();
  Object.assign(copy, {
    isConnected: () => true,
    send: (message: { id: number }) => {
      void registry
        .getMetricsAsJSON()
        .then((metrics) =>
          setImmediate(() =>
            copy.emit('message', { t: 'gigwire.metrics-own-reply', id: message.id, metrics }),
          ),
        );
      return true;
    },
  });
  return copy;
}

describe("the supervisor's merge of every copy's /metrics (review 31)", () => {
  it("keeps each copy's process_start_time_seconds", async () => {
    const copies = [fakeCopy('g1', 1000), fakeCopy('g2', 2000)];
    const merger = createMetricsMerger(() => copies as unknown as Worker[], pino({ level: 'silent' }));
    const asker = new EventEmitter();
    const text = new Promise<string | undefined>((resolve) => {
      Object.assign(asker, {
        isConnected: () => true,
        send: (reply: { text?: string }) => resolve(reply.text),
      });
    });
    merger.serve(asker as unknown as Worker);
    asker.emit('message', { t: 'gigwire.metrics-all', id: 1 });
    const merged = await text;
    expect(merged).toContain('process_start_time_seconds{node="g1"} 1000');
    expect(merged).toContain('process_start_time_seconds{node="g2"} 2000');
  });
});
