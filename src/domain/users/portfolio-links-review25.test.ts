import { describe, expect, it } from 'vitest';
import { UpdateMeRequest } from '../../../protocol/src/rest/users.js';
import { storedLinks } from './service.js';

describe('portfolio links (review 25)', () => {
  it('refuses two links the schema let through as different that are one link once serialised', () => {
    const { portfolioLinks = [] } = UpdateMeRequest.parse({
      portfolioLinks: ['https://GitHub.com/me', 'https://github.com:443/me'],
    });
    expect(() => storedLinks(portfolioLinks)).toThrow(
      expect.objectContaining({
        code: 'VALIDATION_FAILED',
        details: { errors: [{ path: 'body.portfolioLinks.1', message: expect.any(String) }] },
      }),
    );
    expect(storedLinks(['https://GitHub.com/me', 'https://github.com/you'])).toEqual([
      'https://github.com/me',
      'https://github.com/you',
    ]);
  });
});
