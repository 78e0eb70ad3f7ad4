/**
 * The sandbox's webhook sender over real HTTP: what arrives verifies with the Standard Webhooks
 * check on the raw body, and a non-2xx answer rejects (so the sandbox retries).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, expect, it } from 'vitest';
import type { ProviderEvent } from '../../src/domain/payments/provider.js';
import { verifyWebhook } from '../../src/domain/payments/webhook-signature.js';
import { systemClock } from '../../src/platform/clock.js';
import { createWebhookSender } from '../../src/workers/payments/webhook-sender.js';

let server: Server | undefined;
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
});

const readBody = async (req: IncomingMessage) => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

it('POSTs signed events that verify on the raw body; a non-2xx answer rejects', async () => {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const received: { verified: boolean; event: ProviderEvent }[] = [];
  let answer = 204;
  server = createServer(async (req, res) => {
    const body = await readBody(req);
    const header = (name: string) => {
      const value = req.headers[name];
      return typeof value === 'string' ? value : undefined;
    };
    const check = verifyWebhook({
      secrets: [secret],
      headers: {
        id: header('webhook-id'),
        timestamp: header('webhook-timestamp'),
        signature: header('webhook-signature'),
      },
      body,
      now: new Date(),
    });
    received.push({ verified: check.ok, event: JSON.parse(body.toString('utf8')) as ProviderEvent });
    res.writeHead(answer).end();
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const send = createWebhookSender({
    url: `http://127.0.0.1:${port}/v1/payments/webhook`,
    secret,
    clock: systemClock,
    timeoutMs: 5_000,
  });
  const event: ProviderEvent = {
    id: 'evt_1',
    type: 'charge.succeeded',
    createdAt: Math.floor(Date.now() / 1000),
    data: { paymentId: 'pay_1', providerRef: 'ch_1', amount: 1_000, currency: 'USD' },
  };
  await send(event);
  answer = 503;
  await expect(send(event)).rejects.toThrow('503');
  expect(received).toEqual([
    { verified: true, event },
    { verified: true, event },
  ]);
});
