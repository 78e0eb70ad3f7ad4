import { describe, expect, it } from 'vitest';
import { searchTerms } from './service.js';

describe('searchTerms (review 25)', () => {
  it('keeps each typed word whole, for PostgreSQL to cut as it cut the profile', () => {
    expect(searchTerms('jane.smith node.js ASP.NET')).toEqual(['jane.smith', 'node.js', 'ASP.NET']);
    expect(searchTerms('राहुल  शर्मा\tİstanbul')).toEqual(['राहुल', 'शर्मा', 'İstanbul']);
  });

  it('drops words without a letter or digit, and keeps at most 8', () => {
    expect(searchTerms("!!! ' :* & o'brien")).toEqual(["o'brien"]);
    expect(searchTerms('aa bb cc dd ee ff gg hh ii jj')).toHaveLength(8);
  });
});
