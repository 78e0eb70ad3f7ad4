/**
 * A payments worker killed with SIGKILL in the middle of a payout, restarted: exactly one payout and
 * one ledger transaction. The API runs in this process (role api); the worker (role worker: outbox
 * relay, `payments` queue, sandbox provider) is a real child process. SANDBOX_LATENCY_MS splits each
 * provider call into "request in transit" (the provider has not acted) and "answer in transit" (it
 * has acted, the worker does not know yet), long enough to stop the worker deterministically in
 * either half: after its "payment task started" line, and after "sandbox provider acted".
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import type { Database } from '../../src/db/database.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import { topUp, walletBalance } from '../../src/domain/payments/wallet.js';
import { systemClock } from '../../src/platform/clock.js';
import {
  captureLogs,
  sharedRedisUrl,
  startTestNode,
  type TestNode,
  uniqueRedisPrefix,
} from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { type GigwireProcess, spawnGigwire } from '../support/spawn.js';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const settings = { currency: 'USD', platformFeeBps: 1000 };

let api: TestNode;
let client: ReturnType<typeof httpClient>;
let handle: DbHandle;
let db: Kysely<Database>;
let workerEnv: Record<string, string>;
const workers: GigwireProcess[] = [];

beforeAll(async () => {
  api = await startTestNode({ ROLE: 'api', PAYMENTS_WEBHOOK_SECRETS: SECRET });
  client = httpClient(api.node.baseUrl);
  handle = await createDb({ kind: 'postgres', url: api.db.url, poolMax: 2 }, captureLogs().log);
  db = handle.db;
  workerEnv = {
    ROLE: 'worker',
    DATABASE_URL: api.db.url,
    REDIS_URL: sharedRedisUrl(),
    REDIS_PREFIX: uniqueRedisPrefix(),
    PUBLIC_URL: api.node.baseUrl,
    PAYMENTS_WEBHOOK_SECRETS: SECRET,
    SANDBOX_LATENCY_MS: '4000',
    // A task held by a killed worker is handed on after 1 s.
    TASK_LOCK_MS: '1000',
    OUTBOX_POLL_MS: '50',
  };
}, 60_000);

afterAll(async () => {
  for (const worker of workers) await worker.stop('SIGKILL').catch(() => undefined);
  await handle?.close();
  await api?.stop();
});

async function startWorker(env: Record<string, string> = {}): Promise<GigwireProcess> {
  const worker = spawnGigwire({ ...workerEnv, ...env });
  workers.push(worker);
  await worker.waitUntilUp(60_000);
  return worker;
}

const forPayment = (paymentId: string, msg: string) => (line: Record<string, unknown>) =>
  line.paymentId === paymentId && line.msg === msg;

async function withdraw(user: Registered, amount: number, key: string): Promise<string> {
  const response = await client.call<{ payment: { id: string } }>('POST', '/v1/wallet/withdrawals', {
    body: { amount, bankAccount: 'DE89370400440532013001' },
    token: user.accessToken,
    headers: { 'idempotency-key': key },
  });
  expect(response.status).toBe(202);
  return response.body.payment.id;
}

async function settledStatus(paymentId: string): Promise<string> {
  for (;;) {
    const row = await db
      .selectFrom('payments')
      .select('status')
      .where('id', '=', paymentId)
      .executeTakeFirstOrThrow();
    if (row.status !== 'pending') return row.status;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** What the payout left behind: its ledger transactions and the provider's events for it. */
async function traces(paymentId: string) {
  const payment = await db
    .selectFrom('payments')
    .selectAll()
    .where('id', '=', paymentId)
    .executeTakeFirstOrThrow();
  const transactions = await db
    .selectFrom('ledger_transactions')
    .select(['id', 'kind', 'external_ref'])
    .where('hold_id', '=', payment.hold_id)
    .where('kind', '=', 'withdrawal')
    .execute();
  const events = await db
    .selectFrom('provider_events')
    .select(['id', 'type', 'outcome'])
    .where('payment_id', '=', paymentId)
    .execute();
  return { payment, transactions, events };
}

describe('payments worker SIGKILLed mid-payout', () => {
  it('before the provider acted, then after it acted: each payout happens once, with one ledger transaction', async () => {
    const user = await registerUser(client);
    await topUp(
      { db, settings, clock: systemClock },
      { opKey: `test:fund:${user.id}`, userId: user.id as UserId, amount: 10_000n },
    );

    // 1. Killed while its request to the provider is in transit: the provider never acted.
    const first = await startWorker();
    const before = await withdraw(user, 3_000, 'crash-before');
    await first.waitForLog(forPayment(before, 'payment task started'), 30_000);
    await first.stop('SIGKILL');
    expect(first.logLines().some(forPayment(before, 'sandbox provider acted'))).toBe(false);
    expect(
      await db
        .selectFrom('payments')
        .select(['status', 'submitted_at'])
        .where('id', '=', before)
        .executeTakeFirst(),
    ).toEqual({
      status: 'pending',
      submitted_at: null,
    });

    // 2. The restarted worker takes the stalled task over and pays out once.
    const second = await startWorker();
    expect(await settledStatus(before)).toBe('succeeded');
    expect(second.logLines().filter(forPayment(before, 'sandbox provider acted'))).toHaveLength(1);
    await second.stop('SIGTERM');

    // 3. Killed after the provider acted, before the worker learnt its answer; its webhooks do not
    //    get through (PUBLIC_URL points nowhere), so nothing tells us the payout happened.
    const third = await startWorker({ PUBLIC_URL: 'http://127.0.0.1:9' });
    const after = await withdraw(user, 2_000, 'crash-after');
    const acted = await third.waitForLog(forPayment(after, 'sandbox provider acted'), 30_000);
    await third.stop('SIGKILL');
    expect(third.logLines().some(forPayment(after, 'payment task done'))).toBe(false);
    expect(
      await db
        .selectFrom('payments')
        .select(['status', 'submitted_at'])
        .where('id', '=', after)
        .executeTakeFirst(),
    ).toEqual({
      status: 'pending',
      submitted_at: null,
    });

    // 4. The next worker asks the provider again under the same payment id: the same payout (same
    //    reference, same event ids), settled once.
    const fourth = await startWorker();
    expect(await settledStatus(after)).toBe('succeeded');
    await fourth.waitForLog(forPayment(after, 'payment task done'), 30_000);
    const { payment } = await traces(after);
    expect(payment.provider_ref).toBe(acted.providerRef);

    for (const [paymentId, amount] of [
      [before, 3_000],
      [after, 2_000],
    ] as const) {
      const { payment, transactions, events } = await traces(paymentId);
      expect(payment).toMatchObject({ status: 'succeeded', amount: String(amount) });
      expect(transactions).toHaveLength(1);
      const paid = events.filter((event) => event.type === 'payout.paid');
      expect(paid).toHaveLength(1);
      expect(paid[0]?.outcome).toBe('applied');
      expect(transactions[0]?.external_ref).toBe(paid[0]?.id);
    }
    expect(await walletBalance({ db, settings }, user.id as UserId)).toMatchObject({
      posted: 5_000n,
      pending: 0n,
      available: 5_000n,
    });
    expect((await auditLedger(db)).findings).toEqual([]);
    await fourth.stop('SIGTERM');
  }, 120_000);
});
