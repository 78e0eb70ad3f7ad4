/**
 * An Idempotency-Key reused after its record's retention (kept ≥ 24 h, then forgotten). A transfer's
 * ledger operation is keyed by the client's key for good, so money never moves twice for one key:
 * the same transfer again answers the first one, and another transfer under the key is 422
 * IDEMPOTENCY_KEY_REUSED (it was a 409 CONFLICT naming the internal operation key). Top-ups and
 * withdrawals are bound to their key too (review 17b: the payment's id derives from it). One
 * node over real HTTP, PostgreSQL and Redis; the key's age is set in SQL.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { transfer as ledgerTransfer, topUp } from '../../src/domain/payments/wallet.js';
import { systemClock } from '../../src/platform/clock.js';
import { isAppError } from '../../src/platform/errors.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { ageIdempotencyKey, fundWallet, postWithKey, walletOf } from '../support/idempotency-keys.js';

let node: TestNode;
let api: ReturnType<typeof httpClient>;

const wallet = (user: Registered) => walletOf(api, user);

const post = (path: string, user: Registered, key: string, body: unknown) =>
  postWithKey(api, path, user, key, body);

const transactionId = (answer: { body: Record<string, unknown> }) =>
  (answer.body.transaction as { id?: string } | undefined)?.id;
const paymentId = (answer: { body: Record<string, unknown> }) =>
  (answer.body.payment as { id?: string } | undefined)?.id;

/** The key as it would be a day and an hour later: its row is older than the retention. */
const ageKey = (user: Registered, key: string) => ageIdempotencyKey(node.db.url, user, key);

async function until(probe: () => Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  node = await startTestNode({ OUTBOX_POLL_MS: '20' });
  api = httpClient(node.node.baseUrl);
}, 60_000);

afterAll(async () => {
  await node?.stop();
});

describe('an Idempotency-Key reused after its retention', () => {
  it('is the first transfer for good (nothing moves twice); another body is 422, never a 409 naming internals', async () => {
    const payer = await registerUser(api);
    const payee = await registerUser(api);
    await fundWallet(api, payer, 1_000);

    const key = randomUUID();
    const body = { toUserId: payee.id, amount: 100 };
    const first = await post('/v1/wallet/transfers', payer, key, body);
    expect(first.status).toBe(201);
    // Within the retention: a replay of the first answer, nothing moves.
    const retry = await post('/v1/wallet/transfers', payer, key, body);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(transactionId(retry)).toBe(transactionId(first));

    // 25 h later the key's record is forgotten, but the ledger still binds the key to its transfer:
    // another body under it is another request (422), without the internal operation key.
    await ageKey(payer, key);
    const other = await post('/v1/wallet/transfers', payer, key, { ...body, amount: 50 });
    expect(other.status, JSON.stringify(other.body)).toBe(422);
    expect(other.body).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(JSON.stringify(other.body)).not.toContain(key);
    expect(JSON.stringify(other.body)).not.toContain('transfer:');
    // The same transfer again is the first one, not a second.
    const again = await post('/v1/wallet/transfers', payer, key, body);
    expect(again.status).toBe(201);
    expect(transactionId(again)).toBe(transactionId(first));
    expect((await wallet(payee)).available).toBe(100);
    expect((await wallet(payer)).available).toBe(900);
  }, 40_000);

  it('is the first top-up and the first withdrawal for good (review 17b: payments are bound to their key)', async () => {
    // money-review17b-payment-key.int.test.ts covers this in full (a second payout was made before).
    const user = await registerUser(api);
    const topUpKey = randomUUID();
    const topUpBody = { amount: 300, card: SandboxCard.SUCCEEDS };
    const firstTopUp = await post('/v1/wallet/top-ups', user, topUpKey, topUpBody);
    expect(firstTopUp.status).toBe(202);
    await until(async () => (await wallet(user)).available === 300, 'the first top-up to settle');
    await ageKey(user, topUpKey);
    const secondTopUp = await post('/v1/wallet/top-ups', user, topUpKey, topUpBody);
    expect(secondTopUp.status).toBe(202);
    expect(paymentId(secondTopUp)).toBe(paymentId(firstTopUp));

    const withdrawalKey = randomUUID();
    const withdrawalBody = { amount: 200, bankAccount: 'DE89370400440532013000' };
    const firstWithdrawal = await post('/v1/wallet/withdrawals', user, withdrawalKey, withdrawalBody);
    expect(firstWithdrawal.status).toBe(202);
    await ageKey(user, withdrawalKey);
    const secondWithdrawal = await post('/v1/wallet/withdrawals', user, withdrawalKey, withdrawalBody);
    expect(secondWithdrawal.status).toBe(202);
    expect(paymentId(secondWithdrawal)).toBe(paymentId(firstWithdrawal));
    await until(async () => (await wallet(user)).posted === 100, 'the withdrawal to be paid');
    expect(await wallet(user)).toMatchObject({ available: 100, pending: 0, posted: 100 });
  }, 40_000);

  it('a ledger operation key used for another operation is refused without naming the key', async () => {
    let handle: DbHandle | undefined;
    try {
      handle = await createDb({ kind: 'postgres', url: node.db.url, poolMax: 2 }, node.logs.log);
      const deps = { db: handle.db, clock: systemClock, settings: { currency: 'USD', platformFeeBps: 1000 } };
      const [from, to] = [await registerUser(api), await registerUser(api)];
      await topUp(deps, { opKey: randomUUID(), userId: from.id as UserId, amount: 100n });
      const opKey = `transfer:${from.id}:${randomUUID()}`;
      const move = (amount: bigint) =>
        ledgerTransfer(deps, { opKey, fromUserId: from.id as UserId, toUserId: to.id as UserId, amount });
      await move(10n);
      const refused = await move(11n).catch((error: unknown) => error);
      expect(isAppError(refused) && refused.code).toBe('CONFLICT');
      if (!isAppError(refused)) return;
      expect(refused.details).toEqual({ reason: 'OPERATION_KEY_REUSED' });
      expect(refused.message).not.toContain(opKey);
      // Kept for the logs, through the cause.
      expect(String((refused.cause as Error | undefined)?.message)).toContain(opKey);
    } finally {
      await handle?.close();
    }
  });
});
