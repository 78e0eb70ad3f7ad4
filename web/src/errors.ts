/** The app's error of a plain `call` (no DOM: unit-tested in Node with src/outcome.ts). */

/** A refused call: the server's problem+json, or status 0 when no answer arrived. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    /** Field errors by the last part of their path (`body.email` → `email`). */
    readonly fields: Readonly<Record<string, string>>,
  ) {
    super(detail);
    this.name = 'ApiError';
  }
}

export const isApiError = (value: unknown): value is ApiError => value instanceof ApiError;

/** Field errors of a problem by the last part of their path (`body.email` → `email`). */
export function fieldErrors(
  errors: readonly { path: string; message: string }[] | undefined,
): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const error of errors ?? [])
    fields[error.path.split('.').slice(1).join('.') || error.path] ??= error.message;
  return fields;
}
