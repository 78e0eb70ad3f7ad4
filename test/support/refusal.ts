/** What a domain call refused with: its AppError code and details (anything else is rethrown). */
import { isAppError } from '../../src/platform/errors.js';

export async function refusalOf(
  promise: Promise<unknown>,
): Promise<{ code: string; details?: Record<string, unknown> }> {
  try {
    await promise;
  } catch (error) {
    if (isAppError(error))
      return { code: error.code, ...(error.details ? { details: { ...error.details } } : {}) };
    throw error;
  }
  throw new Error('expected a refusal');
}
