/**
 * What a failed call means to the person using the app, without JSX (so it is unit-tested in Node:
 * test/browser/web-outcome.test.ts):
 * - `failureOf`: the message and the field errors to show; no answer (status 0, a network error, a
 *   timeout) or a 502/503/504 is "Can't reach gigwire…", and only a command adds that it may have
 *   been applied (a read or a search changed nothing);
 * - `outcomeUnknown`: a command whose answer never came (it may have gone through);
 * - `RetryKeys`: the Idempotency-Key of a form whose outcome is unknown, reused when the same
 *   content is submitted again (the server replays the first answer instead of paying twice);
 * - `parseAmount` / `FormError`: amounts typed in major units, checked before anything is sent.
 */
import { ClientErrorCode, isGigwireError } from '../../protocol/src/client/errors.js';
import { isRestError, type RestCommandOptions, RestError } from '../../protocol/src/client/rest.js';
import { fieldErrors, isApiError, statusMessage } from './errors.js';

/** What a failed call shows: the problem's detail, and per-field messages. */
export interface Failure {
  readonly message: string;
  readonly fields: Readonly<Record<string, string>>;
}

export const UNREACHABLE = "Can't reach gigwire. Check your connection and try again.";

/** A form's own check failed before anything was sent: messages by field name. */
export class FormError extends Error {
  constructor(readonly fields: Readonly<Record<string, string>>) {
    super('Please correct the marked fields.');
    this.name = 'FormError';
  }
}

/** No answer came (status 0, network error, timeout), or a gateway said the server is away. */
export function isUnreachable(error: unknown): boolean {
  if (isApiError(error)) return error.status === 0 || [502, 503, 504].includes(error.status);
  if (isRestError(error)) {
    // A 2xx whose body cannot be read (a captive portal's page, a proxy's, a server newer than this
    // page): no usable answer, and a command may well have been applied (its key is kept).
    if (error.code === 'BAD_REPLY') return true;
    if (error.status === undefined) return error.code === 'DISCONNECTED' || error.code === 'TIMEOUT';
    return [502, 503, 504].includes(error.status);
  }
  // The live connection's own failures (a room joined, a message sent, the board watched while the
  // socket is down): no answer, not a refusal, and not a message for people (`no reply to "room.join"
  // within 10000 ms`).
  if (isGigwireError(error)) return SOCKET_UNREACHABLE.has(error.code);
  return false;
}

/** The SDK's codes for a request over the socket that got no answer (or could not be sent). */
const SOCKET_UNREACHABLE: ReadonlySet<string> = new Set([
  'TIMEOUT',
  'DISCONNECTED',
  'QUEUE_FULL',
  'CONNECT_FAILED',
  'TOKEN_UNAVAILABLE',
  'UNAVAILABLE',
]);

/**
 * A read worth trying again by itself later: no answer, a gateway or server failure, a timeout or
 * "too many requests" (not a refusal: 401/403 end the session, other 4xx would fail again).
 */
export function isPassing(error: unknown): boolean {
  if (isUnreachable(error)) return true;
  // The SDK's REST client could not get the session's token (its refresh got no answer, or a 5xx,
  // or took too long): nothing was sent, and the same read goes through once the network is back.
  // A refused refresh ends the session (session.ts): nothing to try again.
  if (isRestError(error) && error.code === 'TOKEN_UNAVAILABLE')
    return error.cause === undefined || isPassing(error.cause);
  const status = isApiError(error) ? error.status : isRestError(error) ? error.status : undefined;
  return status !== undefined && (status === 408 || status === 429 || status >= 500);
}

/**
 * A command whose outcome is unknown: no answer, or a 5xx (the server may have applied it before
 * failing to answer). A 4xx is a refusal: nothing was done.
 */
export function outcomeUnknown(error: unknown): boolean {
  if (isUnreachable(error)) return true;
  // An earlier attempt got no answer and the call gave up on something that settled nothing (a 429,
  // the session's refresh failing on the same bad network): its key is still the action's.
  if (isRestError(error) && error.maybeApplied) return true;
  if (isApiError(error)) return error.status >= 500;
  if (isRestError(error)) return error.status !== undefined && error.status >= 500;
  return false;
}

/** A failed background read is tried again after about this long, doubling up to RETRY_MAX_MS. */
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 30_000;
/** The longest server-asked wait a background read keeps to (a buggy hour-long value is not). */
const MAX_RETRY_AFTER_MS = 10 * 60_000;

/**
 * The delay before the retry after `failures` failed reads in a row (half of it random), and at
 * least what the server asked of the last one (`error`: a 429 or 503 with `Retry-After`). Before
 * review 31 the nav's balance and the bell's count, refused "retry in 30 s", were asked again after
 * 1, 2, 4, 8 and 16 s, each refused again by the limit they were over.
 */
