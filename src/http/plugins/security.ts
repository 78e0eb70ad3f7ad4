/**
 * Helmet headers, the CORS allowlist and per-IP rate limiting. The per-IP limit is counted in this
 * process's memory, not in Redis: it guards each api process against floods, costs no round trip per
 * request, and keeps working while Redis is down; what must hold across nodes (login throttling) is
 * counted in Redis by the auth service.
 *
 * The limit counts every request of a limited route before anything else decides about it (route
 * access in plugins/auth.ts above all: a refused token costs a signature check and a log line), and
 * counts a client as login throttling and the WebSocket upgrade limit do: an IPv4 address or an
 * IPv6 /64 (`clientNetwork`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import helmet from 'helmet';
import { clientNetwork } from '../../platform/client-network.js';
import { AppError } from '../../platform/errors.js';
import { createLocalRateLimit } from '../../platform/local-rate-limit.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Set by registerSecurity on every route declared after it (the REST API, /openapi.json and
     * /docs, the console, the web app): those are counted by the per-IP limit. Routes declared
     * before it are not: /health/ and /metrics (probes and scrapers), and the WebSocket route,
     * which has its own per-network upgrade limit. A route may opt out with `false` (the payment
     * provider's signed webhooks).
     */
    perIpLimited?: boolean;
  }
}

export interface SecurityOptions {
  readonly corsOrigins: readonly string[];
  readonly rateLimitPerMinute: number;
}

/**
 * The headers helmet's default configuration sets, computed once. Every one of them is static (no
 * CSP nonces, no directive functions), so running helmet per request (as @fastify/helmet does: it
 * builds the middleware and parses the CSP directives again for each request) bought nothing and
 * was a tenth of a small request's CPU.
 *
 * Less one directive: `upgrade-insecure-requests`. It is sent whatever the scheme, and on a page
 * served over plain HTTP (Swagger UI at /docs on any host but loopback) it sends the page's own
 * scripts and styles to an https:// that does not exist: a blank page. A page served over HTTPS
 * loads them from its own https:// origin anyway; the web app and the console add the directive
 * themselves when the request came over HTTPS.
 */
export function helmetHeaders(): ReadonlyArray<readonly [string, string]> {
  const headers: Array<readonly [string, string]> = [];
  const recorder = {
    setHeader: (name: string, value: string | number | readonly string[]) => {
      headers.push([name, String(value)]);
    },
    removeHeader: () => {},
  };
  const policy = { directives: { upgradeInsecureRequests: null } };
  helmet({ contentSecurityPolicy: policy })(
    {} as IncomingMessage,
    recorder as unknown as ServerResponse,
    () => {},
  );
  return headers;
}

/**
 * helmetHeaders() with lower-case names: what registerSecurity sets on every request, and what
 * buildApp sets on the answer to a path Fastify cannot route, given before any hook runs, which
 * went out without them (review 25).
 */
export function securityHeaders(): ReadonlyArray<readonly [string, string]> {
  return helmetHeaders().map(([name, value]) => [name.toLowerCase(), value] as const);
}

/**
 * Counts a request against its client's per-IP budget: the 429 (RATE_LIMITED, with `retryAfterS`)
 * to answer when the client is over it, else undefined.
 */
export type PerIpLimit = (request: FastifyRequest) => AppError | undefined;

