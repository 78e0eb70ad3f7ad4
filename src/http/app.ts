/**
 * buildApp: the Fastify instance of a process, built but never listening (bin/ listens).
 * Every role serves /health and /metrics; REST resources register under /v1 as they are built.
 *
 * May import: protocol/, config/, platform/, db/, domain/. Not actors/, workers/, gateway/, bin/.
 */
import { randomUUID } from 'node:crypto';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Registry } from 'prom-client';
import type { AdminService } from '../domain/admin/service.js';
import type { AuthService } from '../domain/auth/service.js';
import type { TokenService } from '../domain/auth/tokens.js';
import { retireLockedAccount } from '../domain/marketplace/locked-accounts.js';
import type { NotificationsApi } from '../domain/notifications/service.js';
import type { UserService } from '../domain/users/service.js';
import type { Logger } from '../platform/logger.js';
import { withTrace } from '../platform/trace.js';
import { capConnections, type HttpEdgeLimits, requestTimeoutOptions } from './connection-limits.js';
import { type ConsoleDeps, registerConsole } from './console/index.js';
import { registerRouteAuth } from './plugins/auth.js';
import { registerCompression } from './plugins/compression.js';
import {
  clientErrorHandler,
  connectRefused,
  expectationRefused,
  frameworkErrorHandler,
  registerErrorHandling,
  UNAVAILABLE_RETRY_AFTER_S,
} from './plugins/errors.js';
import { registerInputGuard } from './plugins/input-guard.js';
import { registerHttpMetrics } from './plugins/metrics.js';
import { registerOpenApi } from './plugins/openapi.js';
import {
  type PerIpLimit,
  registerSecurity,
  type SecurityOptions,
  securityHeaders,
} from './plugins/security.js';
import { PROBLEM_CONTENT_TYPE, problem, statusByCode } from './problem.js';
import { proxyHint } from './proxy-hint.js';
import { requestLoggerFactory } from './request-logger.js';
import { registerAdminRoutes } from './routes/admin.js';
import { registerAuthRoutes } from './routes/auth.js';
import { registerCategoryRoutes } from './routes/categories.js';
import { type ContractRoutesDeps, registerContractRoutes } from './routes/contracts.js';
import { type HealthOptions, registerHealthRoutes } from './routes/health.js';
import { type JobRoutesDeps, registerJobRoutes } from './routes/jobs.js';
import { registerNotificationRoutes } from './routes/notifications.js';
import { type PaymentRoutesDeps, registerPaymentRoutes } from './routes/payments.js';
import { type ReviewRoutesDeps, registerReviewRoutes } from './routes/reviews.js';
import { type RoomRoutesDeps, registerRoomRoutes } from './routes/rooms.js';
import { registerUserRoutes } from './routes/users.js';
import { registerWalletRoutes, type WalletRoutesDeps } from './routes/wallet.js';
import { routeUpgrades } from './upgrades.js';
import { registerWebApp, type WebAppOptions } from './web-app.js';

/** Largest accepted request body (64 KiB): REST payloads are small; bigger bodies are abuse. */
export const BODY_LIMIT_BYTES = 64 * 1024;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** What the REST resources need; absent on processes that serve only the operational endpoints. */
export interface RestDeps {
  readonly auth: AuthService;
  readonly tokens: TokenService;
  readonly users: UserService;
  readonly admin: AdminService;
  /** Rooms, and the store of POST /v1/rooms' optional Idempotency-Key. */
  readonly rooms: RoomRoutesDeps;
  /** Top-ups, withdrawals, payments and the provider webhook (issue 11). */
  readonly payments?: PaymentRoutesDeps;
  /** Balance, history, transfers and the ledger audit (issue 11). */
  readonly wallet?: WalletRoutesDeps;
  /** Jobs, bids and categories (issue 12). */
  readonly jobs?: JobRoutesDeps;
  /** Reviews and admin category edits (issue 12). */
  readonly reviews?: ReviewRoutesDeps;
  /** Contracts: accepting bids, transitions, resolve (issue 12). */
  readonly contracts?: ContractRoutesDeps;
  /** The operators' console (bull-board at /admin/queues, issue 13). */
  readonly console?: ConsoleDeps;
  /** Notifications and their preferences (issue 13). */
  readonly notifications?: NotificationsApi;
  /** The web app at `/` (web/dist, issue 16). */
  readonly web?: WebAppOptions;
  readonly security: SecurityOptions;
  readonly version: string;
}

