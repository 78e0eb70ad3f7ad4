/**
 * The retention job on real PostgreSQL: rows past their retention go, young ones and pending mail
 * stay, and a run over more rows than one batch deletes them all.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { pruneExpiredRows, RETENTION } from '../../src/domain/maintenance/retention.js';
import { insertUsers, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';

const DAY = 86_400_000;

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
    expect(Object.values(await pruneExpiredRows(db, now))).toEqual([0, 0, 0, 0]);
    // Keys are honoured for 24 h (PROTOCOL.md): never pruned before that.
    expect(RETENTION.idempotencyKeys).toBeGreaterThan(DAY);
  });
});