/** Returns the per-IP limit, for the answers given before any hook runs (buildApp's frameworkErrors). */
export async function registerSecurity(app: FastifyInstance, options: SecurityOptions): Promise<PerIpLimit> {
  const headers = securityHeaders();
  // Through Fastify's reply headers, not the raw response: the reply's headers are a plain object
  // written once by writeHead, while each raw setHeader validates the name and value and makes Node
  // merge the two header sets when the head is written (~3 % of GET /v1/me's CPU for 12 headers).
  // A route that sets its own header through the reply later (the web app's and the console's
  // content-security-policy) replaces the value, as before.
  const limit = createLocalRateLimit({
    max: options.rateLimitPerMinute,
    windowMs: 60_000,
    // Distinct clients remembered at once (least recently seen dropped first): bounded memory.
    maxKeys: 10_000,
  });
  const overLimit: PerIpLimit = (request) => {
    const retryAfterS = limit(clientNetwork(request.ip));
    return retryAfterS === undefined
      ? undefined
      : new AppError('RATE_LIMITED', `too many requests from this address; retry in ${retryAfterS} s`, {
          details: { retryAfterS },
        });
  };
  // Every OPTIONS is counted here, before the CORS hooks below: they answer a preflight (or refuse an
  // OPTIONS that is no preflight) themselves, so the limit's own hook further down never saw one, nor
  // did it count the OPTIONS answered 404 without CORS_ORIGINS (CORS's catch-all route is not marked
  // limited): a client could send OPTIONS without limit (review 30). In the headers' hook, so other
  // requests pay no hook more.
  app.addHook('onRequest', (request, reply, done) => {
    for (const [name, value] of headers) reply.header(name, value);
    if (request.method === 'OPTIONS') done(overLimit(request));
    else done();
  });
  if (options.corsOrigins.length > 0) {
    // @fastify/cors answers an OPTIONS without Origin or Access-Control-Request-Method (no browser's
    // preflight) with a text/plain 400 "Invalid Preflight Request", the only error of the API that
    // was not problem+json with a code (review 25). The same 400, as problem+json; before the
    // plugin's hook, which would answer first.
    app.addHook('onRequest', (request, _reply, done) => {
      const { headers: sent } = request;
      if (
        request.method !== 'OPTIONS' ||
        (sent.origin !== undefined && sent['access-control-request-method'] !== undefined)
      ) {
        done();
        return;
      }
      const message =
        'OPTIONS is a CORS preflight here: Origin and Access-Control-Request-Method are required';
      done(
        new AppError('VALIDATION_FAILED', message, {
          details: { errors: [{ path: 'headers', message }] },
        }),
      );
    });
  }
  await app.register(cors, {
    // No allowlist, no cross-origin access: browsers on other origins are refused by default.
    origin: options.corsOrigins.length > 0 ? [...options.corsOrigins] : false,
    credentials: false,
    // Every method the API has: @fastify/cors answers a preflight with only GET, HEAD and POST by
    // default, so a browser app on an allowed origin could not PATCH /v1/me, PUT a password or
    // DELETE a contact (review 22).
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    // What a browser app needs to read: the request id to quote, when to retry, and whether a
    // retried command was answered from its Idempotency-Key (the SDK's REST client).
    // `date`: the SDK counts an HTTP-date Retry-After from the answer's own Date, not the device's
    // clock (protocol/src/client/rest.ts); Date is not a CORS-safelisted header.
    exposedHeaders: ['x-request-id', 'retry-after', 'idempotent-replayed', 'date'],
  });
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, perIpLimited: route.config?.perIpLimited ?? true };
  });
  // MUST stay an instance hook added before the auth hook (buildApp's order): route hooks run after
  // the instance's, so a per-route limit would count nothing that route access refuses (401s).
  // Synchronous, no promise. One key per client as login throttling and the upgrade limit count
  // them: rotating addresses inside one IPv6 /64 buys no new budgets (nor flushes other clients
  // out of the memory). Over the limit: RATE_LIMITED problem+json with Retry-After (errors.ts).
  app.addHook('onRequest', (request, _reply, done) => {
    const { perIpLimited } = request.routeOptions.config;
    // A path no route answers (404, or 405 for another method) is counted too: the not-found
    // handler's requests were the one kind a client could send without limit, each with its log
    // lines (review 25).
    // An OPTIONS was counted by the hook before CORS's.
    if (
      request.method === 'OPTIONS' ||
      perIpLimited === false ||
      (perIpLimited === undefined && !request.is404)
    ) {
      done();
      return;
    }
    done(overLimit(request));
  });
  return overLimit;
}
