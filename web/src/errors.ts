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
