/**
 * Review 23: a registration naming one role twice (`["worker", "worker"]`) and a profile listing one
 * portfolio link twice were accepted and stored as sent. Both lists now refuse a repeated item
 * (VALIDATION_FAILED naming the list at the REST edge).
 */
import { describe, expect, it } from 'vitest';
import { RegisterRequest } from './auth.js';
import { UpdateMeRequest } from './users.js';

const registration = { username: 'dupe_roles', email: 'dupe@example.test', password: 'Maroon-Jackal-61$' };

describe('lists whose items must differ', () => {
  it('refuses a role named twice at registration, and takes each role once', () => {
    const twice = RegisterRequest.safeParse({ ...registration, roles: ['worker', 'worker'] });
    expect(twice.success).toBe(false);
    expect(twice.error?.issues).toMatchObject([{ path: ['roles'], message: 'must not name a role twice' }]);
    expect(RegisterRequest.safeParse({ ...registration, roles: ['worker', 'hirer'] }).success).toBe(true);
    expect(RegisterRequest.safeParse(registration).success).toBe(true);
  });

  it('refuses a portfolio link listed twice, and takes distinct links', () => {
    const link = 'https://example.test/work';
    const twice = UpdateMeRequest.safeParse({ portfolioLinks: [link, 'https://example.test/other', link] });
    expect(twice.success).toBe(false);
    expect(twice.error?.issues).toMatchObject([
      { path: ['portfolioLinks'], message: 'must not name a link twice' },
    ]);
    expect(UpdateMeRequest.safeParse({ portfolioLinks: [link, `${link}/2`] }).success).toBe(true);
    expect(UpdateMeRequest.safeParse({ portfolioLinks: [] }).success).toBe(true);
  });
});
