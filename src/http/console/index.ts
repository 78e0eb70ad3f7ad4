/**
 * The operators' console: bull-board at /admin/queues, for admins only, with a cookie sign-in at
 * /admin/sign-in (a browser cannot send a Bearer header). See README.md beside this file.
 *
 * Access to /admin/queues and everything under it (page, static files, API):
 * - a Bearer access token of an admin (scripts), or the console cookie of a live admin session;
 * - nobody signed in: the page redirects to the sign-in form, the API and static files answer 401;
 * - signed in but not an admin: 403.
 * Every request that is not GET/HEAD, sign-in included, must come from this site (Sec-Fetch-Site
 * `same-origin`, or without it an Origin equal to this server's or PUBLIC_URL's), unless it carries
 * an `Authorization: Bearer` header, which no cross-site page can add (another scheme, e.g. the Basic
 * auth of a proxy in front, is ignored: the browser adds that one by itself). The cookie is
 * SameSite=Strict too.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ErrorCode } from '../../../protocol/src/codes.js';
import type { AuthService } from '../../domain/auth/service.js';
import type { ConsoleAccess, ConsoleSessions } from '../../domain/console/sessions.js';
import { isAppError, isDependencyUnavailable } from '../../platform/errors.js';
import { UNAVAILABLE_RETRY_AFTER_S } from '../plugins/errors.js';
import { PROBLEM_CONTENT_TYPE, problem, statusByCode } from '../problem.js';
import { forbiddenPage, signedInPage, signInPage } from './pages.js';

export const CONSOLE_PATH = '/admin/queues';
export const SIGN_IN_PATH = '/admin/sign-in';
export const SIGN_OUT_PATH = '/admin/sign-out';

export interface ConsoleDeps {
  readonly sessions: ConsoleSessions;
  readonly auth: Pick<AuthService, 'authenticate'>;
  /** Every queue the console shows: one per queue named in the task definitions. */
  readonly queues: readonly Queue[];
  /** PUBLIC_URL: its origin is accepted for unsafe requests besides the request's own. */
  readonly publicUrl?: string;
}

/** `__Host-` binds the cookie to this exact origin, but browsers accept it only with Secure. */
const cookieName = (secure: boolean) => (secure ? '__Host-gigwire_console' : 'gigwire_console');

/** Own pages: no scripts; bull-board's: scripts and styles from here only (its web fonts are dropped). */
const contentSecurityPolicy = (secure: boolean) =>
  [
    "default-src 'self'",
    "base-uri 'self'",
    "connect-src 'self'",
    "font-src 'self' data:",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "img-src 'self' data:",
    "object-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    // Only over HTTPS: on plain HTTP it would send the browser to an https:// that does not exist.
    ...(secure ? ['upgrade-insecure-requests'] : []),
  ].join('; ');

const isSecure = (request: FastifyRequest) => request.protocol === 'https';

/**
 * The request's `Authorization: Bearer …` header, or undefined. Only the Bearer scheme is a
 * credential of the console (and exempts a request from the same-site check): another scheme is a
 * proxy's, e.g. HTTP Basic auth an operator put in front of /admin/, which the browser sends with
 * every request there, cross-site form posts included. Taken for a credential it hid the cookie
 * (a signed-in admin was sent back to the sign-in form forever) and waived the same-site check.
 */
const bearerHeader = (request: FastifyRequest): string | undefined => {
  const header = request.headers.authorization;
  return header !== undefined && /^bearer(?:\s|$)/i.test(header.trimStart()) ? header : undefined;
};

type RouteParams = Readonly<Record<string, string | undefined>>;

/**
 * What an admin may do to queues here: every read, and the repairs an operator needs (retry,
 * pause and resume, cleaning finished tasks). Not offered, whatever bull-board's own UI has: adding
 * a task or rewriting one's data (an admin could pay out any escrow with a forged `payments.escrow`
 * task), promoting delayed tasks (an auto-approve timer run now would pay a worker before the
 * hirer's review period ended), emptying or obliterating a queue or removing a task that has not run
 * (money and mail would be lost), changing concurrency, rate limits, delays or priorities.
 *
 * The bull-board routes (below CONSOLE_PATH) an admin may call with PUT, decided on the route the
 * router matched and its decoded parameters, never on the raw path: the router decodes
 * percent-escapes, so `…/%63lean/retry` was shaped like one task's retry to a pattern on the path
 * and reached "clean every task of a status" all the same.
 */