export function retryDelay(failures: number, error?: unknown): number {
  const ceiling = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.max(0, failures - 1));
  const backoff = ceiling / 2 + Math.random() * (ceiling / 2);
  return Math.max(backoff, Math.min(retryAfterOf(error) ?? 0, MAX_RETRY_AFTER_MS));
}

/** The wait a refusal asked for in ms (the app's calls: `Retry-After`; the SDK's: the problem's `retryAfterS`). */
export function retryAfterOf(error: unknown): number | undefined {
  if (isApiError(error)) return error.retryAfterMs;
  if (isRestError(error)) {
    const seconds = error.problem?.retryAfterS;
    return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0
      ? seconds * 1000
      : undefined;
  }
  return undefined;
}

export type CallKind = 'command' | 'read';

/** `kind`: a read by default (a load); commands say that a call without an answer may have been applied. */
export function failureOf(error: unknown, kind: CallKind = 'read'): Failure {
  if (error instanceof FormError) return { message: error.message, fields: error.fields };
  if (isUnreachable(error)) {
    return {
      message:
        kind === 'command'
          ? `${UNREACHABLE} It may have been applied: check before doing it again.`
          : UNREACHABLE,
      fields: {},
    };
  }
  const failure = isApiError(error)
    ? { message: error.detail, fields: error.fields }
    : isRestError(error)
      ? {
          // No problem body (a proxy's HTML page): what its status means, not the SDK's "HTTP 413".
          message:
            error.problem?.detail ?? (error.status === undefined ? UNREACHABLE : statusMessage(error.status)),
          fields: fieldErrors(error.problem?.errors),
        }
      : isGigwireError(error) && error.code === 'VALIDATION_FAILED'
        ? // A request the SDK (or the server) refused as invalid: its errors by field, as REST's.
          { message: error.message, fields: fieldErrors(validationErrors(error.details?.errors)) }
        : { message: error instanceof Error ? error.message : String(error), fields: {} };
  // The field messages say what is wrong; the summary only points at them.
  return Object.keys(failure.fields).length > 0
    ? { ...failure, message: 'Please correct the marked fields.' }
    : failure;
}

/** The `errors` of a socket VALIDATION_FAILED (`d.skills.0`), when they are what they should be. */
function validationErrors(errors: unknown): { path: string; message: string }[] {
  if (!Array.isArray(errors)) return [];
  return errors.filter(
    (e): e is { path: string; message: string } =>
      typeof e === 'object' &&
      e !== null &&
      typeof (e as { path?: unknown }).path === 'string' &&
      typeof (e as { message?: unknown }).message === 'string',
  );
}

/**
 * What "Send a new link" (POST /v1/auth/resend-verification) says: `error` undefined after its 202.
 * The server mails at most one link a day and answers 202 alike, so a success never promises a
 * mail. A 429 says how long to wait; anything else says why, as a read would (sending it twice is
 * harmless: no "it may have been applied").
 */
export function verificationResendNote(
  email: string,
  error?: unknown,
): { readonly sent: boolean; readonly message: string } {
  if (error === undefined) {
    return {
      sent: true,
      message: `A new confirmation link is on its way to ${email}, unless one was sent in the last 24 hours (one a day at most). It may take a few minutes: check your spam folder too.`,
    };
  }
  const status = isApiError(error) ? error.status : isRestError(error) ? error.status : undefined;
  if (status === 429) {
    const waitMs = retryAfterOf(error);
    return {
      sent: false,
      message:
        waitMs === undefined
          ? 'Too many requests: wait a moment and try again.'
          : `Too many requests: try again in ${formatWait(waitMs)}.`,
    };
  }
  return { sent: false, message: failureOf(error, 'read').message };
}

/** 3 000 → "3 s", 125 000 → "3 min" (rounded up). */
function formatWait(ms: number): string {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  return seconds < 120 ? `${seconds} s` : `${Math.ceil(seconds / 60)} min`;
}

/** What the app says after a money command whose answer was lost, before the wallet is read again. */
export const MAYBE_APPLIED =
  "Can't reach gigwire, so we don't know whether this went through: it may have gone through. Check your balance below; submitting the same form again will not pay twice.";

/**
 * One Idempotency-Key per form content while its outcome is unknown. `keyFor(content)` before a
 * submit: the kept key when the content is the one that failed, else undefined (a fresh key per
 * call). `failed(content, error)` after a failure keeps the error's key when the outcome is unknown
 * and forgets it after a refusal; `done()` after a success.
 */
export class RetryKeys {
  private kept: { readonly content: string; readonly key: string } | undefined;

