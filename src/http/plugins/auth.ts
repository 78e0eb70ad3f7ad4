/**
 * Route access: every /v1 route declares `config.auth` (`public`, `user` or `admin`); one onRequest
 * hook enforces it from the Bearer token, so a route cannot forget to. A /v1 route without a
 * declaration fails at start-up. Authenticated routes get `request.principal`; plugins/openapi.ts
 * derives each operation's OpenAPI security requirement from the same declaration.
 *
 * Registered after plugins/security.ts (buildApp): its per-IP limit is an earlier instance hook, so
 * a request is counted before its token is checked, and a flood of bad tokens meets 429.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthService, Principal } from '../../domain/auth/service.js';
import { AppError } from '../../platform/errors.js';

export type RouteAuth = 'public' | 'user' | 'admin';

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}

/** The principal of an authenticated route (its hook already ran). */
export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === undefined) throw new AppError('UNAUTHORIZED', 'authentication required');
  return request.principal;
}

function bearerToken(request: FastifyRequest): string {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer +([A-Za-z0-9._~+/=-]+)$/i.exec(header) : null;
  if (match?.[1] === undefined) throw new AppError('UNAUTHORIZED', 'a Bearer access token is required');
  return match[1];
}

export function registerRouteAuth(app: FastifyInstance, auth: AuthService): void {
  app.decorateRequest('principal', undefined);
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/v1/')) return;
    const declared = route.config?.auth;
    if (declared === undefined)
      throw new Error(`route ${route.method} ${route.url} does not declare config.auth`);
  });
  // Callback style, not async: a request whose token and session this node already holds is
  // admitted synchronously (authenticateNow), without the promises of the loading path.
  app.addHook('onRequest', (request, _reply, done) => {
    const required = request.routeOptions.config.auth;
    if (required === undefined || required === 'public') {
      done();
      return;
    }
    const admit = (principal: Principal) => {
      request.principal = principal;
      if (required === 'admin' && !principal.roles.includes('admin')) {
        done(new AppError('FORBIDDEN', 'admin role required'));
        return;
      }
      done();
    };
    let token: string;
    let known: Principal | undefined;
    try {
      token = bearerToken(request);
      known = auth.authenticateNow(token);
    } catch (error) {
      done(error as Error);
      return;
    }
    if (known !== undefined) admit(known);
    else auth.authenticate(token).then(admit, done);
  });
}
