/**
 * RFC 9457 problem+json: the one shape of every REST error. `statusByCode` is the REST edge's
 * exhaustive mapping of ErrorCode (a new code does not compile until it is listed here).
 */
import type { ErrorCode } from '../../protocol/src/codes.js';

export const statusByCode: Readonly<Record<ErrorCode, number>> = {
  VALIDATION_FAILED: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  INTERNAL: 500,
  BAD_FRAME: 400,
  UNKNOWN_TYPE: 400,
  ROOM_LIMIT_REACHED: 409,
  INSUFFICIENT_FUNDS: 409,
  IDEMPOTENCY_KEY_REUSED: 422,
  INVALID_TRANSITION: 409,
  UNSUPPORTED_MEDIA_TYPE: 415,
  METHOD_NOT_ALLOWED: 405,
};

const titleByCode: Readonly<Record<ErrorCode, string>> = {
  VALIDATION_FAILED: 'Invalid request',
  UNAUTHORIZED: 'Authentication required',
  FORBIDDEN: 'Forbidden',
  NOT_FOUND: 'Not found',
  CONFLICT: 'Conflict',
  PAYLOAD_TOO_LARGE: 'Payload too large',
  RATE_LIMITED: 'Too many requests',
  UNAVAILABLE: 'Service unavailable',
  INTERNAL: 'Internal error',
  BAD_FRAME: 'Malformed frame',
  UNKNOWN_TYPE: 'Unknown frame type',
  ROOM_LIMIT_REACHED: 'Room limit reached',
  INSUFFICIENT_FUNDS: 'Insufficient funds',
  IDEMPOTENCY_KEY_REUSED: 'Idempotency key reused',
  INVALID_TRANSITION: 'Invalid transition',
  UNSUPPORTED_MEDIA_TYPE: 'Unsupported media type',
  METHOD_NOT_ALLOWED: 'Method not allowed',
};

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly code: ErrorCode;
  readonly detail: string;
  readonly instance: string;
  readonly requestId: string;
  readonly [extension: string]: unknown;
}

export function problem(
  code: ErrorCode,
  detail: string,
  context: { readonly instance: string; readonly requestId: string },
  extensions: Readonly<Record<string, unknown>> = {},
): Problem {
  return {
    ...extensions,
    type: `urn:gigwire:problem:${code}`,
    title: titleByCode[code],
    status: statusByCode[code],
    code,
    detail,
    instance: context.instance,
    requestId: context.requestId,
  };
}
