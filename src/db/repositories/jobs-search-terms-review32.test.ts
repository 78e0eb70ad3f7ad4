import { describe, expect, it } from 'vitest';
import { hasSearchTerms } from './jobs.repo.js';

/** A database that must not be asked. */
const unreachable = new Proxy(
  {},
  {
    get: () => {
      throw new Error('asked the database');
    },
  },
) as Parameters<typeof hasSearchTerms>[0];

describe('hasSearchTerms (review 32)', () => {
  it('asks PostgreSQL about ½, ² or ①, which its parser reads as blanks, instead of taking them for words', async () => {
    for (const text of ['½', '² ①', '½ the'])
      await expect(hasSearchTerms(unreachable, text), text).rejects.toThrow('asked the database');
    // A word beside them still answers at once.
    for (const text of ['1½', 'ab½cd', 'Ⅻ', '١٢'])
      expect(await hasSearchTerms(unreachable, text), text).toBe(true);
  });
});
