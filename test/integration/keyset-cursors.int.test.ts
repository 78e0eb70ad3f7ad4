/**
 * Keyset pages over rows whose timestamps the database wrote (`created_at default …`): users,
 * admin emails and notifications. Cursors carry milliseconds (what a JavaScript Date holds), so the
 * stored timestamps must too — rows written in one transaction share one `now()`, and with
 * microseconds every row after the first page's edge compared greater than the cursor and was
 * skipped. Walks every page and expects every row once.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import type { Database } from '../../src/db/database.js';
import { listNotifications } from '../../src/db/repositories/notifications.repo.js';
import { listEmails } from '../../src/db/repositories/outbox.repo.js';
import { searchUsers } from '../../src/db/repositories/users.repo.js';
import { decodeCursor, pageOf } from '../../src/domain/pagination.js';
import { openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';

let testDb: PaymentsTestDb;
let db: Kysely<Database>;

beforeAll(async () => {
  testDb = await openPaymentsTestDb(4);
  db = testDb.db;
});
afterAll(async () => {
  await testDb?.close();
});

/** Follows nextCursor from the first page to the last; returns the ids in page order. */
async function walk<Row extends { created_at: Date; id: string }>(
  fetchPage: (after: ReturnType<typeof decodeCursor>, limit: number) => Promise<Row[]>,
): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 20; page++) {
    const rows = await fetchPage(decodeCursor('walk', cursor), 3);
    const { data, nextCursor } = pageOf('walk', rows, 2, (row) => row.id);
    ids.push(...data);
    if (nextCursor === null) return ids;
    cursor = nextCursor;
  }
  throw new Error('cursor walk did not end');
}

describe('keyset cursors over database-written timestamps', () => {
  it('users written in one transaction: every page, every user once', async () => {
    const tag = `kc${randomUUID().slice(0, 8)}`;
    const ids = await db.transaction().execute(async (trx) => {
      const rows = await trx
        .insertInto('users')
        .values(
          Array.from({ length: 7 }, (_, i) => ({
            username: `${tag}_${i}`,
            email: `${tag}_${i}@example.test`,
            password_hash: 'x',
            search_document: `${tag} ${tag}_${i}`,
          })),
        )
        .returning('id')
        .execute();
      return rows.map((row) => row.id as string);
    });
    const walked = await walk((after, limit) =>
      searchUsers(db, { terms: [tag], skill: undefined, location: undefined, role: undefined, after, limit }),
    );
    expect([...walked].sort()).toEqual([...ids].sort());
  });

  it('notifications stored together for one user: every page, each once', async () => {
    const [user] = await db
      .insertInto('users')
      .values({
        username: `kn${randomUUID().slice(0, 8)}`,
        email: `kn${randomUUID().slice(0, 8)}@example.test`,
        password_hash: 'x',
        search_document: 'kn',
      })
      .returning('id')
      .execute();
    const userId = user?.id as UserId;
    const ids = await db.transaction().execute(async (trx) =>
      (
        await trx
          .insertInto('notifications')
          .values(
            Array.from({ length: 5 }, (_, i) => ({
              user_id: userId,
              event_id: `evt-${randomUUID()}-${i}`,
              type: 'bid.received',
              title: `t${i}`,
              body: 'b',
              data: {},
              in_app: true,
            })),
          )
          .returning('id')
          .execute()
      ).map((row) => row.id as string),
    );
    const walked = await walk((after, limit) =>
      listNotifications(db, userId, { unread: false, after, limit }),
    );
    expect([...walked].sort()).toEqual([...ids].sort());
  });

  it('admin emails written together: every page, each once', async () => {
    const before = (await walk((after, limit) => listEmails(db, after, limit))).length;
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto('emails')
        .values(
          Array.from({ length: 5 }, (_, i) => ({
            idempotency_key: `kc-${randomUUID()}-${i}`,
            to_address: `to${i}@example.test`,
            template: 'welcome',
            subject: 's',
            text_body: 't',
            html_body: 'h',
            status: 'sent',
          })),
        )
        .execute();
    });
    expect((await walk((after, limit) => listEmails(db, after, limit))).length).toBe(before + 5);
  });
});
