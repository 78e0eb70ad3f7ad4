/**
 * The web app (web/, built to web/dist by Vite) at `/` for the `api` and `all` roles.
 *
 * - Only the files the build wrote are routes (`wildcard: false`), so `/` never shadows /v1,
 *   /health, /metrics, /admin, /ws, /docs or /openapi.json, and unknown paths stay problem+json 404s.
 * - Cache: files under assets/ (of the web root: the path is taken relative to it) carry a content
 *   hash in their name → a year, immutable; index.html (and anything else) `no-cache`, so a new
 *   build is picked up at the next load.
 * - The pages the mails link to (`/verify-email`, `/reset-password`, `/forgot-password`, with the
 *   token in the query) answer with the app's index.html; the app shows the screen by path.
 * - Compression: the build writes .br and .gz beside each file (scripts/web-build.mjs);
 *   `preCompressed` picks one by Accept-Encoding, so no CPU is spent per request.
 * - CSP: scripts, styles and connections from this origin only (the WebSocket at /ws of the same
 *   host, listed by scheme too for browsers before CSP 3's 'self' matching of ws:); no inline code.
 * - Without a build the server still starts: `/` answers 503 with a note saying how to build.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyRequest } from 'fastify';

export interface WebAppOptions {
  /** The build output (web/dist). */
  readonly root: string;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';

/** Paths the mails link to (src/workers/emails/templates.ts): the app, which shows them by path. */
export const WEB_APP_LINK_PATHS = ['/verify-email', '/reset-password', '/forgot-password'] as const;

/** Whether a served file lies in the build's assets/ folder (hashed names), by its path under `root`. */
export function isHashedAsset(root: string, file: string): boolean {
  const inRoot = relative(root, file);
  if (inRoot === '' || isAbsolute(inRoot) || inRoot.startsWith('..')) return false;
  return inRoot.split(sep)[0] === 'assets' && inRoot.split(sep).length > 1;
}

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
      for (const path of ['/', ...WEB_APP_LINK_PATHS]) {
        scope.get(path, { schema: { hide: true } }, async (_request, reply) =>
          reply
            .status(503)
            .header('cache-control', 'no-store')
            .header('retry-after', '10')
            .type('text/html; charset=utf-8')
            .send(MISSING_BUILD),
        );
      }
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
        reply.header('cache-control', isHashedAsset(options.root, path) ? IMMUTABLE : 'no-cache');
      },
    });
    // The mailed links: the app's page (no-cache, like index.html; the token stays in the query,
    // which the app removes from the address bar, and the page sends no referrer).
    for (const path of WEB_APP_LINK_PATHS) {
      scope.get(path, { schema: { hide: true } }, async (_request, reply) => reply.sendFile('index.html'));
    }
  });
}
