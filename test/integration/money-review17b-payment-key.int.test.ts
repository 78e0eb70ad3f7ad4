/**
 * Money review 17b: a withdrawal (or top-up) retried with its Idempotency-Key after the key's record
 * was forgotten (kept ≥ 24 h) — a client on a bad network, an app resumed days later replaying what
 * it never got an answer to — was a new request: a second payout of the same amount to the same
 * bank account (a second charge of the card). Transfers were already bound to their key for good.
 * Now a payment's id derives from the user's key, so the same request answers the first payment
 * (nothing new reserved, charged or paid), and another request under the key is 422
 * IDEMPOTENCY_KEY_REUSED, as within the retention. One node over real HTTP, PostgreSQL and Redis;
 * the key's age is set in SQL.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { ageIdempotencyKey, fundWallet, postWithKey, walletOf } from '../support/idempotency-keys.js';
import { untilDefined } from '../support/poll.js';

let node: TestNode;
let api: ReturnType<typeof httpClient>;

const wallet = (user: Registered) => walletOf(api, user);

const post = (path: string, user: Registered, key: string, body: unknown) =>
  postWithKey(api, path, user, key, body);

const paymentOf = (answer: { body: Record<string, unknown> }) =>
  answer.body.payment as { id?: string; status?: string } | undefined;

/** The key as it would be a day and an hour later: its row is older than the retention. */
const ageKey = (user: Registered, key: string) => ageIdempotencyKey(node.db.url, user, key);

async function paymentsOf(user: Registered): Promise<number> {
  const db = new pg.Client({ connectionString: node.db.url });
  await db.connect();
  try {
    const { rows } = await db.query<{ n: string }>(
      'select count(*)::text as n from payments where user_id = $1',
      [user.id],
    );
    return Number(rows[0]?.n);
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

describe('a payment retried with its Idempotency-Key after the key was forgotten', () => {
  it('a withdrawal is paid out once: the same request answers the first, another body is 422', async () => {
    const user = await registerUser(api);
    await fundWallet(api, user, 1_000);

    const key = randomUUID();
    const body = { amount: 200, bankAccount: 'DE89370400440532013000' };
    const first = await post('/v1/wallet/withdrawals', user, key, body);
    expect(first.status).toBe(202);
    await untilDefined(async () => ((await wallet(user)).posted === 800 ? true : undefined), 'the payout');

    await ageKey(user, key);
    const again = await post('/v1/wallet/withdrawals', user, key, body);
    expect(again.status, JSON.stringify(again.body)).toBe(202);
    expect(paymentOf(again)?.id).toBe(paymentOf(first)?.id);
    // Another request under the key: refused, nothing reserved.
    const other = await post('/v1/wallet/withdrawals', user, key, { ...body, amount: 300 });
    expect(other.status, JSON.stringify(other.body)).toBe(422);
    expect(other.body).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    // Nor is it a top-up.
    await ageKey(user, key);
    const topUp = await post('/v1/wallet/top-ups', user, key, { amount: 200, card: SandboxCard.SUCCEEDS });
    expect(topUp.status, JSON.stringify(topUp.body)).toBe(422);

    expect(await paymentsOf(user)).toBe(2);
    expect(await wallet(user)).toMatchObject({ available: 800, pending: 0, posted: 800 });
  }, 40_000);

  it('a top-up is charged once', async () => {
    const user = await registerUser(api);
    const key = randomUUID();
    const body = { amount: 300, card: SandboxCard.SUCCEEDS };
    const first = await post('/v1/wallet/top-ups', user, key, body);
    expect(first.status).toBe(202);
    await untilDefined(async () => ((await wallet(user)).available === 300 ? true : undefined), 'the top-up');
    await ageKey(user, key);
    const again = await post('/v1/wallet/top-ups', user, key, body);
    expect(again.status).toBe(202);
    expect(paymentOf(again)?.id).toBe(paymentOf(first)?.id);
    expect(paymentOf(again)?.status).toBe('succeeded');
    // Within the retention again: the stored answer of that second request.
    const replay = await post('/v1/wallet/top-ups', user, key, body);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(await paymentsOf(user)).toBe(1);
    expect((await wallet(user)).available).toBe(300);
  }, 40_000);
});
