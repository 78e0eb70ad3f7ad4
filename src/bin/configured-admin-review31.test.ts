/**
 * Review 31 (operator): ADMIN_PASSWORD is checked for its length only when the configuration is
 * read; a password registration refuses for another reason (one of the most common, a run) stopped
 * the first start with `gigwire: start failed: password is one of the most common passwords`,
 * which names neither ADMIN_PASSWORD nor ADMIN_EMAIL. The line names the setting now.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { AppError } from '../platform/errors.js';
import { ensureConfiguredAdmin } from './configured-admin.js';

const silent = pino({ level: 'silent' });
const admin = { email: 'ops@example.com', password: 'password123' };
/** An auth service whose ensureAdmin fails as the real one does. */
const refusing = (error: AppError) => ({ ensureAdmin: async () => Promise.reject(error) });

describe('ADMIN_EMAIL / ADMIN_PASSWORD at start (review 31)', () => {
  it('names ADMIN_PASSWORD when the password is refused as weak, and never quotes it', async () => {
    // What ensureAdmin throws for ADMIN_PASSWORD=password123 (service.ts weakPassword).
    const weak = new AppError('VALIDATION_FAILED', 'password is one of the most common passwords');
    const start = ensureConfiguredAdmin(refusing(weak), admin, silent);
    await expect(start).rejects.toThrow(/^ADMIN_PASSWORD is refused: password is one of the most common/);
    await expect(start).rejects.not.toThrow(/password123/);
  });

  it('goes on serving when the address belongs to a non-admin account', async () => {
    const taken = new AppError(
      'CONFLICT',
      'ops@example.com belongs to an existing account that is not an admin',
    );
    await expect(ensureConfiguredAdmin(refusing(taken), admin, silent)).resolves.toBeUndefined();
  });
});