const REPAIR_ROUTES: ReadonlyMap<string, (params: RouteParams) => boolean> = new Map([
  ['/api/queues/pause', () => true],
  ['/api/queues/resume', () => true],
  ['/api/queues/:queueName/pause', () => true],
  ['/api/queues/:queueName/resume', () => true],
  ['/api/queues/:queueName/retry/:queueStatus', (params: RouteParams) => params.queueStatus === 'failed'],
  [
    '/api/queues/:queueName/clean/:queueStatus',
    (params: RouteParams) => params.queueStatus === 'failed' || params.queueStatus === 'completed',
  ],
  // One task's retry (the router prefers the static words, so `clean/retry` is never this route).
  ['/api/queues/:queueName/:jobId/retry', () => true],
]);

/**
 * Whether a request to the console is a read or one of the repairs offered. `route` is the pattern
 * the router matched (`request.routeOptions.url`, undefined when none did), `params` its decoded
 * parameters.
 */
export function isRepairAction(method: string, route: string | undefined, params: RouteParams): boolean {
  if (method === 'GET' || method === 'HEAD') return true;
  if (method !== 'PUT' || route === undefined || !route.startsWith(`${CONSOLE_PATH}/`)) return false;
  return REPAIR_ROUTES.get(route.slice(CONSOLE_PATH.length))?.(params) ?? false;
}

function readCookie(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (header === undefined) return undefined;
  const wanted = cookieName(isSecure(request));
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === wanted) return part.slice(at + 1).trim();
  }
  return undefined;
}

function setCookie(request: FastifyRequest, reply: FastifyReply, value: string, maxAgeS: number): void {
  const secure = isSecure(request);
  reply.header(
    'set-cookie',
    `${cookieName(secure)}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure ? '; Secure' : ''}`,
  );
}

/** Why an unsafe request is refused as cross-site, or undefined when it comes from this site. */
export function crossSiteReason(
  headers: { readonly origin?: string | undefined; readonly 'sec-fetch-site'?: string | undefined },
  allowedOrigins: readonly string[],
): string | undefined {
  const site = headers['sec-fetch-site'];
  // Set by the browser and out of reach of page scripts: when present, it decides.
  if (site !== undefined) return site === 'same-origin' ? undefined : `Sec-Fetch-Site is ${site}`;
  const origin = headers.origin;
  if (origin === undefined) return 'neither Sec-Fetch-Site nor Origin is present';
  return allowedOrigins.includes(origin) ? undefined : `Origin ${origin} is not this site`;
}

function sendProblem(request: FastifyRequest, reply: FastifyReply, code: ErrorCode, detail: string) {
  const context = { instance: request.url.split('?')[0] ?? '/', requestId: request.id };
  return reply
    .status(statusByCode[code])
    .type(PROBLEM_CONTENT_TYPE)
    .send(problem(code, detail, context));
}

/**
 * A failure of the access check itself (the database or Redis down) answered as the REST API
 * answers it. Thrown, it would reach bull-board's error handler, which owns every route under
 * CONSOLE_PATH and answers any error as a 500 carrying the raw message (a database's name, host and
 * port, SQL) — to anyone, since a cookie of the right shape is looked up before anything is known
 * of its caller.
 */
function sendCheckFailure(request: FastifyRequest, reply: FastifyReply, error: unknown) {
  if (isAppError(error)) {
    const retryAfterS = error.details?.retryAfterS;
    if (typeof retryAfterS === 'number') reply.header('retry-after', String(retryAfterS));
    return sendProblem(request, reply, error.code, error.message);
  }
  const { code, detail } = answerFailure(request, reply, error, 'console access check');
  return sendProblem(request, reply, code, detail);
}

/**
 * Logs an unexpected failure under `what` and says how to answer it, as the REST API would: a
 * dependency unavailable is 503 UNAVAILABLE with Retry-After (set here), anything else INTERNAL.
 * Neither says what failed.
 */
function answerFailure(
  request: FastifyRequest,
  reply: FastifyReply,
  error: unknown,
  what: string,
): { readonly code: ErrorCode; readonly detail: string } {
  if (isDependencyUnavailable(error)) {
    request.log.warn({ code: 'UNAVAILABLE', err: error }, `${what}: dependency unavailable`);
    reply.header('retry-after', String(UNAVAILABLE_RETRY_AFTER_S));
    return { code: 'UNAVAILABLE', detail: 'a service this request needs is unavailable; retry later' };
  }
  request.log.error({ err: error }, `${what} failed`);
  return { code: 'INTERNAL', detail: 'An internal error occurred; quote the requestId when reporting it.' };
}

