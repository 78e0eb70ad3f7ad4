/**
 * Turns every failure into problem+json with a stable code: AppErrors by the code table, Fastify's
 * own errors (bad JSON, body too large, schema validation) by their status, a database or Redis
 * that cannot be reached UNAVAILABLE (503, "retry later"), anything else INTERNAL, logged once here
 * with the request id.
 */
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import type { ErrorCode } from '../../../protocol/src/codes.js';
import { type AppError, isAppError, isDependencyUnavailable } from '../../platform/errors.js';
import { PROBLEM_CONTENT_TYPE, problem, statusByCode } from '../problem.js';

/**
 * Retry-After of a 503 for a dependency that cannot serve now (and of one from a node shutting
 * down): a hint, so clients back off a little instead of hammering a failing-over database.
 */
export const UNAVAILABLE_RETRY_AFTER_S = 2;

function codeForFastifyError(error: FastifyError): ErrorCode | undefined {
  if (error.validation !== undefined) return 'VALIDATION_FAILED';
  switch (error.statusCode) {
    case 400:
      return 'VALIDATION_FAILED';
    case 415:
      return 'UNSUPPORTED_MEDIA_TYPE';
    case 404:
      return 'NOT_FOUND';
    case 413:
      return 'PAYLOAD_TOO_LARGE';
    case 429:
      return 'RATE_LIMITED';
    case 503:
      return 'UNAVAILABLE';
    case 401:
      return 'UNAUTHORIZED';
    case 403:
      return 'FORBIDDEN';
    case 405:
      return 'METHOD_NOT_ALLOWED';
    case 409:
      return 'CONFLICT';
    default:
      // Any other client error a plugin raises with its HTTP status, such as @fastify/static's 416
      // for a Range beyond the file and 412 for a failed If-Match: the request's fault, kept with
      // its status (they were 500 INTERNAL, each logged as an unhandled error; review 25).
      return isClientError(error.statusCode) ? 'VALIDATION_FAILED' : undefined;
  }
}

const isClientError = (status: number | undefined): status is number =>
  status !== undefined && status >= 400 && status < 500;

/**
 * Fastify's `frameworkErrors`: failures found before routing (a path that is not valid
 * percent-encoded UTF-8, a path parameter over maxParamLength, a failed async constraint) never
 * reach the error handler. Without this they answer Fastify's own JSON, which names Fastify's
 * internal error code and echoes the raw path; with it they are problem+json like every other error.
 */
export function frameworkErrorHandler(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
  /** The per-IP limit's 429 when the client is over it (a REST process counts these requests too). */
  rateLimited?: AppError,
): void {
  const context = { instance: request.url.split('?')[0] ?? '/', requestId: request.id };
  reply.header('x-request-id', request.id);
  // No hook ran, so neither did app.ts's `no-store` for /v1/ paths: an error is never worth keeping.
  reply.header('cache-control', 'no-store');
  if (rateLimited !== undefined) {
    const retryAfterS = rateLimited.details?.retryAfterS;
    if (typeof retryAfterS === 'number') reply.header('retry-after', String(retryAfterS));
    request.log.info({ code: rateLimited.code, reason: error.code }, 'request rejected before routing');
    void reply
      .status(statusByCode[rateLimited.code])
      .type(PROBLEM_CONTENT_TYPE)
      .send(problem(rateLimited.code, rateLimited.message, context, rateLimited.details ?? {}));
    return;
  }
  const code: ErrorCode = (error.statusCode ?? 500) >= 500 ? 'INTERNAL' : 'VALIDATION_FAILED';
  request.log[code === 'INTERNAL' ? 'error' : 'info'](
    { code, reason: error.code },
    'request rejected before routing',
  );
  void reply
    .status(statusByCode[code])
    .type(PROBLEM_CONTENT_TYPE)
    .send(
      problem(
        code,
        code === 'INTERNAL'
          ? 'An internal error occurred; quote the requestId when reporting it.'
          : 'the request path is not valid (malformed percent-encoding or a parameter too long)',
        context,
      ),
    );
}

