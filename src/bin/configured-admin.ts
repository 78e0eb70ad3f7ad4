/**
 * ADMIN_EMAIL / ADMIN_PASSWORD at start: the admin account is made when the address is free. What
 * can go wrong is told in the words of those settings, since the operator who reads the start line
 * set them, not a REST body.
 */
import type { AuthService } from '../domain/auth/service.js';
import { isAppError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';

export async function ensureConfiguredAdmin(
  auth: Pick<AuthService, 'ensureAdmin'>,
  admin: { readonly email: string; readonly password: string },
  log: Logger,
): Promise<void> {
  try {
    const ensured = await auth.ensureAdmin(admin.email, admin.password);
    log.info(
      { userId: ensured.user.id, username: ensured.user.username, outcome: ensured.outcome },
      'admin account ensured',
    );
  } catch (error) {
    if (isAppError(error) && error.code === 'CONFLICT') {
      // Refused (the address belongs to a non-admin account): the node still serves, or anyone
      // who registered that address first could stop every restart. The operator sees why here.
      log.error(`ADMIN_EMAIL not applied: ${error.message}`);
      return;
    }
    if (isAppError(error) && error.code === 'VALIDATION_FAILED') {
      // A password registration refuses (one of the most common, a run): the start stopped with
      // `start failed: password is one of the most common passwords`, naming no setting (review 31).
      throw new Error(
        `ADMIN_PASSWORD is refused: ${error.message}; choose another (the account of ADMIN_EMAIL is created with it)`,
        { cause: error },
      );
    }
    throw error;
  }
}