export interface AppDeps {
  readonly log: Logger;
  readonly metrics: Registry;
  /** What /metrics serves instead of `metrics` itself (every copy's series under GATEWAY_PROCESSES). */
  readonly metricsExposition?: () => Promise<string>;
  readonly health: HealthOptions;
  /** How long a request may take to arrive, and open connections per client and in all. */
  readonly httpEdge: HttpEdgeLimits;
  /**
   * 0, a hop count or proxy addresses (TRUST_PROXY); never `true`, which trusts any client's header.
   * Every role's: a gateway's /ws on PORT counts upgrades and connections per client by it too (it
   * was given with the REST deps only, so a gateway behind a proxy saw one client, the proxy).
   */
  readonly trustProxy: number | readonly string[];
  readonly rest?: RestDeps;
  /** Registers the WebSocket route (/ws) of the gateway role; http/ does not know the gateway. */
  readonly websocket?: (app: FastifyInstance) => Promise<void>;
  /**
   * How long close() lets the requests in flight finish before it closes their connections (bin/
   * gives a share of SHUTDOWN_TIMEOUT_MS); unset: as long as they take.
   */
  readonly closeGraceMs?: number;
}

/** A caller's x-request-id is kept when it is a sane token (no log injection); otherwise a UUID. */
export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
}

const QUIET_PATHS = ['/health/', '/metrics'];

/**
 * Fastify's form of TRUST_PROXY. A hop count n trusts the last n X-Forwarded-For entries (hop 0 is
 * the socket's peer), as Fastify does for a number, which its types do not admit.
 */
