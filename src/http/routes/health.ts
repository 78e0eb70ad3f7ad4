/**
 * Liveness and readiness. /health/live says the process runs (never checks dependencies, so a Redis
 * outage does not get the process restarted). /health/ready checks every dependency concurrently,
 * each within a timeout, and answers 503 problem+json naming the ones that failed.
 *
 * The health routes take no rate limit (a balancer's probes must never be refused), so readiness
 * runs at most one round of checks at a time and answers from a round started under
 * READY_REUSE_MS ago: a client hammering /health/ready costs PostgreSQL and Redis one check each per
 * READY_REUSE_MS, not one per request. Draining and starting are read per request.
 */
import type { FastifyInstance } from 'fastify';
import { PROBLEM_CONTENT_TYPE, problem } from '../problem.js';

export type DependencyCheck = () => Promise<void>;

export interface HealthOptions {
  /** Extra facts for /health/live (node id, role, installation id, …). */
  readonly info: () => Readonly<Record<string, unknown>>;
  /** Named checks, e.g. `postgres`, `redis`; each must settle within `timeoutMs`. */
  readonly checks: Readonly<Record<string, DependencyCheck>>;
  readonly timeoutMs: number;
  /** True once shutdown began: the node stops advertising itself as ready. */
  readonly isDraining: () => boolean;
  /**
   * True while the node is still starting parts that serve traffic after HTTP listens (the
   * WebSocket edge): not ready yet, so a balancer or a client waiting on readiness does not race it.
   */
  readonly isStarting?: () => boolean;
}

type CheckOutcome = { readonly status: 'ok' } | { readonly status: 'failed'; readonly error: string };

/** How long a round of dependency checks answers /health/ready (a state at most this old). */
export const READY_REUSE_MS = 1_000;

/**
 * While the node stays not ready for the same reason, its warning is repeated at most this often:
 * a balancer probing every second (and anyone hammering the unlimited route) during an outage must
 * not flood the logs. A change (ready → not ready, another reason) is logged at once.
 */
export const NOT_READY_LOG_INTERVAL_MS = 30_000;

async function runCheck(check: DependencyCheck, timeoutMs: number): Promise<CheckOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([check(), timeout]);
    return { status: 'ok' };
  } catch (error) {
    return { status: 'failed', error: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}

export function registerHealthRoutes(app: FastifyInstance, options: HealthOptions): void {
  const startedAt = Date.now();
  app.get('/health/live', async () => ({
    status: 'ok',
    uptimeS: Math.round((Date.now() - startedAt) / 1000),
    ...options.info(),
  }));

  const names = Object.keys(options.checks);
  /** The latest round of checks (settled or in flight) and when it started (monotonic ms). */
  let round: { readonly startedAt: number; readonly outcomes: Promise<CheckOutcome[]> } | undefined;
  const checkAll = (): Promise<CheckOutcome[]> => {
    const now = performance.now();
    if (round !== undefined && now - round.startedAt < READY_REUSE_MS) return round.outcomes;
    const outcomes = Promise.all(
      names.map((name) => runCheck(options.checks[name] ?? (async () => {}), options.timeoutMs)),
    );
    round = { startedAt: now, outcomes };
    return outcomes;
  };

  /** The not-ready state last logged (its failed checks and flags) and when (monotonic ms). */
  let notReadyLogged: { readonly key: string; readonly at: number } | undefined;

  app.get('/health/ready', async (request, reply) => {
    const outcomes = await checkAll();
    const checks = Object.fromEntries(names.map((name, i) => [name, outcomes[i]]));
    const failed = names.filter((_, i) => outcomes[i]?.status === 'failed');
    const starting = options.isStarting?.() ?? false;
    if (failed.length === 0 && !options.isDraining() && !starting) {
      if (notReadyLogged !== undefined) {
        notReadyLogged = undefined;
        request.log.info('ready again');
      }
      return { status: 'ready', checks };
    }
    const detail = options.isDraining()
      ? 'shutting down'
      : starting
        ? 'starting: the WebSocket edge is not listening yet'
        : failed
            .map((name) => `${name} unavailable: ${(checks[name] as { error?: string }).error}`)
            .join('; ');
    const state = { failed, draining: options.isDraining(), starting };
    const key = JSON.stringify(state);
    const now = performance.now();
    if (
      notReadyLogged === undefined ||
      notReadyLogged.key !== key ||
      now - notReadyLogged.at >= NOT_READY_LOG_INTERVAL_MS
    ) {
      const repeated = notReadyLogged?.key === key;
      request.log.warn({ ...state, reason: detail, repeated }, repeated ? 'still not ready' : 'not ready');
      notReadyLogged = { key, at: now };
    }
    return reply
      .status(503)
      .type(PROBLEM_CONTENT_TYPE)
      .send(
        problem(
          'UNAVAILABLE',
          detail,
          { instance: '/health/ready', requestId: request.id },
          { checks, failed },
        ),
      );
  });
}
