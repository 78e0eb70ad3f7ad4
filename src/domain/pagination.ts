/**
 * Opaque keyset cursors: base64url of the last row's (created_at, id) and the listing that made it.
 *
 * The listing (e.g. `my-bids`, `job-bids:<jobId>`) is checked when the cursor comes back: every
 * list here shares the (created_at, id) order, so a cursor of one list given to another was a valid
 * position there and answered a page that skipped or repeated rows instead of saying the client
 * mixed them up. Cursors of earlier versions carry no listing and are still read as before (a client
 * paging through a rolling upgrade keeps its place).
 */
import type { KeysetCursor } from '../db/repositories/users.repo.js';
import { AppError } from '../platform/errors.js';

/** Which list a cursor belongs to: a fixed name, plus the scope for per-resource lists. */
export type Listing = string;

export function encodeCursor(listing: Listing, row: { created_at: Date; id: string }): string {
  return Buffer.from(JSON.stringify([row.created_at.toISOString(), row.id, listing])).toString('base64url');
}

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function invalidCursor(message: string): AppError {
  return new AppError('VALIDATION_FAILED', 'invalid cursor', {
    details: { errors: [{ path: 'querystring.cursor', message }] },
  });
}

/**
 * Only what `encodeCursor` makes is accepted: an instant exactly as `toISOString` writes it (which
 * PostgreSQL always parses) and a canonical UUID. Anything looser reached the database and failed
 * there as a 500 (e.g. `"275760-09-13"`, a 36-character run of dashes).
 * @throws AppError VALIDATION_FAILED for a cursor we did not make, or one made by another listing.
 */
export function decodeCursor(listing: Listing, cursor: string | undefined): KeysetCursor | undefined {
  if (cursor === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor('is not a cursor from this API');
  }
  if (Array.isArray(value) && (value.length === 2 || value.length === 3)) {
    const [createdAt, id, madeBy] = value as unknown[];
    if (
      typeof createdAt === 'string' &&
      ISO_INSTANT.test(createdAt) &&
      Date.parse(createdAt) >= 0 &&
      new Date(createdAt).toISOString() === createdAt &&
      typeof id === 'string' &&
      UUID.test(id) &&
      (value.length === 2 || typeof madeBy === 'string')
    ) {
      if (madeBy !== undefined && madeBy !== listing) throw invalidCursor('is a cursor of another list');
      return { createdAt, id };
    }
  }
  throw invalidCursor('is not a cursor from this API');
}

/** One page: fetch limit+1 rows, return limit and a cursor when there was more. */
export function pageOf<Row extends { created_at: Date; id: string }, Item>(
  listing: Listing,
  rows: readonly Row[],
  limit: number,
  map: (row: Row) => Item,
): { data: Item[]; nextCursor: string | null } {
  const pageRows = rows.slice(0, limit);
  const last = pageRows[pageRows.length - 1];
  return {
    data: pageRows.map(map),
    nextCursor: rows.length > limit && last !== undefined ? encodeCursor(listing, last) : null,
  };
}
