import type { Kysely } from 'kysely';
import type { Database } from '../database.js';

export interface Installation {
  readonly id: string;
  readonly createdAt: Date;
}

/** The installation row, created on first call; concurrent first calls agree on one row. */
export async function ensureInstallation(db: Kysely<Database>): Promise<Installation> {
  await db
    .insertInto('installation')
    .defaultValues()
    .onConflict((oc) => oc.column('singleton').doNothing())
    .execute();
  const row = await db.selectFrom('installation').select(['id', 'created_at']).executeTakeFirstOrThrow();
  return { id: row.id, createdAt: row.created_at };
}