const trustProxyOption = (value: number | readonly string[]): FastifyServerOptions['trustProxy'] =>
  typeof value === 'number' ? (value === 0 ? false : (_address, hop) => hop < value) : [...value];

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  // Helmet's headers of a REST process (plugins/security.ts sets them in a hook) on the answers
  // given before that hook runs: a path Fastify cannot route (bad percent-encoding, an over-long
  // parameter; review 25), the 503 while closing and what Node's HTTP parser refuses (review 26).
  const secured = deps.rest === undefined ? [] : securityHeaders();
  // The per-IP limit of a REST process, once registered (plugins/security.ts): a path Fastify cannot
  // route is answered before any hook, so a client could repeat it without limit, each with its
  // log line (review 30). Counted here too.
  let perIpLimit: PerIpLimit | undefined;
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast keeps the app typed with Fastify's default logger.
    loggerInstance: deps.log as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    // A request must arrive whole within HTTP_REQUEST_TIMEOUT_MS (Fastify's default is no bound).
    ...requestTimeoutOptions(deps.httpEdge),
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']),
    // The request id is also the trace id of what the request causes (outbox events, tasks, workers'
    // logs): the request's lines carry it as `reqId` and `traceId`, bound in Fastify's own
    // per-request child logger. One child per request, not a second on top, and made only when a
    // line is written (pino's child() was a visible share of a small request's CPU).
    childLoggerFactory: requestLoggerFactory,
    logController: new LogController({
      // Probes hit these every few seconds; their request lines would drown the useful ones.
      disableRequestLogging: (request) => QUIET_PATHS.some((path) => request.url.startsWith(path)),
    }),
    // MUST stay off: Fastify's own 503 while closing is its JSON, without `code` or `requestId`.
    // The first onRequest hook below answers UNAVAILABLE problem+json instead.
    return503OnClosing: false,
    trustProxy: trustProxyOption(deps.trustProxy),
    frameworkErrors: (error, request, reply) => {
      for (const [name, value] of secured) reply.header(name, value);
      frameworkErrorHandler(error, request, reply, perIpLimit?.(request));
    },
    // What Node's HTTP parser refuses (431, a bad chunk, raw bytes in the path): problem+json too.
    clientErrorHandler: function (this: FastifyInstance, error: Error, socket) {
      clientErrorHandler.call(this, error, socket, secured);
    },
  });
  // CONNECT (a forward proxy's tunnel) reaches no route: Node destroyed its socket unanswered.
  app.server.on('connect', (_request, socket) => connectRefused.call(app, socket, secured));
  // An Expect other than 100-continue reaches no route either: Node answered a bare 417 itself.
  app.server.on('checkExpectation', (request, response) =>
    expectationRefused.call(app, request, response, secured),
  );
  capConnections(app.server, deps.httpEdge, deps.trustProxy, deps.metrics);
  const warnIfBehindUntrustedProxy = proxyHint(deps.trustProxy, deps.log);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // From the start of close() (bin/ stops HTTP at shutdown) until the server has closed: requests
  // still arriving on open connections (keep-alive, pipelined) are refused as below.
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    // Node closes the connections idle when close() begins, but not those busy with a request
    // then: answered, each stayed open as an idle keep-alive connection, and close() waited for it
    // until its keep-alive timeout (72 s), past SHUTDOWN_TIMEOUT_MS, so the steps after this one
    // never ran (review 24). Until the server has closed, such connections are closed as they fall
    // idle (no cost per request while serving).
    const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
    sweep.unref();
    // Node stops checking HTTP_REQUEST_TIMEOUT_MS when the server begins to close: a request still
    // arriving then (a body or headers sent a byte at a time) held close() for as long as its
    // client kept sending, past SHUTDOWN_TIMEOUT_MS, so the process exited 1 at the deadline and the
    // steps after this one never ran (review 30). What is still open after the grace is closed.
    const { closeGraceMs } = deps;
    const cut =
      closeGraceMs === undefined
        ? undefined
        : setTimeout(() => {
            deps.log.warn(
              { closeGraceMs },
              'closing the HTTP connections still busy: their requests outlasted the shutdown grace',
            );
            app.server.closeAllConnections();
          }, closeGraceMs);
    cut?.unref();
    app.server.once('close', () => {
      clearInterval(sweep);
      clearTimeout(cut);
    });
    done();
  });
  // One synchronous hook for what every request needs first (a hook costs a promise when async).
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    warnIfBehindUntrustedProxy?.(request.raw);
    // API answers hold tokens and personal data: no shared or browser cache keeps them (a route
    // with something public to cache, the JWKS, sets its own). By the route too: a request in
    // absolute form (`GET http://host/v1/me`, as a forward proxy sends it; RFC 9112 §3.2.2) is
    // routed like `/v1/me` but its url does not start with `/v1/` (review 22: no header at all).
    if (request.url.startsWith('/v1/') || request.routeOptions.url?.startsWith('/v1/') === true)
      reply.header('cache-control', 'no-store');
    if (closing) {
      // Before the rate limit and authentication: nothing else runs for it. Fastify adds
      // `Connection: close` to any answer given while closing.
      const context = { instance: request.url.split('?')[0] ?? '/', requestId: request.id };
      // Helmet's hook (plugins/security.ts) is a later one, which this answer never reaches.
      for (const [name, value] of secured) reply.header(name, value);
      void reply
        .status(statusByCode.UNAVAILABLE)
        .header('retry-after', String(UNAVAILABLE_RETRY_AFTER_S))
        .type(PROBLEM_CONTENT_TYPE)
        .send(problem('UNAVAILABLE', 'this node is shutting down; retry later', context));
      return;
    }
    // The request id is the trace id of what the request causes: outbox events, tasks, workers' logs.
    withTrace(request.id, done);
  });
  registerErrorHandling(app);
  registerInputGuard(app);
  registerHttpMetrics(app, deps.metrics, deps.metricsExposition);
  registerHealthRoutes(app, deps.health);
  if (deps.websocket !== undefined) {
    // The routes that open a WebSocket, for the upgrades' rule (upgrades.ts).
    const webSocketPaths = new Set<string>();
    app.addHook('onRoute', (route) => {
      if (route.websocket === true) webSocketPaths.add(route.url);
    });
    await deps.websocket(app);
    routeUpgrades(app, webSocketPaths, secured);
  }
  if (deps.rest !== undefined) {
    const { rest } = deps;
    // MUST come before registerRouteAuth: the per-IP limit has to count a request before its
    // token is checked (and refused), and instance hooks run in the order they were added.
    perIpLimit = await registerSecurity(app, rest.security);
    await registerCompression(app);
    await registerOpenApi(app, rest.version);
    registerRouteAuth(app, rest.auth);
    registerAuthRoutes(app, rest.auth, rest.tokens);
    registerUserRoutes(app, rest.users);
    const marketplace = rest.jobs?.marketplace;
    registerAdminRoutes(
      app,
      rest.admin,
      rest.auth,
      marketplace === undefined ? undefined : (userId) => retireLockedAccount(marketplace, userId),
    );
    registerRoomRoutes(app, rest.rooms);
    if (rest.payments !== undefined) registerPaymentRoutes(app, rest.payments);
    if (rest.wallet !== undefined) registerWalletRoutes(app, rest.wallet);
    if (rest.jobs !== undefined) registerJobRoutes(app, rest.jobs);
    if (rest.notifications !== undefined) registerNotificationRoutes(app, rest.notifications);
    if (rest.reviews !== undefined) {
      registerReviewRoutes(app, rest.reviews);
      registerCategoryRoutes(app, rest.reviews.marketplace);
    }
    if (rest.contracts !== undefined) registerContractRoutes(app, rest.contracts);
    if (rest.console !== undefined) await registerConsole(app, rest.console);
    // Last: its routes are only the built files, so it cannot take a path of the API.
    if (rest.web !== undefined) await registerWebApp(app, rest.web);
  }
  await app.ready();
  return app;
}
