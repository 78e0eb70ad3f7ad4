/** Opaque keyset cursors: base64url of the last row's (created_at, id). */
import type { KeysetCursor } from '../db/repositories/users.repo.js';
import { AppError } from '../platform/errors.js';

export function encodeCursor(row: { created_at: Date; id: string }): string {
  return Buffer.from(JSON.stringify([row.created_at.toISOString(), row.id])).toString('base64url');
}

/** @throws AppError VALIDATION_FAILED for a cursor we did not make. */
export function decodeCursor(cursor: string | undefined): KeysetCursor | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      typeof value[0] === 'string' &&
      !Number.isNaN(Date.parse(value[0])) &&
      typeof value[1] === 'string' &&
      /^[0-9a-f-]{36}$/i.test(value[1])
    ) {
      return { createdAt: value[0], id: value[1] };
    }
  } catch {
    // fall through
  }
  throw new AppError('VALIDATION_FAILED', 'invalid cursor', {
    details: { errors: [{ path: 'query.cursor', message: 'is not a cursor from this API' }] },
  });
}

/** One page: fetch limit+1 rows, return limit and a cursor when there was more. */
export function pageOf<Row extends { created_at: Date; id: string }, Item>(
  rows: readonly Row[],
  limit: number,
  map: (row: Row) => Item,
): { data: Item[]; nextCursor: string | null } {
  const pageRows = rows.slice(0, limit);
  const last = pageRows[pageRows.length - 1];
  return {
    data: pageRows.map(map),
    nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last) : null,
  };
}