  keyFor(content: string): string | undefined {
    return this.kept?.content === content ? this.kept.key : undefined;
  }

  failed(content: string, error: unknown): void {
    const key = isRestError(error) ? error.idempotencyKey : undefined;
    if (outcomeUnknown(error) && key !== undefined) this.kept = { content, key };
    // The same form sent again with its kept key and stopped by something that settles nothing (a
    // 429, a 401, the session's refresh failing on the same bad network): the first submit is as
    // unknown as before. Dropped there (before review 31), the next submit drew a new key and a
    // first transfer that had gone through was paid twice.
    else if (this.kept?.content !== content || settlesOutcome(error)) this.kept = undefined;
  }

  done(): void {
    this.kept = undefined;
  }
}

/** The Idempotency-Key of a command's options, when there is one to reuse. */
export const withKey = (key: string | undefined): { idempotencyKey?: string } =>
  key === undefined ? {} : { idempotencyKey: key };

/** "12.50" → 1250 minor units; "12", "12.5", "12,50" too; undefined for anything else. */
export function parseAmount(text: string): number | undefined {
  const match = /^\s*(\d{1,12})(?:[.,](\d{1,2}))?\s*$/.exec(text);
  if (match === null) return undefined;
  const [, whole = '0', cents = ''] = match;
  return Number(whole) * 100 + Number(cents.padEnd(2, '0'));
}

export const AMOUNT_HINT = 'Enter an amount like 12.50';

/** The amount of field `name` in minor units, or a FormError saying how to type one. */
export function amountOf(text: string, name: string): number {
  const amount = parseAmount(text);
  if (amount === undefined) throw new FormError({ [name]: AMOUNT_HINT });
  return amount;
}

/**
 * A keyed command of the SDK, and once more after a 401 (`refresh` gets a new access token first,
 * as api.ts does for every call). The second call is the same user action, so it sends the first
 * one's Idempotency-Key: an earlier attempt of it may have gone through before the 401 (a lost
 * answer, then a token the server no longer took); with a new key, before review 30, it was done
 * twice.
 */
export async function keyedOnce401<T>(
  options: RestCommandOptions | undefined,
  command: (options: RestCommandOptions | undefined) => Promise<T>,
  refresh: () => Promise<unknown>,
): Promise<T> {
  try {
    return await command(options);
  } catch (error) {
    if (!isRestError(error) || error.status !== 401) throw error;
    const key = error.idempotencyKey;
    try {
      await refresh();
      return await command(key === undefined ? options : { ...options, idempotencyKey: key });
    } catch (later) {
      // The first call may have gone through (an attempt before the 401 got no answer): unless what
      // stopped the rest is a refusal of the key's own, that doubt and the key stay with the error.
      // Before review 31 the refresh failing offline threw an error without the key, and a 429 of
      // the second call one saying nothing was applied: the form dropped its key, and paid twice.
      throw error.maybeApplied && !settlesOutcome(later) ? stillUnknown(error, later) : later;
    }
  }
}

/**
 * Whether a failed keyed command settles an earlier unknown outcome of its key: a refusal of the
 * key's own (a 4xx other than 401, 408, 429 and a 409 "still in flight"), since an action applied
 * with that key would have been replayed instead. No answer, a 5xx, "try later", a refused or
 * missing token settle nothing.
 */
function settlesOutcome(error: unknown): boolean {
  if (outcomeUnknown(error)) return false;
  const status = isApiError(error) ? error.status : isRestError(error) ? error.status : undefined;
  return status !== undefined && status >= 400 && status < 500 && ![401, 408, 429].includes(status);
}

/** `later` (what ended a keyed command's retry after a 401) flagged with `first`'s key and doubt. */
function stillUnknown(first: RestError, later: unknown): RestError {
  if (isRestError(later)) {
    return new RestError(later.code, later.message, {
      method: later.method,
      path: later.path,
      attempts: later.attempts,
      idempotencyKey: later.idempotencyKey ?? first.idempotencyKey,
      maybeApplied: true,
      ...(later.status === undefined ? {} : { status: later.status }),
      ...(later.problem === undefined ? {} : { problem: later.problem }),
      ...(later.requestId === undefined ? {} : { requestId: later.requestId }),
      ...(later.details === undefined ? {} : { details: later.details }),
      cause: later,
    });
  }
  // The session's refresh failed (no answer, or refused: then the session has ended anyway).
  return new RestError(ClientErrorCode.TOKEN_UNAVAILABLE, 'the session could not renew its access token', {
    method: first.method,
    path: first.path,
    attempts: first.attempts,
    idempotencyKey: first.idempotencyKey,
    maybeApplied: true,
    cause: later,
  });
}
