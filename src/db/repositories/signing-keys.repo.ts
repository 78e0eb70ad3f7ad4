/**
 * Access-token signing keys (`signing_keys`, migration 0002): the key set every process loads, the
 * lock under which the first key is created, and rotation. Plain functions over `db | trx`; the
 * domain (domain/auth/tokens.ts) owns transactions and the keys' cryptography.
 */
import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { Database } from '../database.js';
import type { SigningKeysTable } from '../tables/sessions.table.js';

type Db = Kysely<Database> | Transaction<Database>;
export type SigningKeyRow = Selectable<SigningKeysTable>;

export interface NewSigningKey {
  readonly kid: string;
  readonly alg: string;
  /** The public JWK as published in the JWKS. */
  readonly publicJwk: Record<string, unknown>;
  readonly privateJwk: Record<string, unknown>;
}

export async function insertSigningKey(db: Db, key: NewSigningKey): Promise<void> {
  await db
    .insertInto('signing_keys')
    .values({ kid: key.kid, alg: key.alg, public_jwk: key.publicJwk, private_jwk: key.privateJwk })
    .execute();
}

/**
 * The keys to publish and verify with: the active ones and those retired after `retiredAfter`,
 * newest first (created_at, then kid): the first active row is the signer.
 */
export function publishedSigningKeys(db: Db, retiredAfter: Date): Promise<SigningKeyRow[]> {
  return db
    .selectFrom('signing_keys')
    .selectAll()
    .where((eb) => eb.or([eb('retired_at', 'is', null), eb('retired_at', '>', retiredAfter)]))
    .orderBy('created_at', 'desc')
    .orderBy('kid', 'desc')
    .execute();
}

/**
 * Serialises key creation across processes until the transaction ends (a transaction-scoped
 * advisory lock): processes starting together on an empty table then agree on one key.
 */
export async function lockSigningKeyCreation(trx: Transaction<Database>): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext('gigwire:signing_keys'))`.execute(trx);
}

/** Whether some key is not retired. */
export async function hasActiveSigningKey(db: Db): Promise<boolean> {
  const active = await db
    .selectFrom('signing_keys')
    .select('kid')
    .where('retired_at', 'is', null)
    .limit(1)
    .execute();
  return active.length > 0;
}

/** Retires every active key at `at` (rotation, before the new key is inserted). */
export async function retireActiveSigningKeys(db: Db, at: Date): Promise<void> {
  await db.updateTable('signing_keys').set({ retired_at: at }).where('retired_at', 'is', null).execute();
}
