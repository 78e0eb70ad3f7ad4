/**
 * The retention job on real PostgreSQL: rows past their retention go, young ones and pending mail
 * stay, and a run over more rows than one batch deletes them all. Auth rows on the real auth
 * service: spent successors, expired refresh tokens and long-ended sessions go (without a flood of
 * revocation rows), live ones stay and still refresh, and what a pruned token answers.
 */
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionId, UserId } from '../../protocol/src/ids.js';
import { createPasswordHasher } from '../../src/domain/auth/passwords.js';
import { createAuthService } from '../../src/domain/auth/service.js';
import { createTokenService } from '../../src/domain/auth/tokens.js';
import { pruneExpiredRows, RETENTION } from '../../src/domain/maintenance/retention.js';
import { systemClock } from '../../src/platform/clock.js';
import type { WindowCounter } from '../../src/platform/window-counter.js';
import { captureLogs } from '../support/context.js';
import { insertUsers, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';
import { testTokenSettings } from '../support/tokens.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const nothingPruned = Object.fromEntries(Object.keys(RETENTION).map((kind) => [kind, 0]));
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

/** Login throttling is not under test here: a counter that never counts (no Redis needed). */
const noCounters: WindowCounter = {
  peek: async () => ({ count: 0, resetInMs: 0 }),
  hit: async () => ({ count: 0, resetInMs: 0 }),
  clear: async () => {},
  release: async () => {},
};

describe('retention', () => {
  let handle: PaymentsTestDb;

  beforeAll(async () => {
    handle = await openPaymentsTestDb(2);
  });
  afterAll(async () => {
    await handle?.close();
  });

  const count = async (table: string, where = sql`true`) =>
    Number(
      (
        await sql<{ n: string }>`select count(*) as n from ${sql.table(table)} where ${where}`.execute(
          handle.db,
        )
      ).rows[0]?.n,
    );

  it('deletes what is past its retention and keeps the rest', async () => {
    const db = handle.db;
    const now = new Date();
    const ago = (ms: number) => new Date(now.getTime() - ms);
    const [userId] = (await insertUsers(db, 1, 'retention')) as [UserId];

    // Outbox: old published (go), young published and old unpublished (stay). More than one batch.
    await sql`insert into outbox_events (type, payload, created_at, published_at)
      select 'test.old', '{}'::jsonb, ${ago(9 * DAY)}, ${ago(8 * DAY)} from generate_series(1, 5200)`.execute(
      db,
    );
    await sql`insert into outbox_events (type, payload, published_at) values
      ('test.young', '{}'::jsonb, ${ago(DAY)}), ('test.unpublished', '{}'::jsonb, null)`.execute(db);
    await sql`update outbox_events set created_at = ${ago(30 * DAY)} where type = 'test.unpublished'`.execute(
      db,
    );

    // Idempotency keys: 3 days old (go), 1 hour old (stay).
    for (const [key, at] of [
      ['old-key', ago(3 * DAY)],
      ['young-key', ago(3_600_000)],
    ] as const) {
      await sql`insert into idempotency_keys (user_id, key, scope, request_hash, created_at)
        values (${userId}, ${key}, 'POST /v1/wallet/transfers', 'h', ${at})`.execute(db);
    }

    // Email tokens: expired two days ago (go), expiring tomorrow (stay).
    for (const [hash, expires] of [
      ['old-token', ago(2 * DAY)],
      ['live-token', new Date(now.getTime() + DAY)],
    ] as const) {
      await sql`insert into email_tokens (user_id, purpose, token_hash, expires_at)
        values (${userId}, 'reset_password', ${hash}, ${expires})`.execute(db);
    }

    // Mail: sent 40 days ago (go), sent yesterday (stay), pending for 40 days (stays: may still go out).
    for (const [key, status, at] of [
      ['mail-old', 'sent', ago(40 * DAY)],
      ['mail-young', 'sent', ago(DAY)],
      ['mail-pending', 'pending', ago(40 * DAY)],
    ] as const) {
      await sql`insert into emails (idempotency_key, template, user_id, to_address, subject, status, created_at, sent_at)
        values (${key}, 'welcome', ${userId}, 'r@example.test', 's', ${status}, ${at},
          ${status === 'sent' ? at : null})`.execute(db);
    }

    const report = await pruneExpiredRows(db, now);
    expect(report).toEqual({
      ...nothingPruned,
      publishedOutboxEvents: 5200,
      idempotencyKeys: 1,
      expiredEmailTokens: 1,
      settledEmails: 1,
    });
    expect(await count('outbox_events', sql`type = 'test.old'`)).toBe(0);
    expect(await count('outbox_events', sql`type in ('test.young', 'test.unpublished')`)).toBe(2);
    expect(await count('idempotency_keys', sql`key = 'young-key'`)).toBe(1);
    expect(await count('email_tokens', sql`token_hash = 'live-token'`)).toBe(1);
    expect(await count('emails', sql`idempotency_key in ('mail-young', 'mail-pending')`)).toBe(2);
    // A second run finds nothing more.
    expect(await pruneExpiredRows(db, now)).toEqual(nothingPruned);
    // Keys are honoured for 24 h (PROTOCOL.md): never pruned before that.
    expect(RETENTION.idempotencyKeys).toBeGreaterThan(DAY);
  });

  it('prunes spent successors, expired refresh tokens and long-ended sessions; live ones stay and refresh', async () => {
    const db = handle.db;
    const auth = createAuthService({
      db,
      clock: systemClock,
      log: captureLogs().log,
      tokens: createTokenService(db, testTokenSettings, systemClock),
      passwords: createPasswordHasher(),
      counters: noCounters,
      settings: {
        refresh: { idleTtlS: 7 * 86_400, absoluteTtlS: 30 * 86_400, reuseGraceS: 60 },
        login: { maxFailures: 10, ipMaxFailures: 100, windowS: 900 },
      },
      // Every check reads its row (the revocation feed is not started).
      sessionCheck: { maxAgeMs: 0 },
    });
    const password = 'Vermilion-Otter-42!';
    await auth.register({ username: 'keeper', email: 'keeper@example.test', password });
    const meta = { ip: '127.0.0.1', userAgent: 'retention-test' };
    const sessionOf = async (refreshToken: string) =>
      (
        await db
          .selectFrom('refresh_tokens')
          .select('session_id')
          .where('token_hash', '=', sha256(refreshToken))
          .executeTakeFirstOrThrow()
      ).session_id;
    const tokenRow = (refreshToken: string) =>
      db
        .selectFrom('refresh_tokens')
        .select(['successor_sealed', 'spent_at'])
        .where('token_hash', '=', sha256(refreshToken))
        .executeTakeFirst();

    // Live: its first token spent just now (within the grace: its successor pair is still needed).
    const first = await auth.login('keeper', password, meta);
    const second = await auth.refresh(first.refreshToken);
    // Live, with a token spent three days ago that expired two days ago (pruned).
    const oldSpent = await auth.login('keeper', password, meta);
    const oldSpentNext = await auth.refresh(oldSpent.refreshToken);
    await sql`update refresh_tokens set spent_at = ${new Date(Date.now() - 3 * DAY)},
      expires_at = ${new Date(Date.now() - 2 * DAY)}
      where token_hash = ${sha256(oldSpent.refreshToken)}`.execute(db);
    // Live, with a token spent two hours ago, still unexpired (its successor pair is cleared).
    const sealed = await auth.login('keeper', password, meta);
    const sealedNext = await auth.refresh(sealed.refreshToken);
    await sql`update refresh_tokens set spent_at = ${new Date(Date.now() - 2 * HOUR)}
      where token_hash = ${sha256(sealed.refreshToken)}`.execute(db);
    // A token that expired twelve hours ago: within the day of margin, kept.
    await sql`update refresh_tokens set expires_at = ${new Date(Date.now() - 12 * HOUR)}
      where token_hash = ${sha256(sealedNext.refreshToken)}`.execute(db);

    // Ended sessions of the same user, older than all of the above (none is its newest).
    const keeperId = (
      await db.selectFrom('users').select('id').where('username', '=', 'keeper').executeTakeFirstOrThrow()
    ).id;
    const ago = (ms: number) => new Date(Date.now() - ms);
    const insertSession = async (userId: UserId, created: Date, absoluteEnd: Date, revokedAt: Date | null) =>
      (
        await db
          .insertInto('sessions')
          .values({
            user_id: userId,
            created_at: created,
            absolute_expires_at: absoluteEnd,
            revoked_at: revokedAt,
            revoked_reason: revokedAt === null ? null : 'logout',
            user_agent: 'old',
            ip: null,
          })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id;
    const insertToken = (sessionId: SessionId, hash: string, expires: Date) =>
      db
        .insertInto('refresh_tokens')
        .values({
          session_id: sessionId,
          token_hash: hash,
          expires_at: expires,
          spent_at: null,
          successor_sealed: null,
        })
        .execute();
    // Expired 100 days ago, never revoked: goes (its token expired with it, pruned first).
    const expiredLongAgo = await insertSession(keeperId, ago(130 * DAY), ago(100 * DAY), null);
    await insertToken(expiredLongAgo, 'expired-long-ago', ago(100 * DAY));
    // Revoked 95 days ago (absolute end still ahead): goes, its unexpired token with it (cascade).
    const revokedLongAgo = await insertSession(
      keeperId,
      ago(120 * DAY),
      new Date(Date.now() + DAY),
      ago(95 * DAY),
    );
    await insertToken(revokedLongAgo, 'revoked-long-ago', new Date(Date.now() + DAY));
    // Ended within the 90 days: kept (new-login notices still know their devices).
    const expiredRecently = await insertSession(keeperId, ago(40 * DAY), ago(10 * DAY), null);
    const revokedRecently = await insertSession(
      keeperId,
      ago(20 * DAY),
      new Date(Date.now() + DAY),
      ago(5 * DAY),
    );
    // A user whose only session ended 200 days ago: kept (their newest, whatever its age).
    const [loner] = (await insertUsers(db, 1, 'loner')) as [UserId];
    const lonerSession = await insertSession(loner, ago(230 * DAY), ago(200 * DAY), null);

    const revocationsBefore = await count('auth_revocations');
    const report = await pruneExpiredRows(db, new Date());
    expect(report).toEqual({
      ...nothingPruned,
      expiredRefreshTokens: 2,
      spentRefreshSuccessors: 1,
      endedSessions: 2,
    });
    expect(await count('sessions', sql`id in (${expiredLongAgo}, ${revokedLongAgo})`)).toBe(0);
    expect(await count('refresh_tokens', sql`token_hash in ('expired-long-ago', 'revoked-long-ago')`)).toBe(
      0,
    );
    expect(
      await count('sessions', sql`id in (${expiredRecently}, ${revokedRecently}, ${lonerSession})`),
    ).toBe(3);
    // Deleting the never-revoked session fired the trigger; its row went again before the commit.
    expect(await count('auth_revocations')).toBe(revocationsBefore);
    expect(await count('auth_revocations', sql`session_id = ${expiredLongAgo}`)).toBe(0);
    expect(await tokenRow(oldSpent.refreshToken)).toBeUndefined();
    expect(await tokenRow(sealed.refreshToken)).toMatchObject({ successor_sealed: null });
    expect(await tokenRow(sealedNext.refreshToken)).toMatchObject({ spent_at: null });
    expect((await tokenRow(first.refreshToken))?.successor_sealed).not.toBeNull();
    expect(await pruneExpiredRows(db, new Date())).toEqual(nothingPruned);

    // Within the grace the spent token still gets the same pair; the live one refreshes.
    expect(await auth.refresh(first.refreshToken)).toEqual(second);
    const third = await auth.refresh(second.refreshToken);
    await expect(auth.authenticate(third.accessToken)).resolves.toMatchObject({ userId: keeperId });
    // A pruned token is refused like an expired one. Lost with its row: reuse detection for it —
    // the session is not revoked, and its successor still refreshes.
    await expect(auth.refresh(oldSpent.refreshToken)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(auth.refresh(oldSpentNext.refreshToken)).resolves.toMatchObject({ tokenType: 'Bearer' });
    // A spent token whose pair was cleared is still reuse: its session is revoked, as before.
    const sealedSession = await sessionOf(sealed.refreshToken);
    await expect(auth.refresh(sealed.refreshToken)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect(
      await db
        .selectFrom('sessions')
        .select('revoked_reason')
        .where('id', '=', sealedSession)
        .executeTakeFirst(),
    ).toEqual({ revoked_reason: 'refresh_token_reuse' });
  });
});
