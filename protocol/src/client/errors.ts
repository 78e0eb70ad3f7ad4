/**
 * The one error type of the SDK. A failed request rejects with a GigwireError whose `code` is the
 * server's error code (ErrorCode, e.g. FORBIDDEN) or one of the client's own (ClientErrorCode, e.g.
 * TIMEOUT); branch on `code`, never on `message`.
 */
import type { ErrorCode } from '../codes.js';
import type { ClientFrameType } from '../frames.js';

/** Failures decided on this side of the socket. */
export const ClientErrorCode = {
  /** No reply within the request's timeout (it may or may not have been applied). */
  TIMEOUT: 'TIMEOUT',
  /** The connection dropped after the request was sent and before its reply (maybe applied). */
  DISCONNECTED: 'DISCONNECTED',
  /** The client was closed for good (`close()`, or a close code whose action is `stop`). */
  CLOSED: 'CLOSED',
  /** Too many requests waiting for a connection (`maxQueuedRequests`); nothing was sent. */
  QUEUE_FULL: 'QUEUE_FULL',
  /** The server's reply or push did not match the protocol schemas. */
  BAD_REPLY: 'BAD_REPLY',
  /** A connection attempt failed before the socket opened (server down, 401, network). */
  CONNECT_FAILED: 'CONNECT_FAILED',
  /** `getAccessToken` threw, returned no token, or did not settle within `requestTimeoutMs`. */
  TOKEN_UNAVAILABLE: 'TOKEN_UNAVAILABLE',
  /** An event handler of the application threw; reported on the `error` event. */
  HANDLER_FAILED: 'HANDLER_FAILED',
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** Every code a GigwireError may carry. */
export type GigwireErrorCode = ErrorCode | ClientErrorCode;

export class GigwireError extends Error {
  override readonly name = 'GigwireError';
  /** The server's `error.d.code`, or a ClientErrorCode. */
  readonly code: GigwireErrorCode;
  /** The server's `error.d.details` (e.g. `userIds` refused by presence.subscribe, `errors` of VALIDATION_FAILED). */
  readonly details: Readonly<Record<string, unknown>> | undefined;
  /** The request type that failed, when the error is about a request. */
  readonly requestType: ClientFrameType | undefined;

  constructor(
    code: GigwireErrorCode,
    message: string,
    options: {
      readonly details?: Readonly<Record<string, unknown>>;
      readonly requestType?: ClientFrameType;
      readonly cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.requestType = options.requestType;
  }
}

export function isGigwireError(value: unknown): value is GigwireError {
  return value instanceof GigwireError;
}