/**
 * Fastify's `clientErrorHandler`: what Node's HTTP parser refuses (headers over the size limit, a
 * malformed chunked body, raw bytes that are not a valid request line) never becomes a request, so
 * neither handler above sees it and Fastify would answer its own application/json. This writes the
 * same problem+json by hand, then closes the socket (the parser cannot go on after such an error).
 * Oversized headers keep their HTTP status 431 with the nearest stable code, PAYLOAD_TOO_LARGE; a
 * request that did not arrive within Node's requestTimeout keeps 408 with VALIDATION_FAILED.
 */
export function clientErrorHandler(
  this: FastifyInstance,
  error: Error & { code?: string },
  socket: Socket,
  /** Helmet's headers on a REST process, as every other answer of it has them (review 26). */
  extraHeaders: ReadonlyArray<readonly [string, string]> = [],
): void {
  // A reset or an already destroyed socket: nobody is left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, detail]: [number, ErrorCode, string] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'PAYLOAD_TOO_LARGE', 'the request headers are over the size limit']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'VALIDATION_FAILED', 'the request did not arrive in time']
        : [400, 'VALIDATION_FAILED', 'the request is not valid HTTP'];
  const requestId = randomUUID();
  this.log.debug({ code, reason: error.code, requestId }, 'request refused by the HTTP parser');
  answerOnSocket(socket, { status, code, detail, requestId }, extraHeaders);
}

/**
 * A CONNECT request (a forward proxy's tunnel: `CONNECT host:443 HTTP/1.1`). Node hands it to the
 * server's 'connect' listeners and, with none, destroys the socket unanswered: a client learnt
 * nothing (review 31). 405 problem+json naming the methods served, then the socket is closed
 * (nothing after a CONNECT's head is HTTP).
 */
export function connectRefused(
  this: FastifyInstance,
  socket: Duplex,
  extraHeaders: ReadonlyArray<readonly [string, string]> = [],
): void {
  const requestId = randomUUID();
  this.log.debug({ code: 'METHOD_NOT_ALLOWED', requestId }, 'CONNECT refused: this is no proxy');
  answerOnSocket(
    socket,
    {
      status: statusByCode.METHOD_NOT_ALLOWED,
      code: 'METHOD_NOT_ALLOWED',
      detail: 'CONNECT is not served here: this is an API, not a proxy',
      requestId,
    },
    [['allow', SERVED_METHODS], ...extraHeaders],
  );
}

/**
 * A request whose Expect is not `100-continue` (RFC 9110 §10.1.1: the only expectation defined).
 * Node answered it itself, a bare 417 without a body, helmet's headers or a request id (review 33).
 * The same 417 as problem+json (VALIDATION_FAILED, as a 408 or a 431 keep their status), closing
 * the connection as Node did: a body may follow that the client sends anyway.
 */
export function expectationRefused(
  this: FastifyInstance,
  request: IncomingMessage,
  response: ServerResponse,
  extraHeaders: ReadonlyArray<readonly [string, string]> = [],
): void {
  const requestId = randomUUID();
  const status = 417;
  this.log.debug({ code: 'VALIDATION_FAILED', requestId }, 'Expect refused: only 100-continue is met');
  const detail = 'the Expect header is not met here: only 100-continue is understood';
  const body = JSON.stringify({
    ...problem(
      'VALIDATION_FAILED',
      detail,
      { instance: pathOf(request.url), requestId },
      {
        errors: [{ path: 'headers.expect', message: 'only 100-continue is understood' }],
      },
    ),
    status,
  });
  try {
    response.writeHead(status, {
      'content-type': PROBLEM_CONTENT_TYPE,
      'content-length': String(Buffer.byteLength(body)),
      'x-request-id': requestId,
      'cache-control': 'no-store',
      ...Object.fromEntries(extraHeaders),
      connection: 'close',
    });
    response.end(body);
  } catch {
    // The socket went away meanwhile: nothing to answer.
    response.destroy();
  }
}

