/**
 * The one error type of gigwire. Its `code` comes from the closed ErrorCode set in protocol/, and each
 * edge maps codes through one exhaustive table (REST status, WebSocket reply or close, task retry).
 * Anything that is not an AppError is an INTERNAL fault at the edge.
 */
import type { ErrorCode } from '../../protocol/src/codes.js';

export class AppError extends Error {
  override readonly name = 'AppError';
  readonly code: ErrorCode;
  /** Safe to show to the client (validation issues, retry delays); never secrets. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }
}

export const isAppError = (error: unknown): error is AppError => error instanceof AppError;
