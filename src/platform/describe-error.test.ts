import { describe, expect, it } from 'vitest';
import { describeError } from './describe-error.js';

/** What PGlite's Emscripten file system throws: a plain object with a name and a number. */
class ErrnoError {
  readonly name = 'ErrnoError';
  constructor(readonly errno: number) {}
}

describe('describeError', () => {
  it('says a full disk under the data directory for PGlite ErrnoError 51 (Emscripten ENOSPC)', () => {
    const line = describeError(new ErrnoError(51), { dir: '/srv/gigwire/data/pglite' });
    expect(line).toBe('no space left on device under /srv/gigwire/data/pglite (ENOSPC)');
    expect(line).not.toContain('[object Object]');
  });

  it('names other known errnos, and an unknown one by number', () => {
    expect(describeError(new ErrnoError(69), { dir: 'd' })).toBe('read-only file system under d (EROFS)');
    expect(describeError(new ErrnoError(2))).toBe('permission denied (EACCES)');
    expect(describeError(new ErrnoError(19))).toBe('disk quota exceeded (EDQUOT)');
    expect(describeError(new ErrnoError(999), { dir: 'd' })).toBe(
      'file system error (errno 999, Emscripten numbering) under d',
    );
  });

  it('formats other non-Error objects from their name, code, errno and message', () => {
    expect(describeError({ code: 'ENOSPC', errno: -28 })).toBe(
      'no space left on device, code ENOSPC, errno -28',
    );
    expect(describeError({ name: 'RuntimeError', message: 'memory access out of bounds' })).toBe(
      'memory access out of bounds, name RuntimeError',
    );
    expect(describeError({ detail: 'x' })).toBe('{"detail":"x"}');
    expect(describeError({})).toBe('Object without a message');
  });

  it('keeps an Error message, adds a non-Error cause, and always gives one line', () => {
    expect(describeError(new Error('redis-server did not answer'))).toBe('redis-server did not answer');
    expect(describeError(new Error('Aborted()', { cause: new ErrnoError(51) }), { dir: 'd' })).toBe(
      'Aborted(): no space left on device under d (ENOSPC)',
    );
    expect(describeError(new Error('first\nsecond'))).toBe('first second');
    expect(describeError('plain text')).toBe('plain text');
    expect(describeError(undefined)).toBe('undefined');
  });
});
