/**
 * Named prepared statements (src/db/prepared-statements.ts) on a real PostgreSQL 15 and on PGlite:
 * the node-wide message insert is really prepared on the pool's connection and nothing else is;
 * one fixed text serves every batch size; values survive the array encoding byte for byte; the
 * statement stays usable after a failed call and after a migration adds a column to `messages`.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import type { DbHandle } from '../../src/db/create-db.js';
import { preparedStatementMark } from '../../src/db/prepared-statements.js';
import {
  addRoomMembers,
  insertNewMessages,
  insertNewMessagesOfRooms,
  insertRoom,
  messagesAfter,
  type NewMessage,
  roomOfUniqueViolation,
} from '../../src/db/repositories/rooms.repo.js';
import { findProfilesByIds } from '../../src/db/repositories/users.repo.js';
import { captureLogs, openMigratedPglite } from '../support/context.js';
import { insertUsers, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';

const awkwardBodies = [
  'plain',
  'quotes " and \' and `',
  'back\\slash \\\\ and \\" escaped-looking',
  '{braces,commas}, "NULL", NULL',
  'line\nbreak\ttab\r\n',
  'ünïcødé — 日本語 — 🚀',
  '',
];
const awkwardMetas: (Record<string, unknown> | null)[] = [
  null,
  { kind: 'text' },
  { quote: 'say "hi"', slash: 'a\\b', nested: { list: [1, 'two', null, { three: true }] } },
  { braces: '{a,b}', unicode: '🚀 ü', empty: '' },
  { null: null },
  { number: 12.5, negative: -3, big: 9007199254740991 },
  { text: 'NULL' },
];

async function roomWithSender(db: DbHandle['db'], sender: UserId, title: string): Promise<RoomId> {
  const room = await insertRoom(db, { kind: 'group', title, createdBy: sender, directKey: null });
  await addRoomMembers(db, room.id, [sender]);
  return room.id;
}

const messagesOf = (sender: UserId, firstSeq: number, count: number, tag: string): NewMessage[] =>
  Array.from({ length: count }, (_, i) => ({
    seq: firstSeq + i,
    senderId: sender,
    clientMsgId: `${tag}-${firstSeq + i}`,
    body: awkwardBodies[(firstSeq + i) % awkwardBodies.length] ?? '',
    meta: awkwardMetas[(firstSeq + i) % awkwardMetas.length] ?? null,
  }));

/**
 * A node-wide write that collides in one room fails as a whole, and its error names that room (the
 * group commit writes it alone and the others together again): a resend of a stored clientMsgId,
 * then a taken seq, in the second of two rooms.
 */
async function expectCollisionNamesItsRoom(db: DbHandle['db'], sender: UserId, tag: string): Promise<void> {
  const [fine, colliding] = [
    await roomWithSender(db, sender, `${tag}-a`),
    await roomWithSender(db, sender, `${tag}-b`),
  ];
  const [stored] = messagesOf(sender, 1, 1, `${tag}-b`) as [NewMessage];
  await insertNewMessages(db, colliding, 0, [stored]);
  const fresh = messagesOf(sender, 1, 1, `${tag}-a`);
  for (const clash of [
    { ...stored, seq: 2 },
    { ...stored, clientMsgId: `${tag}-other` },
  ]) {
    const failure = await insertNewMessagesOfRooms(db, [
      { roomId: fine, epoch: 0, messages: fresh },
      { roomId: colliding, epoch: 0, messages: [clash] },
    ]).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({ code: '23505' });
    expect(roomOfUniqueViolation(failure)).toBe(colliding);
  }
  expect(await messagesAfter(db, fine, 0, 10)).toEqual([]);
}

