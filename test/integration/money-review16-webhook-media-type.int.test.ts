/**
 * Money review 16: the payment webhook takes the `+json` media types (RFC 6839) it declares next to
 * application/json. The parser was registered as the string 'application/*+json', which fastify
 * reads as one literal type: a correctly signed event sent as `application/webhook+json` was
 * answered 400 (unsupported media type), and a provider that sends it would retry an event we never
 * record — the top-up never credited. One node over real HTTP; the event is applied by the payments
 * worker through the outbox.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProviderEvent } from '../../src/domain/payments/provider.js';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { signWebhook } from '../../src/domain/payments/webhook-signature.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';
import { untilDefined } from '../support/poll.js';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

let node: TestNode;
let api: ReturnType<typeof httpClient>;

beforeAll(async () => {
  node = await startTestNode({ PAYMENTS_WEBHOOK_SECRETS: SECRET, OUTBOX_POLL_MS: '20' });
  api = httpClient(node.node.baseUrl);
}, 60_000);

afterAll(async () => {
  await node?.stop();
});

describe('the payment webhook and +json media types', () => {
  it('verifies and records an event sent as application/webhook+json, and refuses other types', async () => {
    const user = await registerUser(api);
    // A top-up the provider declined: a late success for it is honoured, so the event shows.
    const declined = await api.call<{ payment: { id: string } }>('POST', '/v1/wallet/top-ups', {
      token: user.accessToken,
      body: { amount: 3_100, card: SandboxCard.DECLINED },
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(declined.status).toBe(202);
    const paymentId = declined.body.payment.id;
    await untilDefined(async () => {
      const payment = await api.get<{ payment: { status: string } }>(
        `/v1/payments/${paymentId}`,
        user.accessToken,
      );
      return payment.body.payment.status === 'failed' ? true : undefined;
    }, 'the decline');

    const event: ProviderEvent = {
      id: `evt_media_${randomUUID()}`,
      type: 'charge.succeeded',
      createdAt: Math.floor(Date.now() / 1000),
      data: { paymentId, providerRef: 'ch_media', amount: 3_100, currency: 'USD' },
    };
    const body = JSON.stringify(event);
    const send = (contentType: string) => {
      const timestamp = Math.floor(Date.now() / 1000);
      return fetch(`${node.node.baseUrl}/v1/payments/webhook`, {
        method: 'POST',
        headers: {
          'content-type': contentType,
          'webhook-id': event.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook({ secret: SECRET, id: event.id, timestamp, body }),
        },
        body,
      });
    };

    // Not JSON at all: refused, nothing recorded.
    const plain = await send('application/xml');
    expect(plain.status).toBeGreaterThanOrEqual(400);
    expect(plain.status).toBeLessThan(500);

    const sent = await send('application/webhook+json; charset=utf-8');
    expect(sent.status, await sent.clone().text()).toBe(200);
    expect(await sent.json()).toEqual({ received: true, outcome: 'queued' });
    await untilDefined(async () => {
      const wallet = await api.get<{ available: number }>('/v1/wallet', user.accessToken);
      return wallet.body.available === 3_100 ? true : undefined;
    }, 'the top-up to be credited');
    const again = await send('application/webhook+json');
    expect(await again.json()).toEqual({ received: true, outcome: 'duplicate' });
  }, 40_000);
});
