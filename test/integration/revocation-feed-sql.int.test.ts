/**
 * The revocation feed's table (migration 0012) under pruning, on real Postgres and on PGlite:
 * - a row whose transaction committed after the prune's bound snapshot is kept however old its
 *   `at` (the trigger's time, which a long-open transaction sets long before it commits), so a node
 *   polling from a snapshot taken before that commit still reads it;
 * - rows of transactions complete before the bound and older than the kept age are deleted;
 * - the poll's snapshot continuation reads a row committed after the previous snapshot exactly once;
 * - TRUNCATE of sessions or users, which fires no row trigger (so would end sessions unseen by the
 *   feed while nodes keep trusting the rows they hold), is refused: DELETE, which the feed sees.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionId, UserId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { pruneAuthRevocations, readAuthRevocations } from '../../src/db/repositories/sessions.repo.js';
import {
  captureLogs,
  createMigratedDatabase,
  openMigratedPglite,
  type TestDatabase,
} from '../support/context.js';

const DAY_MS = 24 * 60 * 60 * 1000;

describe.each(['postgres', 'pglite'] as const)('auth_revocations pruning on %s', (kind) => {
  let handle: DbHandle;
  let database: TestDatabase | undefined;
  const { log } = captureLogs();

  beforeAll(async () => {
    if (kind === 'pglite') {
      handle = await openMigratedPglite(log);
    } else {
      database = await createMigratedDatabase();
      handle = await createDb({ kind: 'postgres', url: database.url, poolMax: 4 }, log);
    }
  });

  afterAll(async () => {
    await handle?.close();
    await database?.drop();
  });

  /** A revocation row written `agoMs` before now, as a transaction open that long would leave it. */
  const writeRow = async (agoMs: number) => {
    const userId = randomUUID() as UserId;
    const sessionId = randomUUID() as SessionId;
    await sql`insert into auth_revocations (user_id, session_id, at)
      values (${userId}, ${sessionId}, now() - make_interval(secs => ${agoMs / 1000}))`.execute(handle.db);
    return sessionId;
  };

  it('keeps a row committed after the bound snapshot, however old its time, for a node polling from before it', async () => {
    const old = await writeRow(3 * DAY_MS);
    // The prune's bound: a snapshot taken long enough ago that every node has polled past it — one
    // in which `old`'s transaction had finished. Another test file's transaction open on the shared
    // cluster holds a snapshot's xmin back (seen with four Vitest workers): wait for such a snapshot,
    // as the 10-minute-old bound of production always is.
    let bound = '';
    for (let attempt = 0; attempt < 200; attempt += 1) {
      bound = (await readAuthRevocations(handle.db, { withinMs: 1_000 })).snapshot;
      const finished = await sql<{
        done: boolean;
      }>`select xid < pg_snapshot_xmin(${bound}::pg_snapshot) as done
        from auth_revocations where session_id = ${old}`.execute(handle.db);
      if (finished.rows[0]?.done === true) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // A node's last poll, then a long-open transaction's revocation commits.
    const nodePage = await readAuthRevocations(handle.db, { withinMs: 1_000 });
    const late = await writeRow(3 * DAY_MS);
    await pruneAuthRevocations(handle.db, DAY_MS, bound);
    const next = await readAuthRevocations(handle.db, { snapshot: nodePage.snapshot });
    expect(next.rows.map((row) => row.sessionId)).toEqual([late]);
    const left = await sql<{ session_id: string }>`select session_id from auth_revocations`.execute(
      handle.db,
    );
    const ids = left.rows.map((row) => row.session_id);
    expect(ids).toContain(late);
    expect(ids).not.toContain(old);
    // Read once: the following poll does not see it again.
    const after = await readAuthRevocations(handle.db, { snapshot: next.snapshot });
    expect(after.rows).toEqual([]);
  });

  it('refuses TRUNCATE of sessions and users (no row trigger would report it), not of other tables', async () => {
    for (const table of ['sessions', 'users', 'refresh_tokens']) {
      const outcome = await sql
        .raw(`truncate ${table} cascade`)
        .execute(handle.db)
        .then(
          () => 'done',
          (error: unknown) => String(error),
        );
      if (table === 'refresh_tokens') expect(outcome).toBe('done');
      else expect(outcome).toMatch(/truncate/i);
    }
  });

  it('reports a session moved to another user (or renamed) as ended for its old owner', async () => {
    const users = await sql<{ id: UserId }>`insert into users (username, email, password_hash)
      select 'u' || g || ${randomUUID()}, 'u' || g || ${randomUUID()} || '@example.test', 'x'
      from generate_series(1, 2) g returning id`.execute(handle.db);
    const [owner, other] = users.rows.map((row) => row.id);
    const created = await sql<{ id: SessionId }>`insert into sessions (user_id, absolute_expires_at)
      values (${owner}, now() + interval '1 day') returning id`.execute(handle.db);
    const sessionId = created.rows[0]?.id;
    const before = await readAuthRevocations(handle.db, { withinMs: 1_000 });
    await sql`update sessions set user_id = ${other} where id = ${sessionId}`.execute(handle.db);
    const moved = await readAuthRevocations(handle.db, { snapshot: before.snapshot });
    expect(moved.rows).toEqual([expect.objectContaining({ userId: owner, sessionId })]);
    const renamed = randomUUID();
    await sql`update sessions set id = ${renamed} where id = ${sessionId}`.execute(handle.db);
    const afterRename = await readAuthRevocations(handle.db, { snapshot: moved.snapshot });
    expect(afterRename.rows).toEqual([expect.objectContaining({ userId: other, sessionId })]);
  });
});