describe('prepared statements on PostgreSQL 15', () => {
  // One connection, so pg_prepared_statements shows what the pool's only client prepared.
  let t: PaymentsTestDb;
  let sender: UserId;

  beforeAll(async () => {
    t = await openPaymentsTestDb(1);
    [sender] = (await insertUsers(t.db, 1, 'prepared')) as [UserId];
  });
  afterAll(async () => {
    await t.close();
  });

  const preparedNames = async () =>
    (
      await sql<{ name: string }>`select name from pg_prepared_statements order by name`.execute(t.db)
    ).rows.map((row) => row.name);

  it('prepares the marked insert once per connection, and nothing unmarked', async () => {
    expect(await preparedNames()).toEqual([]);
    const [a, b] = [await roomWithSender(t.db, sender, 'a'), await roomWithSender(t.db, sender, 'b')];
    expect(await preparedNames()).toEqual([]);

    // Batch shapes 1, 3+2 and 2: one text for all of them, prepared on first use only.
    await insertNewMessages(t.db, a, 0, messagesOf(sender, 1, 1, 'a'));
    expect(await preparedNames()).toEqual(['insert_new_messages_of_rooms']);
    const stored = await insertNewMessagesOfRooms(t.db, [
      { roomId: a, epoch: 0, messages: messagesOf(sender, 2, 3, 'a') },
      { roomId: b, epoch: 0, messages: messagesOf(sender, 1, 2, 'b') },
    ]);
    expect(stored.get(a)?.map((row) => row.seq)).toEqual([2, 3, 4]);
    expect(stored.get(b)?.map((row) => row.seq)).toEqual([1, 2]);
    await insertNewMessagesOfRooms(t.db, [{ roomId: b, epoch: 0, messages: messagesOf(sender, 3, 2, 'b') }]);
    expect(await preparedNames()).toEqual(['insert_new_messages_of_rooms']);

    const lastSeqs = await t.db
      .selectFrom('rooms')
      .select(['id', 'last_seq'])
      .where('id', 'in', [a, b])
      .execute();
    expect(Object.fromEntries(lastSeqs.map((row) => [row.id, Number(row.last_seq)]))).toEqual({
      [a]: 4,
      [b]: 4,
    });
  });

  it('stores awkward bodies and metas exactly as given', async () => {
    const room = await roomWithSender(t.db, sender, 'awkward');
    const sent = messagesOf(sender, 1, awkwardBodies.length * awkwardMetas.length, 'awk');
    const answered = await insertNewMessages(t.db, room, 0, sent);
    const read = await messagesAfter(t.db, room, 0, 1_000);
    for (const rows of [answered, read]) {
      expect(rows.map(({ seq, client_msg_id, body, meta }) => ({ seq, client_msg_id, body, meta }))).toEqual(
        sent.map((m) => ({ seq: m.seq, client_msg_id: m.clientMsgId, body: m.body, meta: m.meta })),
      );
    }
  });

  it('stays usable after a failed call and after a migration adds a column to messages', async () => {
    const room = await roomWithSender(t.db, sender, 'after-failure');
    await insertNewMessages(t.db, room, 0, messagesOf(sender, 1, 1, 'f'));
    // seq 1 is taken: the whole statement fails with a unique violation.
    await expect(insertNewMessages(t.db, room, 0, messagesOf(sender, 1, 2, 'g'))).rejects.toMatchObject({
      code: '23505',
    });
    expect(
      (await insertNewMessages(t.db, room, 0, messagesOf(sender, 2, 1, 'f'))).map((row) => row.seq),
    ).toEqual([2]);

    // A later migration adds a column: explicit result columns keep the cached plan's row type.
    await sql`alter table messages add column later_note text`.execute(t.db);
    expect(
      (await insertNewMessages(t.db, room, 0, messagesOf(sender, 3, 2, 'f'))).map((row) => row.seq),
    ).toEqual([3, 4]);
    expect(await preparedNames()).toEqual(['insert_new_messages_of_rooms']);
  });

  it('reads profile rows of any number of ids with one prepared text, and only the profile columns', async () => {
    const ids = (await insertUsers(t.db, 3, 'profile')) as [UserId, UserId, UserId];
    const missing = '00000000-0000-4000-8000-000000000000' as UserId;
    const one = await findProfilesByIds(t.db, [ids[0]]);
    expect(one.map((row) => row.id)).toEqual([ids[0]]);
    const many = await findProfilesByIds(t.db, [...ids, missing]);
    expect(many.map((row) => row.id).sort()).toEqual([...ids].sort());
    expect(await findProfilesByIds(t.db, [])).toEqual([]);
    expect(await preparedNames()).toContain('user_profiles_by_ids');
    // What a profile answer needs, typed as the row is elsewhere; never the password hash.
    expect(Object.keys(one[0] ?? {}).sort()).toEqual(
      [
        'id',
        'username',
        'email',
        'email_verified_at',
        'roles',
        'display_name',
        'bio',
        'avatar_url',
        'location',
        'skills',
        'hourly_rate_amount',
        'hourly_rate_currency',
        'availability',
        'portfolio_links',
        'locked_at',
        'created_at',
      ].sort(),
    );
    expect(one[0]?.roles).toEqual([]);
    expect(one[0]?.created_at).toBeInstanceOf(Date);

    // A later migration adds a column to users: the statement's row type stays what it was.
    await sql`alter table users add column later_note text`.execute(t.db);
    expect((await findProfilesByIds(t.db, [ids[1]])).map((row) => Object.keys(row).length)).toEqual([16]);
  });

  it('names the room of a collision in a node-wide write', async () => {
    await expectCollisionNamesItsRoom(t.db, sender, 'collide');
  });

  it('the mark is the start of the statement text the repositories send', () => {
    expect(preparedStatementMark('insert_new_messages_of_rooms')).toBe(
      '/* prepared:insert_new_messages_of_rooms */',
    );
  });
});

describe('prepared statements on PGlite', () => {
  let handle: DbHandle | undefined;
  afterAll(async () => {
    await handle?.close();
  });

  it('runs the marked insert as a plain statement (the mark is a comment there)', async () => {
    const { log } = captureLogs();
    handle = await openMigratedPglite(log);
    const [sender] = (await insertUsers(handle.db, 1, 'pglite')) as [UserId];
    const room = await roomWithSender(handle.db, sender, 'pglite');
    const sent = messagesOf(sender, 1, awkwardMetas.length, 'p');
    await insertNewMessages(handle.db, room, 0, sent.slice(0, 2));
    await insertNewMessagesOfRooms(handle.db, [{ roomId: room, epoch: 0, messages: sent.slice(2) }]);
    const read = await messagesAfter(handle.db, room, 0, 100);
    expect(read.map(({ seq, body, meta }) => ({ seq, body, meta }))).toEqual(
      sent.map((m) => ({ seq: m.seq, body: m.body, meta: m.meta })),
    );
    expect((await findProfilesByIds(handle.db, [sender])).map((row) => row.id)).toEqual([sender]);
    await expectCollisionNamesItsRoom(handle.db, sender, 'collide');
  });
});
