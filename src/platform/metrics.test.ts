import { closeSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from './metrics.js';

const openFds = async (registry: ReturnType<typeof createMetricsRegistry>) => {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'process_open_fds');
  return metric?.values[0]?.value;
};

describe('process metrics', () => {
  it.runIf(process.platform === 'linux')(
    'counts open descriptors, and follows files opened and closed',
    async () => {
      const registry = createMetricsRegistry({ nodeId: 'n1', role: 'all', collectProcessMetrics: true });
      const before = await openFds(registry);
      expect(before).toBeGreaterThan(0);
      const opened = Array.from({ length: 5 }, () => openSync('/dev/null', 'r'));
      try {
        expect(await openFds(registry)).toBe((before ?? 0) + 5);
      } finally {
        for (const fd of opened) closeSync(fd);
      }
      const text = await registry.metrics();
      expect(text.match(/^process_open_fds\{/gm)).toHaveLength(1);
    },
  );

  it('registers no process metrics when told not to', async () => {
    const registry = createMetricsRegistry({ nodeId: 'n1', role: 'all', collectProcessMetrics: false });
    expect(await openFds(registry)).toBeUndefined();
    expect(await registry.metrics()).toContain('gigwire_info{role="all",node="n1"} 1');
  });
});
