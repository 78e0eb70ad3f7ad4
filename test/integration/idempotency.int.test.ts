/**
 * Idempotency keys against real PostgreSQL (issue 11 "Done when"): the same key 20× concurrently →
 * one effect and identical responses; same key, other body → 422; a twin while the first is in
 * flight → 409; a failed effect stores nothing; a key past its retention is a new request.
 */
import { randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import type { Database } from '../../src/db/database.js';
import { runIdempotent } from '../../src/domain/payments/idempotency.js';
import type { PaymentsDeps } from '../../src/domain/payments/ledger.js';
import { topUp, transferIn, walletBalance } from '../../src/domain/payments/wallet.js';
import { insertUsers, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';

let testDb: PaymentsTestDb;
let db: Kysely<Database>;
let deps: PaymentsDeps;

beforeAll(async () => {
  testDb = await openPaymentsTestDb();
  ({ db, deps } = testDb);
});

afterAll(async () => {
  await testDb?.close();
});

const newUsers = (n: number): Promise<UserId[]> => insertUsers(db, n, 'idem');

const SCOPE = 'POST /v1/wallet/transfers';

/** What the REST route will do: the transfer and its key in one transaction. */
function postTransfer(
  from: UserId,
  body: { toUserId: UserId; amount: number },
  key: string,
  options: { waitMs?: number; ttlMs?: number; gate?: Promise<void>; started?: () => void } = {},
) {
  return runIdempotent(
    deps,
    { userId: from, key, scope: SCOPE, body, waitMs: options.waitMs ?? 10_000, ttlMs: options.ttlMs },
    async (trx) => {
      // The key is claimed (held by this open transaction) once the effect runs.
      options.started?.();
      const posted = await transferIn(trx, deps, {
        opKey: `idem:${from}:${key}`,
        fromUserId: from,
        toUserId: body.toUserId,
        amount: BigInt(body.amount),
      });
      await options.gate;
      return { status: 201, body: { transaction: { id: posted.transactionId, amount: body.amount } } };
    },
  );
}

const transfersOf = async (from: UserId) =>
  (
    await sql<{ n: string }>`select count(*)::text as n from ledger_transactions
      where kind = 'transfer' and initiator_id = ${from}`.execute(db)
  ).rows[0]?.n;

describe('idempotency keys', () => {
  it('the same key 20 times concurrently: one effect, identical responses', async () => {
    const [a, b] = await newUsers(2);
    await topUp(deps, { opKey: randomUUID(), userId: a!, amount: 1_000n });
    const key = randomUUID();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => postTransfer(a!, { toUserId: b!, amount: 10 }, key)),
    );
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
    const first = results[0]!;
    for (const r of results)
      expect({ status: r.status, body: r.body }).toEqual({ status: first.status, body: first.body });
    expect(first.status).toBe(201);
    expect(await transfersOf(a!)).toBe('1');
    expect((await walletBalance(deps, b!)).posted).toBe(10n);
  });

  it('the same key with another body or endpoint: IDEMPOTENCY_KEY_REUSED; a failed effect stores nothing', async () => {
    const [a, b] = await newUsers(2);
    await topUp(deps, { opKey: randomUUID(), userId: a!, amount: 100n });
    const key = randomUUID();
    await postTransfer(a!, { toUserId: b!, amount: 10 }, key);
    await expect(postTransfer(a!, { toUserId: b!, amount: 11 }, key)).rejects.toMatchObject({
      code: 'IDEMPOTENCY_KEY_REUSED',
    });
    await expect(
      runIdempotent(
        deps,
        {
          userId: a!,
          key,
          scope: 'POST /v1/wallet/withdrawals',
          body: { toUserId: b!, amount: 10 },
          waitMs: 1000,
        },
        async () => ({ status: 202, body: {} }),
      ),
    ).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    // Another user's identical key is another key.
    await topUp(deps, { opKey: randomUUID(), userId: b!, amount: 5n });
    expect((await postTransfer(b!, { toUserId: a!, amount: 5 }, key)).replayed).toBe(false);

    // A refused effect (95 left, 200 asked) stores nothing: the same key runs again later.
    const failing = randomUUID();
    await expect(postTransfer(a!, { toUserId: b!, amount: 200 }, failing)).rejects.toMatchObject({
      code: 'INSUFFICIENT_FUNDS',
    });
    await topUp(deps, { opKey: randomUUID(), userId: a!, amount: 200n });
    expect(await postTransfer(a!, { toUserId: b!, amount: 200 }, failing)).toMatchObject({
      status: 201,
      replayed: false,
    });
  });

  it('a twin while the first is in flight: CONFLICT (409); after it finishes: the stored response', async () => {
    const [a, b] = await newUsers(2);
    await topUp(deps, { opKey: randomUUID(), userId: a!, amount: 100n });
    const key = randomUUID();
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let started!: () => void;
    const claimed = new Promise<void>((resolve) => {
      started = resolve;
    });
    const first = postTransfer(a!, { toUserId: b!, amount: 7 }, key, { gate, started });
    await claimed;
    await expect(postTransfer(a!, { toUserId: b!, amount: 7 }, key, { waitMs: 100 })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    open();
    const done = await first;
    expect(done.replayed).toBe(false);
    const again = await postTransfer(a!, { toUserId: b!, amount: 7 }, key, { waitMs: 100 });
    expect(again).toEqual({ ...done, replayed: true });
    expect(await transfersOf(a!)).toBe('1');
  });

  it('a key past its retention is a new request', async () => {
    const [a, b] = await newUsers(2);
    await topUp(deps, { opKey: randomUUID(), userId: a!, amount: 100n });
    const key = randomUUID();
    await postTransfer(a!, { toUserId: b!, amount: 1 }, key);
    // Retention 0: the stored key is already older than it. The op key is the same, so the ledger
    // still refuses to move the money twice: the effect replays its transaction.
    const later = await postTransfer(a!, { toUserId: b!, amount: 1 }, key, { ttlMs: 0 });
    expect(later.replayed).toBe(false);
    expect(await transfersOf(a!)).toBe('1');
  });
});
