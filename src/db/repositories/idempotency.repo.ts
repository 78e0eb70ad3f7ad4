/**
 * Idempotency keys (Stripe / IETF draft-ietf-httpapi-idempotency-key-header): one row per (user, key),
 * inserted in the same transaction as the request's effect and completed with its response there.
 */
import { type Kysely, sql, type Transaction } from 'kysely';
import type { UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../database.js';

type Db = Kysely<Database> | Transaction<Database>;

export interface IdempotencyRow {
  readonly scope: string;
  readonly requestHash: string;
  readonly responseStatus: number | null;
  readonly responseBody: unknown;
  readonly createdAt: Date;
}

/**
 * Claims the key for this transaction; false when a committed row holds it already. While another
 * open transaction holds the same key, this waits for it (up to the transaction's lock_timeout).
 */
export async function claimIdempotencyKey(
  trx: Transaction<Database>,
  row: { userId: UserId; key: string; scope: string; requestHash: string },
): Promise<boolean> {
  const inserted = await trx
    .insertInto('idempotency_keys')
    .values({
      user_id: row.userId,
      key: row.key,
      scope: row.scope,
      request_hash: row.requestHash,
      completed_at: null,
    })
    .onConflict((oc) => oc.columns(['user_id', 'key']).doNothing())
    .returning('key')
    .executeTakeFirst();
  return inserted !== undefined;
}

export async function findIdempotencyKey(
  db: Db,
  userId: UserId,
  key: string,
): Promise<IdempotencyRow | undefined> {
  const row = await db
    .selectFrom('idempotency_keys')
    .select(['scope', 'request_hash', 'response_status', 'response_body', 'created_at'])
    .where('user_id', '=', userId)
    .where('key', '=', key)
    .executeTakeFirst();
  return row === undefined
    ? undefined
    : {
        scope: row.scope,
        requestHash: row.request_hash,
        responseStatus: row.response_status,
        responseBody: row.response_body,
        createdAt: row.created_at,
      };
}

export async function completeIdempotencyKey(
  trx: Transaction<Database>,
  row: { userId: UserId; key: string; status: number; body: unknown; at: Date },
): Promise<void> {
  await trx
    .updateTable('idempotency_keys')
    .set({ response_status: row.status, response_body: JSON.stringify(row.body), completed_at: row.at })
    .where('user_id', '=', row.userId)
    .where('key', '=', row.key)
    .execute();
}

/** Forgets one key if it is older than `before` (a reuse after the retention period is a new request). */
export async function expireIdempotencyKey(db: Db, userId: UserId, key: string, before: Date): Promise<void> {
  await db
    .deleteFrom('idempotency_keys')
    .where('user_id', '=', userId)
    .where('key', '=', key)
    .where('created_at', '<', before)
    .execute();
}

/** Bounds how long statements of this transaction wait for a lock (then SQLSTATE 55P03). 0 = no bound. */
export async function setLockTimeout(trx: Transaction<Database>, ms: number): Promise<void> {
  await sql`select set_config('lock_timeout', ${`${Math.max(0, Math.floor(ms))}ms`}, true)`.execute(trx);
}
