/**
 * Every REST input (body, query, path parameters) is plain JSON within the depth cap, with strings
 * PostgreSQL can store, before a route schema or a handler sees it: the same rule the WebSocket
 * codec applies to frames (protocol/src/json-value.ts). A problem is a 400 VALIDATION_FAILED naming
 * the field, never a 500 from the database or a stack overflow in a serializer.
 *
 * JSON bodies are read as bytes and decoded strictly: Fastify's own parser decodes them leniently, so
 * bytes that are not UTF-8 became U+FFFD and were stored as such (a PATCH /v1/me answered 200).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { findJsonProblem } from '../../../protocol/src/json-value.js';
import { AppError } from '../../platform/errors.js';

const PARTS = ['params', 'query', 'body'] as const;

/** No enumerable key, own or inherited: then its copy is `{}`, which always passes. */
function hasNoKeys(value: object): boolean {
  for (const _key in value) return false;
  return true;
}

function inputProblem(request: FastifyRequest): AppError | undefined {
  for (const part of PARTS) {
    const value: unknown = request[part];
    // Raw bodies (a content type parsed to bytes, such as a signed webhook) are the route's to check.
    if (value === undefined || value === null || value instanceof Uint8Array) continue;
    // Most requests have no path parameters or query (GET /v1/me): nothing to copy or walk.
    if (part !== 'body' && hasNoKeys(value as object)) continue;
    // Fastify builds params and query as objects of its own class; their values are what counts.
    const problem = findJsonProblem(part === 'body' ? value : { ...(value as object) });
    if (problem === undefined) continue;
    const path = problem.path === '' ? part : `${part}.${problem.path}`;
    return new AppError('VALIDATION_FAILED', `invalid ${part}: ${path}: ${problem.message}`, {
      details: { errors: [{ path, message: problem.message }] },
    });
  }
  return undefined;
}

/** Throws on bytes that are not UTF-8, instead of putting U+FFFD in their place. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export function registerInputGuard(app: FastifyInstance): void {
  // Fastify's own JSON parsing (an empty body refused where the route takes a body, __proto__ and
  // constructor.prototype refused, the app's bodyLimit), fed text decoded strictly.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    // A route that takes no body (logout-all, close, withdraw, add contact…) called by a client that
    // labels every request JSON, with nothing in it: there is nothing to parse, so nothing to refuse
    // (it answered 400 "Body cannot be empty"). A route with a body schema still refuses an empty one.
    if (body.length === 0 && request.routeOptions.schema?.body === undefined) {
      done(null, undefined);
      return;
    }
    // A compressed body (Content-Encoding: gzip, br…) is not decoded here: its bytes were refused
    // as "not valid UTF-8" or "not valid JSON", which sent the client looking for a bug in its JSON.
    // RFC 9110 §15.5.16: 415, saying which codings are read (none but identity).
    const coding = request.headers['content-encoding']?.trim().toLowerCase();
    if (coding !== undefined && coding !== '' && coding !== 'identity') {
      done(
        new AppError(
          'UNSUPPORTED_MEDIA_TYPE',
          'request bodies are read uncompressed: send no Content-Encoding',
          {
            details: { contentEncoding: coding },
          },
        ),
        undefined,
      );
      return;
    }
    let text: string;
    try {
      text = strictUtf8.decode(body);
    } catch {
      done(
        new AppError('VALIDATION_FAILED', 'invalid body: the JSON is not valid UTF-8', {
          details: { errors: [{ path: 'body', message: 'is not valid UTF-8' }] },
        }),
        undefined,
      );
      return;
    }
    parseJson(request, text, done);
  });
  // Synchronous: it runs on every request, and an async hook costs a promise and a microtask each.
  app.addHook('preValidation', (request, _reply, done) => {
    const problem = inputProblem(request);
    if (problem === undefined) done();
    else done(problem);
  });
}
