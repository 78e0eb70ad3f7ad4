import { describe, expect, it } from 'vitest';
import { searchTerms } from './service.js';

describe('searchTerms (review 32)', () => {
  it('refuses a word of one letter or digit (a prefix of nearly every profile) as VALIDATION_FAILED naming q', () => {
    for (const q of ['a', 'jane a', 'x²', '7', '王'])
      expect(() => searchTerms(q), q).toThrow(
        expect.objectContaining({
          code: 'VALIDATION_FAILED',
          details: { errors: [{ path: 'querystring.q', message: expect.stringContaining('at least 2') }] },
        }),
      );
    expect(searchTerms('jo ab12 Ⅻx')).toEqual(['jo', 'ab12', 'Ⅻx']);
  });

  it('reads ½, ² or ① as punctuation, as PostgreSQL’s parser does (a profile holds no such word)', () => {
    expect(searchTerms('½ ² ① plumber')).toEqual(['plumber']);
    expect(searchTerms('½')).toEqual([]);
  });
});
