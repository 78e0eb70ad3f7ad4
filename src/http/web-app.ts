/**
 * The web app (web/, built to web/dist by Vite) at `/` for the `api` and `all` roles.
 *
 * - Only the files the build wrote are routes (`wildcard: false`), so `/` never shadows /v1,
 *   /health, /metrics, /admin, /ws, /docs or /openapi.json, and unknown paths stay problem+json 404s.
 * - Cache: files under assets/ carry a content hash in their name → a year, immutable; index.html
 *   (and anything else) `no-cache`, so a new build is picked up at the next load.
 * - Compression: the build writes .br and .gz beside each file (scripts/web-build.mjs);
 *   `preCompressed` picks one by Accept-Encoding, so no CPU is spent per request.
 * - CSP: scripts, styles and connections from this origin only (the WebSocket at /ws of the same
 *   host, listed by scheme too for browsers before CSP 3's 'self' matching of ws:); no inline code.
 * - Without a build the server still starts: `/` answers 503 with a note saying how to build.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyRequest } from 'fastify';

export interface WebAppOptions {
  /** The build output (web/dist). */
  readonly root: string;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';

export const webContentSecurityPolicy = (request: FastifyRequest) => {
  const secure = request.protocol === 'https';
  return [
    "default-src 'self'",
    "base-uri 'self'",
    `connect-src 'self' ${secure ? 'wss' : 'ws'}://${request.host}`,
    "form-action 'self'",
    "frame-ancestors 'none'",
    "img-src 'self' data:",
    "object-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    ...(secure ? ['upgrade-insecure-requests'] : []),
  ].join('; ');
};

const MISSING_BUILD = `<!doctype html><html lang="en"><meta charset="utf-8"><title>gigwire</title>
<h1>The web app is not built</h1>
<p>This server runs, but web/dist is missing. Build the app with <code>node scripts/web-build.mjs</code>
(<code>npm start</code> does it when needed), then reload. The API is at <a href="/docs">/docs</a>.</p></html>`;

export async function registerWebApp(app: FastifyInstance, options: WebAppOptions): Promise<void> {
  await app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      reply.header('content-security-policy', webContentSecurityPolicy(request));
    });
    if (!existsSync(join(options.root, 'index.html'))) {
      app.log.warn({ root: options.root }, 'web app not built: / answers 503');
      scope.get('/', { schema: { hide: true } }, async (_request, reply) =>
        reply
          .status(503)
          .header('cache-control', 'no-store')
          .header('retry-after', '10')
          .type('text/html; charset=utf-8')
          .send(MISSING_BUILD),
      );
      return;
    }
    await scope.register(fastifyStatic, {
      root: options.root,
      prefix: '/',
      wildcard: false,
      index: ['index.html'],
      preCompressed: true,
      // The compressed twins are served in place of their originals, never under their own names.
      globIgnore: ['**/*.br', '**/*.gz'],
      cacheControl: false,
      setHeaders: (reply, path) => {
        reply.header('cache-control', path.includes('/assets/') ? IMMUTABLE : 'no-cache');
      },
    });
  });
}
