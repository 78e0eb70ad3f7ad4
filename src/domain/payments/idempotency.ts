/**
 * Idempotency keys for the money-moving POSTs (issue 11 §4; Stripe, IETF
 * draft-ietf-httpapi-idempotency-key-header): the key row is claimed, the effect applied and the
 * response stored in ONE database transaction, so either all three happen or none.
 * - same key, same request, first finished → the stored first response (`replayed: true`);
 * - same key, same request, first still running → the twin waits up to `waitMs` for it and then
 *   replays its response; still running after that → CONFLICT (409, "in flight");
 * - same key, different request (scope or body hash) → IDEMPOTENCY_KEY_REUSED (422);
 * - the effect fails → nothing is stored and a retry runs again (nothing happened the first time);
 * - keys older than `ttlMs` (≥ 24 h) are forgotten: reuse after that is a new request.
 */
import { createHash } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import { isRetryableConflict, withSerializationRetry } from '../../db/errors.js';
import {
  claimIdempotencyKey,
  completeIdempotencyKey,
  expireIdempotencyKey,
  findIdempotencyKey,
  setLockTimeout,
} from '../../db/repositories/idempotency.repo.js';
import type { Clock } from '../../platform/clock.js';
import { AppError } from '../../platform/errors.js';

/** Longest key accepted (Stripe's limit). */
export const IDEMPOTENCY_KEY_MAX_LENGTH = 255;
/** Default retention: 24 h, the least Stripe and the IETF draft expect. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

export interface StoredResponse {
  readonly status: number;
  readonly body: unknown;
}

/** JSON with object keys sorted, so the same body hashes the same whatever its key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** The fingerprint stored with a key: SHA-256 of the scope (method + route) and the canonical body. */
export const requestHash = (scope: string, body: unknown): string =>
  createHash('sha256').update(scope).update('\n').update(canonicalJson(body)).digest('hex');

/** Refuses a missing, empty or over-long key (VALIDATION_FAILED → 400). */
export function assertIdempotencyKey(key: string | undefined): asserts key is string {
  if (
    key === undefined ||
    key.length === 0 ||
    key.length > IDEMPOTENCY_KEY_MAX_LENGTH ||
    /[^\x21-\x7e]/.test(key)
  ) {
    throw new AppError(
      'VALIDATION_FAILED',
      'an Idempotency-Key header of 1-255 visible ASCII characters is required',
      {
        details: {
          errors: [{ path: 'headers.idempotency-key', message: 'required, 1-255 visible ASCII characters' }],
        },
      },
    );
  }
}

const LOCK_NOT_AVAILABLE = '55P03';

export async function runIdempotent(
  deps: { readonly db: Kysely<Database>; readonly clock: Clock },
  request: {
    readonly userId: UserId;
    readonly key: string;
    readonly scope: string;
    readonly body: unknown;
    /** How long a twin waits for a request in flight before answering 409. */
    readonly waitMs: number;
    readonly ttlMs?: number;
  },
  effect: (trx: Transaction<Database>) => Promise<StoredResponse>,
): Promise<StoredResponse & { readonly replayed: boolean }> {
  assertIdempotencyKey(request.key);
  const hash = requestHash(request.scope, request.body);
  const ttlMs = request.ttlMs ?? IDEMPOTENCY_TTL_MS;
  await expireIdempotencyKey(
    deps.db,
    request.userId,
    request.key,
    new Date(deps.clock.now().getTime() - ttlMs),
  );
  const claim = { userId: request.userId, key: request.key, scope: request.scope, requestHash: hash };
  try {
    return await withSerializationRetry(() =>
      deps.db.transaction().execute(async (trx) => {
        // Only the claim may wait briefly; the effect's own locks wait as long as they need.
        await setLockTimeout(trx, Math.max(1, request.waitMs));
        const claimed = await claimIdempotencyKey(trx, claim);
        await setLockTimeout(trx, 0);
        if (!claimed) {
          const stored = await findIdempotencyKey(trx, request.userId, request.key);
          if (stored === undefined || stored.responseStatus === null) {
            // Committed rows always carry their response; a vanished row means it just expired.
            throw Object.assign(new Error('idempotency key changed under us'), { code: '40001' });
          }
          if (stored.scope !== request.scope || stored.requestHash !== hash) {
            throw new AppError(
              'IDEMPOTENCY_KEY_REUSED',
              'this Idempotency-Key was used for a different request',
            );
          }
          return { status: stored.responseStatus, body: stored.responseBody, replayed: true };
        }
        const response = await effect(trx);
        await completeIdempotencyKey(trx, {
          ...claim,
          status: response.status,
          body: response.body,
          at: deps.clock.now(),
        });
        return { ...response, replayed: false };
      }),
    );
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code === LOCK_NOT_AVAILABLE && !isRetryableConflict(error)) {
      throw new AppError('CONFLICT', 'a request with this Idempotency-Key is still in flight; retry later', {
        details: { idempotencyKey: request.key },
        cause: error,
      });
    }
    throw error;
  }
}
