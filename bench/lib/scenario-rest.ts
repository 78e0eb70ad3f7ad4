/**
 * REST scenario (gigwire only): autocannon, run in the orchestrator process on the load core,
 * against GET /health/live (the same process's cheapest route: no auth, no rate limit, no I/O — the
 * baseline of Fastify and the per-request hooks), GET /v1/me, GET /v1/users/:id (another seeded
 * user) and POST /v1/auth/login (bound by argon2, reported as is; "n/a" when the target exposes no
 * `loginBody`). Figures: 2xx responses/s, latency p50/p99, non-2xx count and server CPU µs per
 * request; GET /v1/me also carries its CPU per request divided by GET /health/live's of the same run
 * (`cpuVsHealthLive`, issue 15's goal: ≤ 2×), so the median over runs is a median of same-run ratios.
 */
import autocannon from 'autocannon';
import {
  type CaseResult,
  failedCase,
  loadgenCheck,
  MeasureWindow,
  type Scenario,
  type ScenarioContext,
  skippedCase,
} from './scenario.js';
import { sleep } from './stats.js';
import type { TargetServer } from './target.js';

interface Endpoint {
  readonly caseId: string;
  readonly label: string;
  readonly level: number;
  readonly path: string;
  readonly method: 'GET' | 'POST';
  readonly connections: number;
  readonly body?: string;
  readonly auth: boolean;
}

const HEALTH_CASE = 'rest@health';
const ME_CASE = 'rest@me';

export function restSeconds(quick: boolean): number {
  return quick ? 1 : 8;
}

/** The gigwire target may expose a JSON body for POST /v1/auth/login; anything else has none. */
function loginBodyOf(target: TargetServer): string | undefined {
  const candidate: unknown = (target as TargetServer & { readonly loginBody?: unknown }).loginBody;
  return typeof candidate === 'string' ? candidate : undefined;
}

export function restEndpoints(
  ctx: Pick<ScenarioContext, 'credentials'>,
  loginBody: string | undefined,
): Endpoint[] {
  const other = ctx.credentials[1]?.userId ?? ctx.credentials[0]?.userId ?? 'missing';
  const endpoints: Endpoint[] = [
    {
      caseId: HEALTH_CASE,
      label: 'GET /health/live',
      level: 0,
      path: '/health/live',
      method: 'GET',
      connections: 32,
      auth: false,
    },
    {
      caseId: ME_CASE,
      label: 'GET /v1/me',
      level: 1,
      path: '/v1/me',
      method: 'GET',
      connections: 32,
      auth: true,
    },
    {
      caseId: 'rest@user',
      label: 'GET /v1/users/:id',
      level: 2,
      path: `/v1/users/${encodeURIComponent(other)}`,
      method: 'GET',
      connections: 32,
      auth: true,
    },
  ];
  endpoints.push({
    caseId: 'rest@login',
    label: 'POST /v1/auth/login',
    level: 3,
    path: '/v1/auth/login',
    method: 'POST',
    connections: 4,
    auth: false,
    ...(loginBody === undefined ? {} : { body: loginBody }),
  });
  return endpoints;
}

async function measure(ctx: ScenarioContext, endpoint: Endpoint, base: string): Promise<CaseResult> {
  const token = ctx.credentials[0]?.token ?? '';
  const headers: Record<string, string> = {};
  if (endpoint.auth) headers.authorization = `Bearer ${token}`;
  if (endpoint.body !== undefined) headers['content-type'] = 'application/json';
  const duration = restSeconds(ctx.quick);
  const window = new MeasureWindow(ctx.target, ctx.pool);
  const result = await autocannon({
    url: `${base}${endpoint.path}`,
    method: endpoint.method,
    connections: endpoint.connections,
    duration,
    headers,
    ...(endpoint.body === undefined ? {} : { body: endpoint.body }),
  });
  const cpu = window.end();
  const ok = result['2xx'];
  const errors: string[] = [];
  if (result.non2xx > 0) errors.push(`${result.non2xx} non-2xx responses (REST rate limit?)`);
  if (result.errors > 0) errors.push(`${result.errors} connection errors, ${result.timeouts} timeouts`);
  ctx.log(
    `${endpoint.caseId}: ${(ok / duration).toFixed(0)} ok/s, p99 ${result.latency.p99} ms, non-2xx ${result.non2xx}`,
  );
  return {
    scenario: 'rest',
    caseId: endpoint.caseId,
    label: endpoint.label,
    level: endpoint.level,
    metrics: {
      okPerSec: ok > 0 ? ok / duration : null,
      p50Ms: ok > 0 ? result.latency.p50 : null,
      p99Ms: ok > 0 ? result.latency.p99 : null,
      non2xx: result.non2xx,
      serverCpuUsPerRequest: ok > 0 ? cpu.serverCpuUs / (ok + result.non2xx) : null,
      serverBusy: cpu.serverBusy,
    },
    loadgen: loadgenCheck(cpu, 0, 0),
    sustained: ok > 0 && result.non2xx === 0 && result.errors === 0,
    errors,
  };
}

/** GET /v1/me's server CPU per request over GET /health/live's, both measured in this run. */
function withHealthRatio(cases: CaseResult[]): CaseResult[] {
  const health = cases.find((c) => c.caseId === HEALTH_CASE)?.metrics.serverCpuUsPerRequest;
  return cases.map((c) => {
    if (c.caseId !== ME_CASE) return c;
    const me = c.metrics.serverCpuUsPerRequest;
    const ratio = typeof me === 'number' && typeof health === 'number' && health > 0 ? me / health : null;
    return { ...c, metrics: { ...c.metrics, cpuVsHealthLive: ratio } };
  });
}

export const restScenario: Scenario = {
  id: 'rest',
  appliesTo: (target) => target.httpUrl !== undefined,
  run: async (ctx) => {
    const base = (ctx.target.httpUrl ?? '').replace(/\/+$/, '');
    const cases: CaseResult[] = [];
    for (const endpoint of restEndpoints(ctx, loginBodyOf(ctx.target))) {
      if (endpoint.method === 'POST' && endpoint.body === undefined) {
        cases.push(
          skippedCase(
            'rest',
            endpoint.caseId,
            endpoint.label,
            endpoint.level,
            'n/a: target exposes no loginBody',
          ),
        );
        continue;
      }
      try {
        cases.push(await measure(ctx, endpoint, base));
      } catch (error) {
        cases.push(failedCase('rest', endpoint.caseId, endpoint.label, endpoint.level, error));
      }
      await sleep(ctx.quick ? 100 : 500);
    }
    return withHealthRatio(cases);
  },
};
