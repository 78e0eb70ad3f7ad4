/**
 * Last-seen times live in `user_last_seen` (migration 0013), one narrow row per user, so that the
 * write each disconnect makes is an upsert that stays on its page instead of a new version of a
 * wide `users` row in six indexes. What must hold: a later time replaces the earlier one and an
 * earlier one never replaces a later (nor does a user listed twice fail the batch), users
 * that no longer exist are skipped (never an error for the rest of the batch), a deleted user's row
 * goes with it, and the migration carries the times stored in `users` before it.
 */
import { type Kysely, sql } from 'kysely';
import { Migrator } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import type { Database } from '../../src/db/database.js';
import { migrations } from '../../src/db/migrations/index.js';
import { insertUser, lastSeenOf, setLastSeenMany } from '../../src/db/repositories/users.repo.js';
import { createLogger } from '../../src/platform/logger.js';
import { createEmptyDatabase, createMigratedDatabase, type TestDatabase } from '../support/context.js';

const log = createLogger({ level: 'silent', pretty: false });
const newUser = (db: Kysely<Database>, name: string) =>
  insertUser(db, { username: name, email: `${name}@example.com`, passwordHash: 'x', roles: [] });

describe('user_last_seen', () => {
  let database: TestDatabase;
  let handle: DbHandle;

  beforeAll(async () => {
    database = await createMigratedDatabase();
    handle = await createDb({ kind: 'postgres', url: database.url, poolMax: 2 }, log);
  });
  afterAll(async () => {
    await handle.close();
    await database.drop();
  });

  it('keeps the latest time per user and skips users that do not exist', async () => {
    const [a, b] = [await newUser(handle.db, 'seen_a'), await newUser(handle.db, 'seen_b')];
    const ghost = '00000000-0000-4000-8000-00000000dead' as UserId;
    const first = new Date('2026-12-05T10:00:00.000Z');
    const later = new Date('2026-12-05T11:30:00.000Z');

    await setLastSeenMany(handle.db, [
      { userId: a.id, at: first },
      { userId: ghost, at: first },
    ]);
    expect(await lastSeenOf(handle.db, [a.id, b.id, ghost])).toEqual(new Map([[a.id, first]]));

    await setLastSeenMany(handle.db, [
      { userId: a.id, at: later },
      { userId: b.id, at: first },
    ]);
    expect(await lastSeenOf(handle.db, [a.id, b.id])).toEqual(
      new Map([
        [a.id, later],
        [b.id, first],
      ]),
    );
    const { rows } = await sql<{ n: string }>`select count(*) as n from user_last_seen`.execute(handle.db);
    expect(Number(rows[0]?.n)).toBe(2);
  });

  it('never moves a time back, and takes a user listed twice once, with the later time', async () => {
    const c = await newUser(handle.db, 'seen_c');
    const early = new Date('2026-12-05T09:00:00.000Z');
    const late = new Date('2026-12-05T12:00:00.000Z');
    // Listed twice in one batch (an upsert may not touch a row twice in one statement).
    await setLastSeenMany(handle.db, [
      { userId: c.id, at: late },
      { userId: c.id, at: early },
    ]);
    expect(await lastSeenOf(handle.db, [c.id])).toEqual(new Map([[c.id, late]]));
    // Another node's older time arriving afterwards.
    await setLastSeenMany(handle.db, [{ userId: c.id, at: early }]);
    expect(await lastSeenOf(handle.db, [c.id])).toEqual(new Map([[c.id, late]]));
  });

  it('goes with a deleted user', async () => {
    const gone = await newUser(handle.db, 'seen_gone');
    await setLastSeenMany(handle.db, [{ userId: gone.id, at: new Date() }]);
    await handle.db.deleteFrom('users').where('id', '=', gone.id).execute();
    expect(await lastSeenOf(handle.db, [gone.id])).toEqual(new Map());
  });
});

describe('migration 0013', () => {
  it('moves the last-seen times stored in users into user_last_seen, and back down', async () => {
    const database = await createEmptyDatabase();
    const handle = await createDb({ kind: 'postgres', url: database.url, poolMax: 2 }, log);
    try {
      const migrator = new Migrator({
        db: handle.db,
        provider: { getMigrations: async () => ({ ...migrations }) },
      });
      expect((await migrator.migrateTo('0012_auth_revocations')).error).toBeUndefined();
      const seen = new Date('2026-12-01T08:00:00.000Z');
      const ids: string[] = [];
      for (const name of ['old_seen', 'old_never']) {
        const { rows } = await sql<{ id: string }>`
          insert into users (username, email, password_hash, search_document)
          values (${name}, ${`${name}@example.com`}, 'x', ${name}) returning id`.execute(handle.db);
        ids.push(rows[0]?.id ?? '');
      }
      await sql`update users set last_seen_at = ${seen} where id = ${ids[0]}`.execute(handle.db);

      expect((await migrator.migrateToLatest()).error).toBeUndefined();
      expect(await lastSeenOf(handle.db, ids as UserId[])).toEqual(new Map([[ids[0], seen]]));
      const { rows: columns } = await sql<{ n: string }>`
        select count(*) as n from information_schema.columns
        where table_name = 'users' and column_name = 'last_seen_at'`.execute(handle.db);
      expect(Number(columns[0]?.n)).toBe(0);

      // Down to just before 0013 (later migrations first), whatever the latest one is.
      expect((await migrator.migrateTo('0012_auth_revocations')).error).toBeUndefined();
      const { rows: back } = await sql<{ id: string; last_seen_at: Date | null }>`
        select id, last_seen_at from users order by username desc`.execute(handle.db);
      expect(back).toEqual([
        { id: ids[0], last_seen_at: seen },
        { id: ids[1], last_seen_at: null },
      ]);
    } finally {
      await handle.close();
      await database.drop();
    }
  });
});
