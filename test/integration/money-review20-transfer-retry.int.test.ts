/**
 * Money review 20: a transfer retried under its Idempotency-Key after the key's record was forgotten
 * (kept 24 h) answers the first transfer — the ledger binds the key for good. But the recipient
 * check ran first: if an admin had locked the recipient since, the retry answered 404 "no such
 * user", telling a client whose first attempt had committed (its answer lost on a bad network) that
 * the money had not moved. Now the retry answers the first transfer (201, same id, nothing moves);
 * a new transfer to the locked account is still 404. One node over real HTTP and PostgreSQL; the
 * key's age and the lock are set in SQL.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { ageIdempotencyKey, fundWallet, postWithKey, walletOf } from '../support/idempotency-keys.js';

let node: TestNode;
let api: ReturnType<typeof httpClient>;

const transactionId = (answer: { body: Record<string, unknown> }) =>
  (answer.body.transaction as { id?: string } | undefined)?.id;

async function lock(user: Registered): Promise<void> {
  const db = new pg.Client({ connectionString: node.db.url });
  await db.connect();
  try {
    await db.query('update users set locked_at = now() where id = $1', [user.id]);
  } finally {
    await db.end();
  }
}

beforeAll(async () => {
  node = await startTestNode({ OUTBOX_POLL_MS: '20' });
  api = httpClient(node.node.baseUrl);
}, 60_000);

afterAll(async () => {
  await node?.stop();
});

describe('a transfer retried after its key record was forgotten and its recipient locked', () => {
  it('answers the first transfer (201, same id, nothing moves again), not 404', async () => {
    const payer = await registerUser(api);
    const payee = await registerUser(api);
    await fundWallet(api, payer, 1_000);

    const key = randomUUID();
    const body = { toUserId: payee.id, amount: 100 };
    const first = await postWithKey(api, '/v1/wallet/transfers', payer, key, body);
    expect(first.status).toBe(201);

    // A day later: the key's record is gone, and an admin has locked the payee meanwhile.
    await ageIdempotencyKey(node.db.url, payer, key);
    await lock(payee);

    const retry = await postWithKey(api, '/v1/wallet/transfers', payer, key, body);
    expect(retry.status, JSON.stringify(retry.body)).toBe(201);
    expect(transactionId(retry)).toBe(transactionId(first));
    expect((await walletOf(api, payer)).available).toBe(900);

    // Another body under the key is still another request; a new transfer to the locked account
    // is still refused as to one that does not exist.
    const other = await postWithKey(api, '/v1/wallet/transfers', payer, key, { ...body, amount: 50 });
    expect(other.status, JSON.stringify(other.body)).toBe(422);
    const fresh = await postWithKey(api, '/v1/wallet/transfers', payer, randomUUID(), body);
    expect(fresh.status).toBe(404);
    expect((await walletOf(api, payer)).available).toBe(900);
  });
});
