/** The app's error of a plain `call` (no DOM: unit-tested in Node with src/outcome.ts). */

import { retryAfterHeaderMs } from '../../protocol/src/client/backoff.js';

/** A refused call: the server's problem+json, or status 0 when no answer arrived. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    /** Field errors by the last part of their path (`body.email` → `email`). */
    readonly fields: Readonly<Record<string, string>>,
    /** How long the server asked to wait (`Retry-After`, else the problem's `retryAfterS`), in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(detail);
    this.name = 'ApiError';
  }
}

export const isApiError = (value: unknown): value is ApiError => value instanceof ApiError;

/**
 * Field errors of a problem by their path without its first part (`body.email` → `email`). An error
 * of one entry of a list (`body.skills.2`, a skill too long) is also the list's field's (`skills`),
 * saying which entry: the form shows one field for the whole list, and "Please correct the marked
 * fields" with nothing marked would leave the user guessing.
 */
export function fieldErrors(
  errors: readonly { path: string; message: string }[] | undefined,
): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const error of errors ?? []) {
    const parts = error.path.split('.').slice(1);
    fields[parts.join('.') || error.path] ??= error.message;
    const entry = parts.findIndex((part) => /^\d+$/.test(part));
    if (entry > 0)
      fields[parts.slice(0, entry).join('.')] ??= `entry ${Number(parts[entry]) + 1}: ${error.message}`;
  }
  return fields;
}

/**
 * What an error answer without a problem body of its own says (a proxy's HTML page: nginx's 413 or
 * 502, a load balancer's 504, a 500 page): by its status, in words, never "HTTP 413" nor "413
 * Request Entity Too Large" (whose status text HTTP/2 does not even carry).
 */
export function statusMessage(status: number): string {
  if (status === 413 || status === 414 || status === 431)
    return 'This is too large to send. Make it shorter (or smaller) and try again.';
  if (status === 502 || status === 503 || status === 504)
    return "Can't reach gigwire: the server is not answering right now. Try again in a moment.";
  if (status === 408) return 'The request took too long to reach gigwire. Try again.';
  if (status === 429) return 'Too many requests: wait a moment and try again.';
  if (status >= 500) return `gigwire could not handle this (error ${status}). Try again in a moment.`;
  return `gigwire refused this (error ${status}). Reload the page and try again.`;
}

interface ProblemBody {
  code?: string;
  detail?: string;
  title?: string;
  errors?: { path: string; message: string }[];
  retryAfterS?: unknown;
}

/**
 * The ApiError of an error answer of `status` whose body is `text`: the server's problem+json, or a
 * page that is not one (a proxy's HTML, JSON without a problem in it), said by its status.
 * `retryAfter`: the answer's `Retry-After` header, kept as `retryAfterMs`; `date`: its `Date`.
 */
export function answerError(
  status: number,
  text: string,
  retryAfter?: string | null,
  date?: string | null,
): ApiError {
  let body: ProblemBody = {};
  try {
    const parsed: unknown = JSON.parse(text);
    // JSON that is not an object (`null`, a list) has no problem in it either.
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) body = parsed as ProblemBody;
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  return new ApiError(
    status,
    typeof body.code === 'string' ? body.code : 'HTTP_ERROR',
    typeof body.detail === 'string'
      ? body.detail
      : typeof body.title === 'string'
        ? body.title
        : statusMessage(status),
    fieldErrors(
      Array.isArray(body.errors)
        ? body.errors.filter((e) => typeof e?.path === 'string' && typeof e.message === 'string')
        : undefined,
    ),
    retryAfterSeconds(retryAfter, body.retryAfterS, date),
  );
}

/**
 * A `Retry-After` header, else a problem's `retryAfterS`, in ms; else undefined. The header is
 * read as the SDK reads it (backoff.ts `retryAfterHeaderMs`): "2.5" is 3 s, where it was ignored.
 * An HTTP-date counts from the answer's `Date` when given, else this device's clock.
 */
function retryAfterSeconds(
  header: string | null | undefined,
  retryAfterS: unknown,
  date: string | null | undefined,
): number | undefined {
  const answeredAt = Date.parse(date ?? '');
  const fromHeader = retryAfterHeaderMs(header, Number.isNaN(answeredAt) ? Date.now() : answeredAt);
  if (fromHeader !== undefined) return fromHeader;
  return typeof retryAfterS === 'number' && Number.isFinite(retryAfterS) && retryAfterS >= 0
    ? retryAfterS * 1000
    : undefined;
}
