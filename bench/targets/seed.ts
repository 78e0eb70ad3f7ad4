/**
 * Fast seeding for the gigwire benchmark target, straight into PostgreSQL through gigwire's own
 * Kysely handle: users (one shared argon2 hash, verified emails), one session per user as
 * `POST /v1/auth/login` would create it, and access JWTs minted by gigwire's own token service
 * (signing key from `signing_keys`, the same issuer, audience and TTL as the server), so the tokens
 * are indistinguishable from those of a real login. Group rooms go in the same way as the room
 * service's `create` writes them (rooms + room_members, role `member`, last_read_seq 0).
 *
 * No refresh tokens are written: nothing in the benchmark refreshes, and authentication of a request
 * or an upgrade only reads the user and session rows.
 */
import { randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type { SessionId, UserId } from '../../protocol/src/ids.js';
import type { Database } from '../../src/db/database.js';
import type { TokenService } from '../../src/domain/auth/tokens.js';
import type { ClientCredential } from '../lib/target.js';

/** Rows per INSERT statement (arrays through unnest: one parameter per column, whatever the count). */
const ROWS_PER_STATEMENT = 5_000;
/** Tokens signed concurrently (WebCrypto Ed25519 runs on the libuv pool). */
const SIGN_CONCURRENCY = 512;

export interface SeedUsersOptions {
  /** First index of this batch; usernames are `bench_<index>`, so batches never collide. */
  readonly firstIndex: number;
  readonly count: number;
  readonly passwordHash: string;
  /** When each session ends at the latest (REFRESH_ABSOLUTE_TTL_S after now). */
  readonly sessionAbsoluteTtlS: number;
}

export const benchUsername = (index: number) => `bench_${index}`;
export const benchEmail = (index: number) => `bench_${index}@bench.gigwire.test`;

/** Inserts users and their sessions; returns [userId, sessionId] in index order. */
export async function insertUsersWithSessions(
  db: Kysely<Database>,
  options: SeedUsersOptions,
): Promise<{ userId: string; sessionId: string }[]> {
  const out: { userId: string; sessionId: string }[] = [];
  const absoluteExpiresAt = new Date(Date.now() + options.sessionAbsoluteTtlS * 1000);
  for (let start = 0; start < options.count; start += ROWS_PER_STATEMENT) {
    const size = Math.min(ROWS_PER_STATEMENT, options.count - start);
    const usernames: string[] = [];
    const emails: string[] = [];
    for (let i = 0; i < size; i++) {
      usernames.push(benchUsername(options.firstIndex + start + i));
      emails.push(benchEmail(options.firstIndex + start + i));
    }
    const rows = await db.transaction().execute(async (trx) => {
      // search_document is what users.repo's searchDocumentOf gives for a bare account: the username.
      const users = await sql<{ id: string; username: string }>`
        insert into users (username, email, email_verified_at, password_hash, roles, search_document)
        select u.username, u.email, now(), ${options.passwordHash}, array['worker']::text[], u.username
        from unnest(${usernames}::text[], ${emails}::text[]) as u(username, email)
        returning id, username`.execute(trx);
      const idByName = new Map(users.rows.map((row) => [row.username, row.id]));
      const userIds = usernames.map((name) => {
        const id = idByName.get(name);
        if (id === undefined) throw new Error(`user ${name} was not inserted`);
        return id;
      });
      const sessions = await sql<{ id: string; user_id: string }>`
        insert into sessions (user_id, absolute_expires_at, user_agent, ip)
        select s.user_id, ${absoluteExpiresAt}, 'gigwire-bench', '127.0.0.1'
        from unnest(${userIds}::uuid[]) as s(user_id)
        returning id, user_id`.execute(trx);
      const sessionByUser = new Map(sessions.rows.map((row) => [row.user_id, row.id]));
      return userIds.map((userId) => {
        const sessionId = sessionByUser.get(userId);
        if (sessionId === undefined) throw new Error(`no session for ${userId}`);
        return { userId, sessionId };
      });
    });
    out.push(...rows);
  }
  return out;
}

/** Access tokens for the sessions, as the auth service mints them at login (roles worker, sv 0). */
export async function mintAccessTokens(
  tokens: TokenService,
  sessions: readonly { userId: string; sessionId: string }[],
): Promise<ClientCredential[]> {
  const out: ClientCredential[] = new Array(sessions.length);
  for (let start = 0; start < sessions.length; start += SIGN_CONCURRENCY) {
    const slice = sessions.slice(start, start + SIGN_CONCURRENCY);
    const issued = await Promise.all(
      slice.map((s) =>
        tokens.issue({
          // Real uuids of the rows just inserted.
          sub: s.userId as UserId,
          sid: s.sessionId as SessionId,
          roles: ['worker'],
          sv: 0,
        }),
      ),
    );
    issued.forEach((result, i) => {
      const session = slice[i];
      if (session !== undefined)
        out[start + i] = { userId: session.userId, token: result.token, connectToken: result.connectToken };
    });
  }
  return out;
}

/**
 * Group rooms r = 0..rooms-1 with members credentials[r*m .. (r+1)*m-1], created by their first
 * member, exactly as the room service's `create` stores a group (one transaction).
 */
export async function insertGroupRooms(
  db: Kysely<Database>,
  credentials: readonly ClientCredential[],
  rooms: number,
  membersPerRoom: number,
): Promise<string[]> {
  if (!Number.isInteger(rooms) || rooms < 0 || !Number.isInteger(membersPerRoom) || membersPerRoom < 1) {
    throw new Error(`prepareRooms: bad shape ${rooms} x ${membersPerRoom}`);
  }
  if (credentials.length < rooms * membersPerRoom) {
    throw new Error(
      `prepareRooms: ${rooms} rooms of ${membersPerRoom} need ${rooms * membersPerRoom} credentials, got ${credentials.length}`,
    );
  }
  const roomIds = Array.from({ length: rooms }, () => randomUUID());
  const titles = roomIds.map((_, r) => `bench room ${r}`);
  const creators = roomIds.map((_, r) => credentials[r * membersPerRoom]?.userId ?? '');
  const memberRoomIds: string[] = [];
  const memberUserIds: string[] = [];
  for (let r = 0; r < rooms; r++) {
    for (let k = 0; k < membersPerRoom; k++) {
      memberRoomIds.push(roomIds[r] ?? '');
      memberUserIds.push(credentials[r * membersPerRoom + k]?.userId ?? '');
    }
  }
  await db.transaction().execute(async (trx) => {
    await sql`
      insert into rooms (id, kind, title, created_by, direct_key)
      select r.id, 'group', r.title, r.created_by, null
      from unnest(${roomIds}::uuid[], ${titles}::text[], ${creators}::uuid[]) as r(id, title, created_by)`.execute(
      trx,
    );
    for (let start = 0; start < memberRoomIds.length; start += ROWS_PER_STATEMENT * 4) {
      const roomSlice = memberRoomIds.slice(start, start + ROWS_PER_STATEMENT * 4);
      const userSlice = memberUserIds.slice(start, start + ROWS_PER_STATEMENT * 4);
      await sql`
        insert into room_members (room_id, user_id, role, last_read_seq)
        select m.room_id, m.user_id, 'member', 0
        from unnest(${roomSlice}::uuid[], ${userSlice}::uuid[]) as m(room_id, user_id)`.execute(trx);
    }
  });
  return roomIds;
}