/** Longer than any link into the console; a longer `next` is dropped, not the sign-in. */
const MAX_NEXT_LENGTH = 2000;

/**
 * Only a path of the console itself may be a sign-in's destination (no open redirect), written in
 * printable ASCII as a URL is (the redirect to sign-in percent-encodes it so): it becomes the
 * Location header, and a control character there (`next=/admin/queues%23%01` in a link sent to an
 * admin) made Node refuse the header, a bare 500 after the password was taken and a session begun.
 */
function safeNext(next: unknown): string {
  return typeof next === 'string' &&
    next.length <= MAX_NEXT_LENGTH &&
    /^\/admin\/queues(?:[/?#][\x21-\x5b\x5d-\x7e]*)?$/.test(next) &&
    !next.includes('//')
    ? next
    : CONSOLE_PATH;
}

/** Not part of the REST API: kept out of the OpenAPI document. */
const HIDDEN = { schema: { hide: true } };

const SignInForm = z.object({
  login: z.string().trim().min(1).max(320),
  password: z.string().min(1).max(1024),
  // Anything: safeNext decides, and one it refuses sends the admin to the console's page. Refused
  // here, a sign-in from a link with a long `next` failed as "Enter your login and password."
  next: z.unknown().optional(),
});

export async function registerConsole(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  const publicOrigin = deps.publicUrl === undefined ? undefined : new URL(deps.publicUrl).origin;

  const accessOf = async (request: FastifyRequest): Promise<ConsoleAccess> => {
    const authorization = bearerHeader(request);
    if (authorization !== undefined) {
      const match = /^Bearer +([A-Za-z0-9._~+/=-]+)$/i.exec(authorization);
      if (match?.[1] === undefined) return { kind: 'none' };
      try {
        const principal = await deps.auth.authenticate(match[1]);
        return principal.roles.includes('admin')
          ? { kind: 'admin', userId: principal.userId, sessionId: principal.sessionId }
          : { kind: 'forbidden', userId: principal.userId };
      } catch (error) {
        if (isAppError(error) && error.code === 'UNAUTHORIZED') return { kind: 'none' };
        throw error;
      }
    }
    return deps.sessions.check(readCookie(request));
  };

  await app.register(async (scope) => {
    // Form posts of the sign-in page; only in this scope, the REST API stays JSON-only.
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 8 * 1024 },
      (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
    );

    scope.addHook('onRequest', async (request, reply) => {
      reply.header('content-security-policy', contentSecurityPolicy(isSecure(request)));
      reply.header('cache-control', 'no-store');
      if (request.method === 'GET' || request.method === 'HEAD') return;
      if (bearerHeader(request) !== undefined) return;
      const own = `${request.protocol}://${request.host}`;
      const reason = crossSiteReason(
        {
          origin: request.headers.origin,
          'sec-fetch-site': request.headers['sec-fetch-site'] as string | undefined,
        },
        publicOrigin === undefined ? [own] : [own, publicOrigin],
      );
      if (reason !== undefined) {
        request.log.info({ reason }, 'cross-site console request refused');
        return sendProblem(request, reply, 'FORBIDDEN', `cross-site request refused: ${reason}`);
      }
    });

    scope.get(SIGN_IN_PATH, HIDDEN, async (request, reply) => {
      const access = await deps.sessions.check(readCookie(request));
      const next = safeNext((request.query as { next?: unknown }).next);
      reply.type('text/html; charset=utf-8');
      return access.kind === 'admin' ? signedInPage() : signInPage({ next });
    });

    scope.post(SIGN_IN_PATH, HIDDEN, async (request, reply) => {
      reply.type('text/html; charset=utf-8');
      const form = SignInForm.safeParse(request.body);
      if (!form.success)
        return reply
          .status(400)
          .send(signInPage({ next: CONSOLE_PATH, error: 'Enter your login and password.' }));
      const next = safeNext(form.data.next);
      try {
        const signedIn = await deps.sessions.signIn(form.data.login, form.data.password, {
          ip: request.ip,
          userAgent: request.headers['user-agent']?.slice(0, 300) ?? null,
        });
        setCookie(request, reply, signedIn.token, signedIn.maxAgeS);
        return reply.status(303).header('location', next).send('');
      } catch (error) {
        if (!isAppError(error)) throw error;
        const retryAfterS = error.details?.retryAfterS;
        if (typeof retryAfterS === 'number') reply.header('retry-after', String(retryAfterS));
        const message: Partial<Record<ErrorCode, string>> = {
          UNAUTHORIZED: 'Wrong login or password.',
          FORBIDDEN: 'This account is not an admin.',
          RATE_LIMITED: 'Too many failed sign-ins; try again later.',
        };
        const shown = message[error.code];
        if (shown === undefined) throw error;
        request.log.info({ code: error.code }, 'console sign-in refused');
        return reply.status(statusByCode[error.code]).send(signInPage({ next, error: shown }));
      }
    });

    scope.get(SIGN_OUT_PATH, HIDDEN, async (request, reply) => {
      const access = await deps.sessions.check(readCookie(request));
      if (access.kind === 'none') return reply.redirect(SIGN_IN_PATH, 303);
      return reply.type('text/html; charset=utf-8').send(signedInPage());
    });

    scope.post(SIGN_OUT_PATH, HIDDEN, async (request, reply) => {
      await deps.sessions.signOut(readCookie(request));
      setCookie(request, reply, '', 0);
      return reply.redirect(SIGN_IN_PATH, 303);
    });

    // bull-board, behind the access check of every request under CONSOLE_PATH.
    await scope.register(async (board) => {
      board.addHook('onRequest', async (request, reply) => {
        let access: ConsoleAccess;
        try {
          access = await accessOf(request);
        } catch (error) {
          return sendCheckFailure(request, reply, error);
        }
        if (access.kind === 'admin') {
          if (isRepairAction(request.method, request.routeOptions.url, request.params as RouteParams)) return;
          return sendProblem(
            request,
            reply,
            'FORBIDDEN',
            'the console watches and repairs queues (retry failed tasks, pause, resume, clean failed or completed tasks); this action is not offered',
          );
        }
        const path = request.url.split('?')[0] ?? '';
        const isPage =
          (request.method === 'GET' || request.method === 'HEAD') &&
          !path.startsWith(`${CONSOLE_PATH}/api/`) &&
          !path.startsWith(`${CONSOLE_PATH}/static/`);
        if (access.kind === 'forbidden') {
          if (isPage) return reply.status(403).type('text/html; charset=utf-8').send(forbiddenPage());
          return sendProblem(request, reply, 'FORBIDDEN', 'admin role required');
        }
        if (isPage) return reply.redirect(`${SIGN_IN_PATH}?next=${encodeURIComponent(request.url)}`, 302);
        reply.header('www-authenticate', 'Bearer realm="gigwire"');
        return sendProblem(
          request,
          reply,
          'UNAUTHORIZED',
          'sign in at /admin/sign-in (or send an admin Bearer token)',
        );
      });
      // bull-board's error handler owns its routes and answers any failure (the queue list while
      // Redis is unreachable, say) 500 with the raw error's message: ioredis names the host and port.
      // Such an answer is replaced by the REST API's for the same failure, logged with its request.
      const failures = new WeakMap<FastifyRequest, unknown>();
      board.addHook('onError', async (request, _reply, error) => {
        failures.set(request, error);
      });
      board.addHook('onSend', async (request, reply, payload) => {
        if (!failures.has(request) || reply.statusCode < 500) return payload;
        const { code, detail } = answerFailure(request, reply, failures.get(request), 'console');
        reply.status(statusByCode[code]).type(PROBLEM_CONTENT_TYPE);
        return JSON.stringify(
          problem(code, detail, { instance: request.url.split('?')[0] ?? '/', requestId: request.id }),
        );
      });
      const serverAdapter = new FastifyAdapter();
      serverAdapter.setBasePath(CONSOLE_PATH);
      createBullBoard({
        queues: deps.queues.map((queue) => new BullMQAdapter(queue)),
        serverAdapter,
        options: {
          uiConfig: {
            boardTitle: 'gigwire',
            hideDocsLink: true,
            miscLinks: [{ text: 'Sign out', url: SIGN_OUT_PATH }],
          },
        },
      });
      await board.register(serverAdapter.registerPlugin(), { prefix: CONSOLE_PATH });
    });
  });
}
