/**
 * Review 25: the `messages.unread` notification names up to three senders and says "and others"
 * only when more people wrote. Exactly three senders were told as "a, b, c and others": the
 * summary read at most three names, so three could not be told from more.
 *
 * The real service and repository run against a stand-in database that answers each query by its
 * table, and honours the LIMIT of the senders query as PostgreSQL would.
 */
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
} from 'kysely';
import { describe, expect, it } from 'vitest';
import type { RoomId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import { createLogger } from '../../platform/logger.js';
import { checkUnreadRoom, type NotificationsDeps } from './service.js';

const roomId = '6f1d2c3b-4a5e-4f60-8b7c-1d2e3f4a5b6c' as RoomId;
const userId = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d' as UserId;
const digestId = '7c6b5a49-3827-4165-9f8e-7d6c5b4a3928';

/** A database holding one unread streak of room `roomId` by `senders`; records every statement. */
function fakeDb(senders: readonly string[]) {
  const statements: CompiledQuery[] = [];
  const answer = (query: CompiledQuery): unknown[] => {
    const text = query.sql;
    if (text.includes('from "room_members"')) return [{ last_read_seq: '7' }];
    if (text.includes('"users"."username"')) {
      const limit = Number(query.parameters.at(-1));
      return senders.slice(0, limit).map((username) => ({ username }));
    }
    if (text.includes('count(*)') && text.includes('from "messages"')) return [{ count: '5', last: '12' }];
    if (text.includes('from "rooms"')) return [{ title: 'Team' }];
    if (text.includes('insert into "notifications"')) {
      return [
        {
          id: '1b2c3d4e-5f60-4172-8394-a5b6c7d8e9f0',
          user_id: userId,
          event_id: 'e',
          type: 'messages.unread',
          title: 't',
          body: 'b',
          data: {},
          in_app: true,
          digest_id: null,
          pushed_at: null,
          read_at: null,
          trace_id: null,
          created_at: new Date(),
        },
      ];
    }
    if (text.includes('from "notification_digests"'))
      return [{ id: digestId, user_id: userId, status: 'open', due_at: new Date(Date.now() + 60_000) }];
    return [];
  };
  const connection: DatabaseConnection = {
    executeQuery: async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
      statements.push(query);
      return { rows: answer(query) as R[] };
    },
    streamQuery: () => {
      throw new Error('not used');
    },
  };
  const driver: Driver = {
    init: async () => undefined,
    acquireConnection: async () => connection,
    beginTransaction: async () => undefined,
    commitTransaction: async () => undefined,
    rollbackTransaction: async () => undefined,
    releaseConnection: async () => undefined,
    destroy: async () => undefined,
  };
  const db = new Kysely<Database>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => driver,
      createIntrospector: (k) => new PostgresIntrospector(k),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
  });
  return { db, statements };
}

/** The body the notification was stored with. */
async function unreadBody(senders: readonly string[]): Promise<string | undefined> {
  const { db, statements } = fakeDb(senders);
  const deps: NotificationsDeps = {
    db,
    bus: { publish: async () => undefined } as unknown as NotificationsDeps['bus'],
    clock: { now: () => new Date() },
    log: createLogger({ level: 'silent', pretty: false }),
    tasks: { enqueue: async () => undefined },
    isOnline: async () => false,
    settings: { digestMs: 60_000, unreadAfterMs: 60_000, currency: 'USD' },
  };
  expect(await checkUnreadRoom(deps, { roomId, userId, readSeq: 7 })).toBe('stored');
  const insert = statements.find((query) => query.sql.includes('insert into "notifications"'));
  // The title is "5 new messages in Team"; the body names who wrote.
  return insert?.parameters.find(
    (value): value is string => typeof value === 'string' && value.includes('new messages from'),
  );
}

describe('messages.unread names its senders', () => {
  it('names exactly three senders without "and others"', async () => {
    expect(await unreadBody(['alice', 'bob', 'carol'])).toBe(
      '5 new messages from alice, bob, carol in Team.',
    );
  });

  it('adds "and others" when a fourth person wrote', async () => {
    expect(await unreadBody(['alice', 'bob', 'carol', 'dave'])).toBe(
      '5 new messages from alice, bob, carol and others in Team.',
    );
  });
});
