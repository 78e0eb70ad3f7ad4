/**
 * Money review 17: a wallet's balance is capped at 2^53 − 1 minor units (JSON-exact), and a top-up's
 * start checked only the posted balance. Two top-ups started while the balance was just under the
 * cap were both accepted and charged; the second could then not be credited (the money taken, the
 * payment pending for good). Now the top-ups still pending count at the start: the second is
 * refused there, 409 problem+json BALANCE_LIMIT naming what is pending, and nothing is charged for it.
 * One whole node (API, relay, payments worker, sandbox provider posting its webhooks back).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { auditLedger } from '../../src/domain/payments/audit.js';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { untilDefined } from '../support/poll.js';

const MAX = Number.MAX_SAFE_INTEGER;

let node: TestNode;
let api: ReturnType<typeof httpClient>;
let handle: DbHandle;

interface WalletBody {
  available: number;
  posted: number;
}

const topUp = (user: Registered, amount: number, card: string) =>
  api.call<Record<string, unknown> & { payment?: { id: string; status: string } }>(
    'POST',
    '/v1/wallet/top-ups',
    {
      token: user.accessToken,
      body: { amount, card },
      headers: { 'idempotency-key': randomUUID() },
    },
  );

const posted = async (user: Registered) =>
  (await api.get<WalletBody>('/v1/wallet', user.accessToken)).body.posted;

beforeAll(async () => {
  // The delayed card's success leaves 3 s after the charge: its top-up stays pending meanwhile.
  node = await startTestNode({ OUTBOX_POLL_MS: '20', SANDBOX_WEBHOOK_DELAY_MS: '3000' });
  api = httpClient(node.node.baseUrl);
  handle = await createDb({ kind: 'postgres', url: node.db.url, poolMax: 2 }, captureLogs().log);
}, 60_000);

afterAll(async () => {
  await handle?.close();
  await node?.stop();
});

describe('the balance cap at the start of a top-up', () => {
  it('counts the top-ups still pending: of two started together just under the cap, one is refused at once', async () => {
    const user = await registerUser(api);
    const first = await topUp(user, MAX - 100, SandboxCard.SUCCEEDS);
    expect(first.status).toBe(202);
    await untilDefined(
      async () => ((await posted(user)) === MAX - 100 ? true : undefined),
      'the first top-up credited',
    );

    // Each fits alone; both together would take the balance 20 over the cap.
    const answers = await Promise.all([
      topUp(user, 60, SandboxCard.DELAYED_WEBHOOK),
      topUp(user, 60, SandboxCard.DELAYED_WEBHOOK),
    ]);
    expect(answers.map((answer) => answer.status).sort()).toEqual([202, 409]);
    const refused = answers.find((answer) => answer.status === 409);
    expect(refused?.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused?.body).toMatchObject({
      code: 'CONFLICT',
      reason: 'BALANCE_LIMIT',
      limit: MAX,
      currency: 'USD',
      pendingTopUps: 60,
    });
    // What still fits next to the pending one is taken.
    const rest = await topUp(user, 40, SandboxCard.DELAYED_WEBHOOK);
    expect(rest.status).toBe(202);
    const over = await topUp(user, 1, SandboxCard.SUCCEEDS);
    expect(over.status).toBe(409);
    // (However many of the two are still pending: credited or pending, they fill the cap.)
    expect(over.body).toMatchObject({ reason: 'BALANCE_LIMIT' });

    // Every accepted top-up is credited, exactly up to the cap; none is left pending.
    const accepted = [...answers.filter((answer) => answer.status === 202), rest];
    for (const answer of accepted) {
      const id = answer.body.payment?.id;
      await untilDefined(async () => {
        const payment = await api.get<{ payment: { status: string } }>(
          `/v1/payments/${id}`,
          user.accessToken,
        );
        return payment.body.payment.status === 'succeeded' ? true : undefined;
      }, 'an accepted top-up credited');
    }
    expect(await posted(user)).toBe(MAX);
    expect((await auditLedger(handle.db)).findings).toEqual([]);
  }, 60_000);
});
