import { describe, expect, it } from 'vitest';
import { AppError } from '../platform/errors.js';
import { decodeCursor, encodeCursor, pageOf } from './pagination.js';

const row = { created_at: new Date('2026-12-06T10:00:00.123Z'), id: '0b6f3e9c-6f1d-4f5e-9a57-3c1d2e4f5a6b' };
const legacy = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function refusal(run: () => unknown): AppError {
  try {
    run();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('keyset cursors', () => {
  it('reads back the position its own listing made', () => {
    expect(decodeCursor('my-bids', encodeCursor('my-bids', row))).toEqual({
      createdAt: '2026-12-06T10:00:00.123Z',
      id: row.id,
    });
  });

  it("refuses another listing's cursor with VALIDATION_FAILED, naming the mix-up", () => {
    const error = refusal(() => decodeCursor('my-contracts', encodeCursor('my-bids', row)));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(JSON.stringify(error.details)).toContain('another list');
    // The scope is part of the listing: the bids of one job do not page another job's bids.
    expect(() => decodeCursor('job-bids:b', encodeCursor('job-bids:a', row))).toThrow(AppError);
  });

  it('still reads an untagged cursor of an earlier version (a client paging through an upgrade)', () => {
    expect(decodeCursor('notifications', legacy([row.created_at.toISOString(), row.id]))).toEqual({
      createdAt: '2026-12-06T10:00:00.123Z',
      id: row.id,
    });
  });

  it.each([
    ['a listing that is not a string', [row.created_at.toISOString(), row.id, 7]],
    ['an extra element', [row.created_at.toISOString(), row.id, 'workers', 'x']],
    ['a loose date', ['275760-09-13', row.id, 'workers']],
    ['a non-UUID id', [row.created_at.toISOString(), '-'.repeat(36), 'workers']],
  ])('refuses %s', (_name, value) => {
    expect(refusal(() => decodeCursor('workers', legacy(value))).code).toBe('VALIDATION_FAILED');
  });

  it('refuses bytes that are not JSON', () => {
    expect(refusal(() => decodeCursor('workers', '!!!')).code).toBe('VALIDATION_FAILED');
  });

  it("pageOf's next cursor belongs to its listing and continues after the page's last row", () => {
    const rows = [row, { ...row, id: '1b6f3e9c-6f1d-4f5e-9a57-3c1d2e4f5a6b' }];
    const page = pageOf('workers', rows, 1, (r) => r.id);
    expect(page.data).toEqual([row.id]);
    expect(page.nextCursor).not.toBeNull();
    expect(decodeCursor('workers', page.nextCursor ?? undefined)?.id).toBe(row.id);
    expect(() => decodeCursor('jobs', page.nextCursor ?? undefined)).toThrow(AppError);
    expect(pageOf('workers', rows, 2, (r) => r.id).nextCursor).toBeNull();
  });
});
