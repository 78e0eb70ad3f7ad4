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
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
