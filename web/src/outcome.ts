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
import { isGigwireError } from '../../protocol/src/client/errors.js';
import { isRestError, type RestCommandOptions } from '../../protocol/src/client/rest.js';
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
    this.kept = outcomeUnknown(error) && key !== undefined ? { content, key } : undefined;
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
    await refresh();
    const key = error.idempotencyKey;
    return command(key === undefined ? options : { ...options, idempotencyKey: key });
  }
}
