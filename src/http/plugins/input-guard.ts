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
/** How error paths name each part: as Fastify's schema errors do (`querystring.limit`). */
const PATH_PREFIX = { params: 'params', query: 'querystring', body: 'body' } as const;

/** No enumerable key, own or inherited: then its copy is `{}`, which always passes. */
function hasNoKeys(value: object): boolean {
  for (const _key in value) return false;
  return true;
}

/**
 * RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400. Node's own check (requireHostHeader)
 * answered it with no body at all; the app turns that check off (app.ts) and refuses it here, as
 * problem+json naming the header, after the per-IP limit counted it (review 31).
 */
function missingHostProblem(request: FastifyRequest): AppError | undefined {
  if (request.headers.host !== undefined || request.raw.httpVersion !== '1.1') return undefined;
  const message = 'an HTTP/1.1 request needs a Host header';
  return new AppError('VALIDATION_FAILED', message, {
    details: { errors: [{ path: 'headers.host', message }] },
  });
}

/**
 * A query string whose percent-escapes are not well-formed UTF-8 (`q=caf%E9` from a Latin-1 client,
 * `%ZZ`, a lone surrogate `%ED%A0%80`): Fastify's parser kept such a value as its raw text, so a
 * search ran for the literal `caf%E9` and a filter matched nothing, answered 200, where the same
 * escapes in the path are a 400 (review 33). Only a query holding `%` is looked at.
 */
function malformedQueryProblem(request: FastifyRequest): AppError | undefined {
  const url = request.raw.url ?? '';
  const start = url.indexOf('?');
  if (start < 0 || !url.includes('%', start)) return undefined;
  try {
    decodeURIComponent(url.slice(start + 1));
    return undefined;
  } catch {
    const message = 'is not valid percent-encoded UTF-8';
    return new AppError('VALIDATION_FAILED', `invalid querystring: ${message}`, {
      details: { errors: [{ path: 'querystring', message }] },
    });
  }
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
    const prefix = PATH_PREFIX[part];
    const path = problem.path === '' ? prefix : `${prefix}.${problem.path}`;
    return new AppError('VALIDATION_FAILED', `invalid ${prefix}: ${path}: ${problem.message}`, {
      details: { errors: [{ path, message: problem.message }] },
    });
  }
  return undefined;
}

/**
 * Why Fastify's parser refused text that is valid JSON: it refuses a key `__proto__` and a key
 * `constructor` holding an object with a key `prototype` (prototype poisoning), and said "Body is not
 * valid JSON" for both, naming nothing (review 22). The problem and its path instead; undefined
 * when the text is not JSON after all.
 */
function reservedKeyProblem(text: string): AppError | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const found = findJsonProblem(value);
  let path = found?.path;
  let message = found?.message;
  if (found === undefined) {
    // No `__proto__`: a `constructor` key holding `prototype`, found breadth-first.
    const queue: { readonly value: unknown; readonly path: string }[] = [{ value, path: '' }];
    for (let at = 0; at < queue.length && path === undefined; at++) {
      const item = queue[at] as { readonly value: unknown; readonly path: string };
      if (typeof item.value !== 'object' || item.value === null) continue;
      for (const [key, child] of Object.entries(item.value)) {
        const childPath = item.path === '' ? key : `${item.path}.${key}`;
        if (
          key === 'constructor' &&
          typeof child === 'object' &&
          child !== null &&
          Object.hasOwn(child, 'prototype')
        ) {
          path = childPath;
          message = 'a "constructor" key holding a "prototype" key is not allowed';
          break;
        }
        queue.push({ value: child, path: childPath });
      }
    }
  }
  if (path === undefined || message === undefined) return undefined;
  const full = path === '' ? 'body' : `body.${path}`;
  return new AppError('VALIDATION_FAILED', `invalid body: ${full}: ${message}`, {
    details: { errors: [{ path: full, message }] },
  });
}

/**
 * Whether a route's body schema lets the body be left out: none at all, or a zod schema that takes
 * `undefined` (`TransitionRequest.nullish()`). Asked only of an empty body.
 */
export function bodyIsOptional(schema: unknown): boolean {
  if (schema === undefined) return true;
  const parse = (schema as { safeParse?: (value: unknown) => { success: boolean } }).safeParse;
  return typeof parse === 'function' && parse.call(schema, undefined).success;
}

/**
 * Money fields of request bodies (integer minor units: `amount` of top-ups, withdrawals, transfers,
 * bids and budgets, `toWorker` and `toHirer` of a resolved split), written with a fraction or an
 * exponent. JSON.parse reads such a token as the nearest double, so `1.0000000000000001` became 1
 * and passed the schema's integer check: a non-integer amount accepted as another one. Only the text
 * shows it. A key spelled with escapes (`"\u0061mount"`) is not seen: that client only loses what it
 * sent past the point.
 */
