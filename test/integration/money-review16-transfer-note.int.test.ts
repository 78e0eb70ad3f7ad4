/**
 * Money review 16: a transfer's Idempotency-Key is bound to its transfer in the ledger for good, so
 * after the key's record is pruned (kept ≥ 24 h) the same transfer again answers the first one and
 * another transfer under the key is 422. The note is part of the transfer (its receiver reads it):
 * the same key, payee and amount with another note was answered 201 as a replay that echoed the new
 * note, which the ledger never stored (the payee's history still shows the first one). One node over
 * real HTTP, PostgreSQL and Redis; the key's age is set in SQL.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { ageIdempotencyKey, fundWallet, postWithKey, walletOf } from '../support/idempotency-keys.js';

let node: TestNode;
let api: ReturnType<typeof httpClient>;

const post = (path: string, user: Registered, key: string, body: unknown) =>
  postWithKey(api, path, user, key, body);
const available = async (user: Registered) => (await walletOf(api, user)).available;

beforeAll(async () => {
  node = await startTestNode({ OUTBOX_POLL_MS: '20' });
  api = httpClient(node.node.baseUrl);
}, 60_000);

afterAll(async () => {
  await node?.stop();
});

describe('a transfer key reused after its retention with another note', () => {
  it('is 422 IDEMPOTENCY_KEY_REUSED, never a replay answering a note the ledger does not hold', async () => {
    const payer = await registerUser(api);
    const payee = await registerUser(api);
    await fundWallet(api, payer, 1_000);

    const key = randomUUID();
    const body = { toUserId: payee.id, amount: 100, note: 'rent for May' };
    const first = await post('/v1/wallet/transfers', payer, key, body);
    expect(first.status).toBe(201);
    await ageIdempotencyKey(node.db.url, payer, key);

    const other = await post('/v1/wallet/transfers', payer, key, { ...body, note: 'gift, keep it' });
    expect(other.status, JSON.stringify(other.body)).toBe(422);
    expect(other.body).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });

    // The same transfer, note included, is still the first one.
    const again = await post('/v1/wallet/transfers', payer, key, body);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    const lines = await api.get<{ data: { transactionId: string; note: string | null }[] }>(
      '/v1/wallet/transactions',
      payee.accessToken,
    );
    expect(lines.body.data).toEqual([
      expect.objectContaining({
        transactionId: (first.body.transaction as { id: string }).id,
        note: 'rent for May',
      }),
    ]);
    expect(await available(payer)).toBe(900);
    expect(await available(payee)).toBe(100);
  }, 40_000);
});
