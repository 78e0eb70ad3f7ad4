/** HTTP request duration histogram by route and status, and the Prometheus /metrics endpoint. */
import type { FastifyInstance } from 'fastify';
import { Histogram, type Registry } from 'prom-client';

/**
 * `exposition`: what /metrics serves instead of the registry's own series (a copy under
 * GATEWAY_PROCESSES serves every copy's, bin/copy-metrics.ts).
 */
export function registerHttpMetrics(
  app: FastifyInstance,
  registry: Registry,
  exposition: () => Promise<string> = () => registry.metrics(),
): void {
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request received to response sent, by route pattern and status.',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, never the raw URL: ids in paths would explode the label set.
    const route = request.routeOptions.url ?? 'unmatched';
    duration.observe(
      { method: request.method, route, status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
  app.get('/metrics', async (_request, reply) => {
    reply.type(registry.contentType);
    return exposition();
  });
}
