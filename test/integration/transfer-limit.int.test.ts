/**
 * Each transfer notifies its receiver (stored, pushed, mailed): a sender may make at most
 * TRANSFERS_PER_MINUTE of them, counted in Redis across nodes, so one-cent transfers cannot flood
 * someone. Real PostgreSQL, Redis and sandbox top-up.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';

describe('transfers per minute', () => {
  let node: TestNode;
  let api: ReturnType<typeof httpClient>;

  beforeAll(async () => {
    node = await startTestNode({ OUTBOX_POLL_MS: '20', TRANSFERS_PER_MINUTE: '3' });
    api = httpClient(node.node.baseUrl);
  }, 60_000);
  afterAll(async () => {
    await node?.stop();
  });

  it('refuses a sender beyond the limit with 429 and Retry-After, moving nothing', async () => {
    const [payer, payee] = [await registerUser(api), await registerUser(api)];
    const topUp = await api.call('POST', '/v1/wallet/top-ups', {
      token: payer.accessToken,
      body: { amount: 100, card: SandboxCard.SUCCEEDS },
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(topUp.status).toBe(202);
    const available = async (token: string) =>
      (await api.get<{ available: number }>('/v1/wallet', token)).body.available;
    for (let i = 0; i < 200 && (await available(payer.accessToken)) < 100; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const send = () =>
      api.call<{ code?: string }>('POST', '/v1/wallet/transfers', {
        token: payer.accessToken,
        body: { toUserId: payee.id, amount: 1 },
        headers: { 'idempotency-key': randomUUID() },
      });
    for (let i = 0; i < 3; i++) expect((await send()).status).toBe(201);
    const refused = await send();
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await available(payee.accessToken)).toBe(3);
    // Another sender is not held by it.
    const other = await registerUser(api);
    const theirs = await api.call('POST', '/v1/wallet/transfers', {
      token: other.accessToken,
      body: { toUserId: payee.id, amount: 1 },
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(theirs.status).toBe(409); // no money: refused for funds, not for the limit
  }, 30_000);
});
