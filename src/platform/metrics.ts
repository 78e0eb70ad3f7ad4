/**
 * One prom-client Registry per process (never the library's global one, so tests and several apps in
 * one process do not share counters). Edges register their own instruments on it.
 */
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { countOpenFiles } from './open-files.js';

export interface MetricsOptions {
  readonly nodeId: string;
  readonly role: string;
  /** Process metrics (CPU, memory, event-loop lag, GC). Off in tests that build many apps. */
  readonly collectProcessMetrics: boolean;
}

const OPEN_FDS = 'process_open_fds';

export function createMetricsRegistry(options: MetricsOptions): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ node: options.nodeId });
  if (options.collectProcessMetrics) {
    collectDefaultMetrics({ register: registry });
    if (registry.getSingleMetric(OPEN_FDS) !== undefined) replaceOpenFdsGauge(registry);
  }
  new Gauge({
    name: 'gigwire_info',
    help: 'Constant 1, labelled with what this process runs.',
    labelNames: ['role'],
    registers: [registry],
  }).set({ role: options.role }, 1);
  return registry;
}

/**
 * prom-client counts open descriptors with a synchronous readdir of /proc/self/fd: on a gateway
 * holding 10 000 sockets that stalled the event loop for 30–60 ms on every scrape (every message in
 * flight waited). The same count off the loop (open-files.ts).
 */
function replaceOpenFdsGauge(registry: Registry): void {
  registry.removeSingleMetric(OPEN_FDS);
  new Gauge({
    name: OPEN_FDS,
    help: 'Number of open file descriptors.',
    registers: [registry],
    async collect() {
      const open = await countOpenFiles();
      if (open !== undefined) this.set(open);
    },
  });
}
