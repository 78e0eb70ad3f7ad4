/**
 * Stable error codes shared by every edge: REST problem+json `code`, WebSocket `error` frames and
 * task failures. Codes are part of the public contract: add new ones, never rename or reuse one.
 * Each edge maps them through one exhaustive `Record<ErrorCode, …>` table, so a new code does not
 * compile until every edge has decided how to surface it.
 */
export const ErrorCode = {
  /** Input failed validation (bad JSON, wrong field, value out of range). */
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  /** No credentials, or credentials that are invalid, expired or revoked. */
  UNAUTHORIZED: 'UNAUTHORIZED',
  /** Authenticated, but not allowed to do this to this resource. */
  FORBIDDEN: 'FORBIDDEN',
  /** The resource does not exist (or the caller may not know that it does). */
  NOT_FOUND: 'NOT_FOUND',
  /** The request conflicts with the current state (duplicate, invalid transition). */
  CONFLICT: 'CONFLICT',
  /** The body or frame exceeds a size limit. */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** Too many requests; retry after the advertised delay. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** A dependency (database, Redis) is unreachable or the node is shutting down; retry later. */
  UNAVAILABLE: 'UNAVAILABLE',
  /** Our fault. Logged once at the edge with the request id; details are never sent to clients. */
  INTERNAL: 'INTERNAL',
  /**
   * WebSocket only: the frame could not be decoded (not MessagePack/JSON, wrong frame kind for the
   * connection's encoding) or is not an envelope object (`t` missing or not a string, `id` not an
   * integer in 0..2^31-1). Repeated, it closes the connection with 1007.
   */
  BAD_FRAME: 'BAD_FRAME',
  /** WebSocket only: the envelope's `t` names no request type of this protocol version. */
  UNKNOWN_TYPE: 'UNKNOWN_TYPE',
  /**
   * A user would be a member of more rooms than ROOMS_MAX_PER_USER allows (creating a room, or being
   * added to one). `details.userIds` names the users at the limit.
   */
  ROOM_LIMIT_REACHED: 'ROOM_LIMIT_REACHED',
  /**
   * A wallet's available balance (posted minus pending debits) does not cover the amount.
   * `details.shortfall` is the missing amount in minor units (integer), `details.currency` its currency.
   */
  INSUFFICIENT_FUNDS: 'INSUFFICIENT_FUNDS',
  /**
   * REST only: an `Idempotency-Key` reused with a different request (another body or endpoint).
   * Use a new key for a new request.
   */
  IDEMPOTENCY_KEY_REUSED: 'IDEMPOTENCY_KEY_REUSED',
  /**
   * The event is not allowed in the resource's current state (a marketplace contract, job or bid):
   * `details.state` names the current state, `details.event` what was tried. Re-read the resource.
   */
  INVALID_TRANSITION: 'INVALID_TRANSITION',
  /**
   * REST only: the request body's `Content-Type` is not one the route reads (send
   * `application/json`). WebSocket frames have no media type: their encoding is the negotiated
   * subprotocol, and a frame of the wrong kind is BAD_FRAME.
   */
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  /**
   * REST only: the path exists, but not for this method (a GET of a POST-only route). The `Allow`
   * header and `details.allow` list the methods it answers.
   */
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * WebSocket close codes the server sends. 1000–1015 are RFC 6455's; 4000–4999 are private to
 * gigwire. What a client must do after each is `closeAction`, which also gives codes outside this
 * list a defined meaning so that new codes never strand old clients.
 */
export const CloseCode = {
  /** Orderly close requested by either side; nothing to recover. */
  NORMAL: 1000,
  /** The server (or a proxy) is going away, e.g. a node draining; reconnect. */
  GOING_AWAY: 1001,
  /** WebSocket protocol violation detected by the transport. A client bug: do not retry blindly. */
  PROTOCOL_ERROR: 1002,
  /** Repeated undecodable frames (BAD_FRAME). A client bug. */
  INVALID_PAYLOAD: 1007,
  /** Repeated invalid frames (UNKNOWN_TYPE, VALIDATION_FAILED) or sustained rate-limit abuse. */
  POLICY_VIOLATION: 1008,
  /** A frame exceeded `hello.limits.maxFrameBytes`. A client bug. */
  MESSAGE_TOO_BIG: 1009,
  /** Unexpected server fault; reconnect with backoff. */
  INTERNAL_ERROR: 1011,
  /** The server is shutting down: reconnect (to another node, after backoff). */
  SERVICE_RESTART: 1012,
  /** Slow consumer: the send buffer passed `hello.limits.maxBufferedBytes`. Reconnect and resume. */
  TRY_AGAIN_LATER: 1013,
  /** The access token expired without `auth.refresh`, or was revoked: refresh it, then reconnect. */
  AUTH_EXPIRED: 4001,
  /**
   * Right after this user opened another socket on the node at WS_MAX_SOCKETS_PER_USER: this socket
   * had not answered a ping for a few seconds, so it was taken for a dead one (a network switch)
   * and replaced. Reconnect (a live client that lost this way meets the cap like any new socket).
   */
  SOCKET_REPLACED: 4100,
  /**
   * Right after opening, before `hello`: the user is at WS_MAX_SOCKETS_PER_USER on the node and
   * their other sockets were just pinged; reconnect after the usual backoff, which finds a silent
   * one replaced (4100) or, when all answered, 1008.
   */
  SOCKET_LIMIT_CHECKING: 4101,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * What a client does after a close:
 * - `reconnect`: open a new connection after a backoff with jitter (and resume what it had);
 * - `reauthenticate`: obtain a fresh access token (REST `POST /v1/auth/refresh`, else log in),
 *   then reconnect;
 * - `stop`: do not reconnect automatically; the close was intended or caused by a client bug.
 */
export const CloseAction = {
  RECONNECT: 'reconnect',
  REAUTHENTICATE: 'reauthenticate',
  STOP: 'stop',
} as const;
export type CloseAction = (typeof CloseAction)[keyof typeof CloseAction];

const actionByCloseCode: Readonly<Record<CloseCode, CloseAction>> = {
  [CloseCode.NORMAL]: CloseAction.STOP,
  [CloseCode.GOING_AWAY]: CloseAction.RECONNECT,
  [CloseCode.PROTOCOL_ERROR]: CloseAction.STOP,
  [CloseCode.INVALID_PAYLOAD]: CloseAction.STOP,
  [CloseCode.POLICY_VIOLATION]: CloseAction.STOP,
  [CloseCode.MESSAGE_TOO_BIG]: CloseAction.STOP,
  [CloseCode.INTERNAL_ERROR]: CloseAction.RECONNECT,
  [CloseCode.SERVICE_RESTART]: CloseAction.RECONNECT,
  [CloseCode.TRY_AGAIN_LATER]: CloseAction.RECONNECT,
  [CloseCode.AUTH_EXPIRED]: CloseAction.REAUTHENTICATE,
  [CloseCode.SOCKET_REPLACED]: CloseAction.RECONNECT,
  [CloseCode.SOCKET_LIMIT_CHECKING]: CloseAction.RECONNECT,
};

/**
 * The action for any close code a client may observe, including ones this version does not know.
 * Ranges, so that codes added later already have a meaning for today's clients:
 * - the codes of `CloseCode`: as documented there;
 * - other 1000–2999 (RFC 6455 / IANA, e.g. 1005 no status, 1006 abnormal drop, 1014, 1015):
 *   `reconnect`, they describe network or intermediary failures;
 * - 3000–3999 (registered for libraries and proxies): `reconnect`;
 * - 4000–4099 (gigwire, credentials): `reauthenticate`;
 * - 4100–4499 (gigwire, transient): `reconnect`;
 * - 4500–4999 (gigwire, terminal): `stop`;
 * - anything else (not a valid close code): `reconnect`.
 */
export function closeAction(code: number): CloseAction {
  if (isCloseCode(code)) return actionByCloseCode[code];
  if (code >= 4000 && code <= 4099) return CloseAction.REAUTHENTICATE;
  if (code >= 4500 && code <= 4999) return CloseAction.STOP;
  return CloseAction.RECONNECT;
}

function isCloseCode(code: number): code is CloseCode {
  return Object.hasOwn(actionByCloseCode, code);
}