const FRACTIONAL_MONEY = /"(amount|toWorker|toHirer)"\s*:\s*-?\d+[.eE]/;

/** The first key `name` in `value`, depth first (request bodies hold one money field of a name). */
function pathOfKey(value: unknown, name: string, path = ''): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, child] of Object.entries(value)) {
    const childPath = path === '' ? key : `${path}.${key}`;
    if (key === name) return childPath;
    const found = pathOfKey(child, name, childPath);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** A money field written as a fraction or with an exponent (`1.0`, `1e2`): 400 naming it. */
function fractionalMoneyProblem(text: string, value: unknown): AppError | undefined {
  // Most bodies name no money field: a substring check before the expression.
  if (!text.includes('"amount"') && !text.includes('"toWorker"') && !text.includes('"toHirer"')) {
    return undefined;
  }
  const name = FRACTIONAL_MONEY.exec(text)?.[1];
  if (name === undefined) return undefined;
  const path = `body.${pathOfKey(value, name) ?? name}`;
  const message = 'must be an integer of minor units, written without a fraction or an exponent';
  return new AppError('VALIDATION_FAILED', `invalid body: ${path}: ${message}`, {
    details: { errors: [{ path, message }] },
  });
}

/** A Transfer-Encoding list member that is `chunked` (the only transfer coding Node's parser undoes). */
const isChunked = (coding: string) => coding.trim().toLowerCase() === 'chunked';

/** Charsets a JSON body is read in: UTF-8 (RFC 8259 §8.1) and its subset US-ASCII. */
const UTF8_CHARSETS = new Set(['utf-8', 'utf8', 'us-ascii']);

/** The `charset` parameter of a Content-Type, lower-cased and unquoted; undefined without one. */
function charsetOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  for (const parameter of contentType.split(';').slice(1)) {
    const at = parameter.indexOf('=');
    if (at < 0 || parameter.slice(0, at).trim().toLowerCase() !== 'charset') continue;
    const value = parameter.slice(at + 1).trim();
    return (value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value)
      .trim()
      .toLowerCase();
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
  // Fastify also reads text/plain, as a string: a JSON route then refused it as 400 "expected
  // object" (review 22c), where every other type it does not read is 415 UNSUPPORTED_MEDIA_TYPE.
  // No route reads text: without a parser it is 415 too (a scope that reads a type adds its own).
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    // A route that takes no body (logout-all, close, withdraw, add contact…) called by a client that
    // labels every request JSON, with nothing in it: there is nothing to parse, so nothing to refuse
    // (it answered 400 "Body cannot be empty"). So for a route whose body is optional (a contract's
    // deliver, approve, cancel…: the message may be left out; review 27). A route that requires a
    // body still refuses an empty one.
    if (body.length === 0 && bodyIsOptional(request.routeOptions.schema?.body)) {
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
    // A transfer coding besides chunked (`Transfer-Encoding: gzip, chunked`) is not decoded either:
    // Node's parser removes only the chunking, so the gzip bytes were refused as "not valid UTF-8".
    const transfer = request.headers['transfer-encoding'];
    if (transfer !== undefined && !transfer.split(',').every((part) => isChunked(part))) {
      done(
        new AppError(
          'UNSUPPORTED_MEDIA_TYPE',
          'request bodies are read uncompressed: send no transfer coding but chunked',
          {
            details: { transferEncoding: transfer.trim().toLowerCase() },
          },
        ),
        undefined,
      );
      return;
    }
    // A body labelled with another charset (utf-16, latin1…) was decoded as UTF-8 anyway: a 400
    // "not valid JSON", or its text read wrongly. RFC 9110 §15.5.16: 415, naming the charset.
    const charset = charsetOf(request.headers['content-type']);
    if (charset !== undefined && !UTF8_CHARSETS.has(charset)) {
      done(
        new AppError('UNSUPPORTED_MEDIA_TYPE', 'JSON bodies are read as UTF-8: send charset=utf-8 or none', {
          details: { charset },
        }),
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
    parseJson(request, text, (error, value) => {
      if (error !== null) done(reservedKeyProblem(text) ?? error, undefined);
      else {
        const problem = fractionalMoneyProblem(text, value);
        if (problem === undefined) done(null, value);
        else done(problem, undefined);
      }
    });
  });
  // Synchronous: it runs on every request, and an async hook costs a promise and a microtask each.
  app.addHook('preValidation', (request, _reply, done) => {
    const problem = missingHostProblem(request) ?? malformedQueryProblem(request) ?? inputProblem(request);
    if (problem === undefined) done();
    else done(problem);
  });
}
