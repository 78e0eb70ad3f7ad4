/**
 * A payment whose outcome never arrives (its webhook lost: the provider gave up while our endpoint
 * was down, or the sandbox holding it restarted) is not left pending for good: the worker's
 * reconciliation asks the provider to send it again, and the top-up is credited once. Real
 * PostgreSQL, Redis, payments queue and signed webhooks over HTTP; the lost webhook is the sandbox's
 * delayed card with a delay of an hour.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';

describe('payments reconciliation', () => {
  let node: TestNode;
  let api: ReturnType<typeof httpClient>;

  beforeAll(async () => {
    node = await startTestNode({
      OUTBOX_POLL_MS: '20',
      SANDBOX_WEBHOOK_DELAY_MS: '3600000',
      PAYMENTS_RECONCILE_AFTER_S: '1',
    });
    api = httpClient(node.node.baseUrl);
  }, 60_000);
  afterAll(async () => {
    await node?.stop();
  });

  it('credits a top-up whose webhook never came, once', async () => {
    const user = await registerUser(api);
    const started = await api.call<{ payment: { id: string } }>('POST', '/v1/wallet/top-ups', {
      token: user.accessToken,
      body: { amount: 1_234, card: SandboxCard.DELAYED_WEBHOOK },
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(started.status).toBe(202);
    let status = 'pending';
    for (let i = 0; i < 300 && status === 'pending'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      status = (
        await api.get<{ payment: { status: string } }>(
          `/v1/payments/${started.body.payment.id}`,
          user.accessToken,
        )
      ).body.payment.status;
    }
    expect(status).toBe('succeeded');
    const wallet = await api.get<{ available: number }>('/v1/wallet', user.accessToken);
    expect(wallet.body.available).toBe(1_234);
    expect(node.logs.lines().some((line) => line.msg === 'asked the provider to resend a lost outcome')).toBe(
      true,
    );
    // Asked again later (the payment is settled now), nothing moves twice.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await api.get<{ available: number }>('/v1/wallet', user.accessToken)).body.available).toBe(1_234);
  }, 40_000);
});
