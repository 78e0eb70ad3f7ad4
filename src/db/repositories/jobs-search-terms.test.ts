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

describe('hasSearchTerms', () => {
  it('answers a text with a word outside the stop list without asking PostgreSQL', async () => {
    for (const text of ['the plumbing', 'Hedge trimming', 'don’t 42', '"exact phrase" -the', 'éclair'])
      expect(await hasSearchTerms(unreachable, text), text).toBe(true);
  });

  it('asks PostgreSQL about a text of stop words and syntax only', async () => {
    for (const text of ['the and', 'THE', '"of the" -a', "don't"])
      await expect(hasSearchTerms(unreachable, text), text).rejects.toThrow('asked the database');
  });
});
