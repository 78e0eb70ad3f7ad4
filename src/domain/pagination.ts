/** Opaque keyset cursors: base64url of the last row's (created_at, id). */
import type { KeysetCursor } from '../db/repositories/users.repo.js';
import { AppError } from '../platform/errors.js';

export function encodeCursor(row: { created_at: Date; id: string }): string {
  return Buffer.from(JSON.stringify([row.created_at.toISOString(), row.id])).toString('base64url');
}

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Only what `encodeCursor` makes is accepted: an instant exactly as `toISOString` writes it (which
 * PostgreSQL always parses) and a canonical UUID. Anything looser reached the database and failed
 * there as a 500 (e.g. `"275760-09-13"`, a 36-character run of dashes).
 * @throws AppError VALIDATION_FAILED for a cursor we did not make.
 */
export function decodeCursor(cursor: string | undefined): KeysetCursor | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2) {
      const [createdAt, id] = value as unknown[];
      if (
        typeof createdAt === 'string' &&
        ISO_INSTANT.test(createdAt) &&
        Date.parse(createdAt) >= 0 &&
        new Date(createdAt).toISOString() === createdAt &&
        typeof id === 'string' &&
        UUID.test(id)
      ) {
        return { createdAt, id };
      }
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
