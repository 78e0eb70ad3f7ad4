import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createActorMetrics, HANDLER_BUCKETS_SECONDS } from './actor-metrics.js';

const NAME = 'gigwire_actor_handler_duration_seconds';
const OBSERVATIONS: Record<string, number[]> = {
  user: [0.00005, 0.0001, 0.0003, 0.002, 0.7, 3, 10],
  room: [0.01, 0.01, 0.2],
};

function referenceRegistry(): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ node: 'n1' });
  const histogram = new Histogram({
    name: NAME,
    help: 'Time an actor spent handling one message, in seconds, by kind.',
    labelNames: ['kind'],
    buckets: [...HANDLER_BUCKETS_SECONDS],
    registers: [registry],
  });
  for (const [kind, seconds] of Object.entries(OBSERVATIONS)) {
    for (const value of seconds) histogram.observe({ kind }, value);
  }
  return registry;
}

describe('the handler duration histogram', () => {
  it('exposes exactly what a prom-client Histogram exposes for the same observations', async () => {
    const registry = new Registry();
    registry.setDefaultLabels({ node: 'n1' });
    const metrics = createActorMetrics(registry, () => []);
    for (const [kind, seconds] of Object.entries(OBSERVATIONS)) {
      const instruments = metrics.forKind(kind);
      for (const value of seconds) instruments.observeHandlerSeconds(value);
    }
    const expected = await referenceRegistry().getSingleMetricAsString(NAME);
    expect(await registry.getSingleMetricAsString(NAME)).toBe(expected);
    expect(await registry.metrics()).toContain(expected);
    const json = (await registry.getMetricsAsJSON()).find((metric) => metric.name === NAME);
    expect(json?.values).toContainEqual(
      expect.objectContaining({
        metricName: `${NAME}_count`,
        labels: { kind: 'user', node: 'n1' },
        value: 7,
      }),
    );
  });

  it('starts every registered kind at zero and returns to zero on registry reset', async () => {
    const registry = new Registry();
    const metrics = createActorMetrics(registry, () => []);
    metrics.forKind('user').observeHandlerSeconds(0.5);
    metrics.forKind('room');
    expect(await registry.getSingleMetricAsString(NAME)).toContain(`${NAME}_count{kind="room"} 0`);
    registry.resetMetrics();
    expect(await registry.getSingleMetricAsString(NAME)).toContain(`${NAME}_count{kind="user"} 0`);
  });
});