/** The path of a request target, without its query; `/` when it has none. */
const pathOf = (url: string | undefined): string => url?.split('?')[0] || '/';

/** The methods some route of the API answers (the `Allow` of a CONNECT's 405). */
const SERVED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/** Writes a whole problem+json answer on a socket no Fastify reply owns, then closes it. */
export function answerOnSocket(
  socket: Duplex,
  answer: {
    status: number;
    code: ErrorCode;
    detail: string;
    requestId: string;
    /** Echoed only when the parser accepted the path. */
    instance?: string;
    extensions?: Readonly<Record<string, unknown>>;
  },
  extraHeaders: ReadonlyArray<readonly [string, string]>,
): void {
  const { status, code, detail, requestId, instance = '/', extensions } = answer;
  // Like Node's own handler: no second answer on a socket whose response already started.
  const started = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (socket.writable && !started) {
    // The path is not echoed by default: it may be what the parser refused.
    const body = JSON.stringify({ ...problem(code, detail, { instance, requestId }, extensions), status });
    try {
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\ncache-control: no-store\r\n` +
          extraHeaders.map(([name, value]) => `${name}: ${value}\r\n`).join('') +
          `Connection: close\r\n\r\n${body}`,
      );
    } catch {
      // The socket went away meanwhile: nothing to answer.
    }
  }
  socket.destroy();
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const context = { instance: request.url.split('?')[0] ?? '/', requestId: request.id };
    // An error is never worth keeping, whatever the route set before it failed: the JWKS sets
    // `public, max-age=60` before reading the key set, so its 503 (database away) or 500 went out
    // cacheable by any shared cache for a minute (review 33).
    reply.header('cache-control', 'no-store');
    if (isAppError(error)) {
      // UNAVAILABLE (503 with Retry-After) is load shed or a dependency away, not a fault: warn, as
      // a dependency that cannot serve is logged below. At `error` a sign-in flood refused by the
      // password-hashing line wrote one error line, stack and all, per request (review 31).
      const level =
        error.code === 'UNAVAILABLE' ? 'warn' : statusByCode[error.code] >= 500 ? 'error' : 'info';
      const retryAfterS = error.details?.retryAfterS;
      // RFC 6750 §3: a 401 names the scheme it wants.
      if (error.code === 'UNAUTHORIZED') reply.header('www-authenticate', 'Bearer realm="gigwire"');
      // RFC 9110 §12.5.3: a 415 for a content coding names the codings that are read.
      if (error.code === 'UNSUPPORTED_MEDIA_TYPE' && error.details?.contentEncoding !== undefined)
        reply.header('accept-encoding', 'identity');
      if (typeof retryAfterS === 'number') reply.header('retry-after', String(retryAfterS));
      request.log[level]({ code: error.code, err: error }, 'request failed');
      return reply
        .status(statusByCode[error.code])
        .type(PROBLEM_CONTENT_TYPE)
        .send(problem(error.code, error.message, context, error.details ?? {}));
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const part = error.validationContext ?? 'body';
      const fieldErrors = error.validation.map((issue) => ({
        path: [part, ...issue.instancePath.split('/').filter((segment) => segment !== '')].join('.'),
        message: issue.message,
      }));
      request.log.info({ code: 'VALIDATION_FAILED', errors: fieldErrors }, 'request rejected');
      return reply
        .status(400)
        .type(PROBLEM_CONTENT_TYPE)
        .send(problem('VALIDATION_FAILED', `invalid ${part}`, context, { errors: fieldErrors }));
    }
    if (isResponseSerializationError(error)) {
      request.log.error({ err: error, issues: error.cause.issues }, 'response does not match its schema');
      return reply
        .status(500)
        .type(PROBLEM_CONTENT_TYPE)
        .send(
          problem('INTERNAL', 'An internal error occurred; quote the requestId when reporting it.', context),
        );
    }
    // PostgreSQL refuses U+0000 in text and jsonb: the client's input, not our fault.
    const sqlState = (error as { code?: unknown }).code;
    if (sqlState === '22021' || sqlState === '22P05') {
      request.log.info({ code: 'VALIDATION_FAILED', sqlState }, 'request rejected');
      return reply
        .status(400)
        .type(PROBLEM_CONTENT_TYPE)
        .send(problem('VALIDATION_FAILED', 'text must not contain U+0000', context));
    }
    if (isDependencyUnavailable(error)) {
      // A degraded dependency, not our fault: warn, and the client is told to retry, not what failed
      // (the message may name hosts or SQL).
      request.log.warn({ code: 'UNAVAILABLE', err: error }, 'dependency unavailable');
      return reply
        .status(statusByCode.UNAVAILABLE)
        .header('retry-after', String(UNAVAILABLE_RETRY_AFTER_S))
        .type(PROBLEM_CONTENT_TYPE)
        .send(problem('UNAVAILABLE', 'a service this request needs is unavailable; retry later', context));
    }
    const code = codeForFastifyError(error);
    if (code !== undefined) {
      request.log.info({ code, reason: error.message }, 'request rejected');
      // Fastify's detail repeats the title; say what is read instead.
      const detail =
        error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
          ? 'this route does not read a body of this Content-Type, or one without a Content-Type (the API reads application/json)'
          : error.message;
      // The error's own status when it is a client error (416, 412…), and its headers (a 416's
      // Content-Range: RFC 9110 §15.5.17), as Fastify's default handler would send them.
      const status = isClientError(error.statusCode) ? error.statusCode : statusByCode[code];
      const { headers } = error as { headers?: Record<string, string> };
      if (isClientError(error.statusCode) && headers !== undefined) reply.headers(headers);
      return reply
        .status(status)
        .type(PROBLEM_CONTENT_TYPE)
        .send({ ...problem(code, detail, context), status });
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply
      .status(500)
      .type(PROBLEM_CONTENT_TYPE)
      .send(
        problem('INTERNAL', 'An internal error occurred; quote the requestId when reporting it.', context),
      );
  });
  app.setNotFoundHandler((request, reply) => {
    const context = { instance: request.url.split('?')[0] ?? '/', requestId: request.id };
    // Outside /v1/ too (`/V1/ME`, `//v1/me`): a 404 or 405 is cacheable by default (RFC 9111 §4.2.2).
    reply.header('cache-control', 'no-store');
    const allow = methodsAnswering(app, context.instance, request.method);
    if (allow.length > 0) {
      // RFC 9110 §15.5.6: a 405 lists what the resource does answer, so a client sees its own
      // mistake (a GET of a POST-only route) instead of a 404 that says the path is wrong.
      return reply
        .status(405)
        .header('allow', allow.join(', '))
        .type(PROBLEM_CONTENT_TYPE)
        .send(
          problem(
            'METHOD_NOT_ALLOWED',
            `${context.instance} answers ${allow.join(', ')}, not ${request.method}`,
            context,
            {
              allow,
            },
          ),
        );
    }
    return reply
      .status(404)
      .type(PROBLEM_CONTENT_TYPE)
      .send(problem('NOT_FOUND', `No route ${request.method} ${context.instance}`, context));
  });
}

/**
 * OPTIONS is left out: the CORS plugin answers it on every path, so it says nothing about whether
 * this path exists.
 */
const ROUTABLE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/** Empty when the path has no route, or has one for this method (a handler said "not found"). */
function methodsAnswering(app: FastifyInstance, path: string, method: string): string[] {
  const answers = (candidate: string) => app.findRoute({ method: candidate, url: path }) !== null;
  // An OPTIONS reaches this handler when CORS is off (no CORS_ORIGINS): the plugin's catch-all
  // route then answers "not found" for every path, so it was a 404 "No route OPTIONS /v1/me" for a
  // path that exists; like any other method it is a 405 naming what the path answers (review 33).
  if (method !== 'OPTIONS' && answers(method)) return [];
  return ROUTABLE_METHODS.filter(answers);
}
