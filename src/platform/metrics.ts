/**
 * One prom-client Registry per process (never the library's global one, so tests and several apps in
 * one process do not share counters). Edges register their own instruments on it.
 */
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

export interface MetricsOptions {
  readonly nodeId: string;
  readonly role: string;
  /** Process metrics (CPU, memory, event-loop lag, GC). Off in tests that build many apps. */
  readonly collectProcessMetrics: boolean;
}

export function createMetricsRegistry(options: MetricsOptions): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ node: options.nodeId });
  if (options.collectProcessMetrics) collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'gigwire_info',
    help: 'Constant 1, labelled with what this process runs.',
    labelNames: ['role'],
    registers: [registry],
  }).set({ role: options.role }, 1);
  return registry;
}
