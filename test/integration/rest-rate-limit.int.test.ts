/**
 * The per-IP REST limit (RATE_LIMIT_PER_MINUTE) counts every request before anything else decides
 * about it, and counts a client as login throttling and the WebSocket upgrade limit do:
 * - requests that fail authentication count: @fastify/rate-limit attached its hook to each route,
 *   and Fastify runs route hooks after the instance's, so the bearer-token check answered 401 first
 *   and the limit never saw them (unlimited Ed25519 verifications and log lines per client);
 * - an IPv6 client is its /64 (clientNetwork), so rotating addresses inside it buys no new budgets.
 *
 * One node trusts one proxy hop (TRUST_PROXY=1): each request names its client in X-Forwarded-For,
 * so every test speaks from addresses of its own.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook } from '../../src/domain/payments/webhook-signature.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient } from '../support/http.js';
import { providerEvent } from '../support/payments-db.js';

const LIMIT = 5;
const WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('base64')}`;

describe('per-IP REST rate limit', () => {
  let node: TestNode;
  let api: ReturnType<typeof httpClient>;
  beforeAll(async () => {
    node = await startTestNode({
      TRUST_PROXY: '1',
      RATE_LIMIT_PER_MINUTE: String(LIMIT),
      PAYMENTS_WEBHOOK_SECRETS: WEBHOOK_SECRET,
    });
    api = httpClient(node.node.baseUrl);
  }, 60_000);
  afterAll(async () => {
    await node?.stop();
  });

  it('counts requests whose bearer token is refused: 429 problem+json after the limit, not 401 forever', async () => {
    const answers = [];
    for (let i = 0; i < 8; i++) {
      answers.push(
        await api.call('GET', '/v1/me', {
          headers: { authorization: 'Bearer not.a.token', 'x-forwarded-for': '198.51.100.7' },
        }),
      );
    }
    expect(answers.map((answer) => answer.status)).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
    const last = answers.at(-1);
    expect(last?.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(last?.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(last?.body).toMatchObject({ code: 'RATE_LIMITED', status: 429 });
  });

  it('counts a request without credentials on an authenticated route too', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT + 1; i++) {
      statuses.push(
        (await api.call('GET', '/v1/me', { headers: { 'x-forwarded-for': '198.51.100.8' } })).status,
      );
    }
    expect(statuses.at(-1)).toBe(429);
  });

  it('counts an IPv6 /64 as one client: addresses rotated inside it share one budget', async () => {
    const statuses: number[] = [];
    for (let i = 1; i <= 10; i++) {
      const address = `2001:db8::${i.toString(16)}`;
      statuses.push(
        (await api.call('GET', '/.well-known/jwks.json', { headers: { 'x-forwarded-for': address } })).status,
      );
    }
    expect(statuses).toContain(429);
    expect(statuses.slice(0, LIMIT)).toEqual(Array(LIMIT).fill(200));
    // Another /64 is another client.
    const other = await api.call('GET', '/.well-known/jwks.json', {
      headers: { 'x-forwarded-for': '2001:db8:0:1::1' },
    });
    expect(other.status).toBe(200);
  });

  it('counts an IPv4-mapped IPv6 address as its IPv4 client', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT; i++) {
      statuses.push(
        (await api.call('GET', '/.well-known/jwks.json', { headers: { 'x-forwarded-for': '198.51.100.9' } }))
          .status,
      );
    }
    expect(statuses).toEqual(Array(LIMIT).fill(200));
    const mapped = await api.call('GET', '/.well-known/jwks.json', {
      headers: { 'x-forwarded-for': '::ffff:198.51.100.9' },
    });
    expect(mapped.status).toBe(429);
  });

  it("takes a burst of the payment provider's signed webhooks from one address, and counts none of them", async () => {
    const provider = '198.51.100.11';
    const answers: { status: number; body: unknown }[] = [];
    for (let i = 0; i < 3 * LIMIT; i++) {
      const event = providerEvent(randomUUID(), 'charge.succeeded', 500, { tag: 'burst' });
      const body = JSON.stringify(event);
      const timestamp = Math.floor(Date.now() / 1000);
      const answer = await fetch(`${node.node.baseUrl}/v1/payments/webhook`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-forwarded-for': provider,
          'webhook-id': event.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook({ secret: WEBHOOK_SECRET, id: event.id, timestamp, body }),
        },
        body,
      });
      answers.push({ status: answer.status, body: await answer.json() });
    }
    expect(answers).toEqual(
      Array(3 * LIMIT).fill({ status: 200, body: { received: true, outcome: 'queued' } }),
    );
    // The same address still has its whole budget for the rest of the API.
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT + 1; i++) {
      statuses.push(
        (await api.call('GET', '/.well-known/jwks.json', { headers: { 'x-forwarded-for': provider } }))
          .status,
      );
    }
    expect(statuses).toEqual([...Array(LIMIT).fill(200), 429]);
  });

  it('leaves the probes and the metrics scrape unlimited', async () => {
    for (const path of ['/health/live', '/metrics']) {
      for (let i = 0; i < LIMIT + 3; i++) {
        const answer = await fetch(`${node.node.baseUrl}${path}`, {
          headers: { 'x-forwarded-for': '198.51.100.10' },
        });
        await answer.arrayBuffer();
        expect(answer.status, `${path} #${i + 1}`).toBe(200);
      }
    }
  });
});
