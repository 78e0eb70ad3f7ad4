/**
 * First try, review 22: HOST set to an IPv6 address (`::1`, a node reachable only over IPv6).
 * The node's own address was written `http://::1:PORT`, which is no URL: the start line and its
 * URLs were unusable, and with PUBLIC_URL unset the sandbox provider posted its webhooks to that
 * address, so every top-up stayed pending for ever (the reconciler asked again, to the same
 * address). The address is now bracketed, `http://[::1]:PORT`.
 * Real PostgreSQL and Redis, the whole node (startNode).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';
import { untilDefined } from '../support/poll.js';

let testNode: TestNode | undefined;

beforeAll(async () => {
  testNode = await startTestNode({ HOST: '::1' });
}, 120_000);
afterAll(async () => {
  await testNode?.stop();
});

describe('HOST=::1 with PUBLIC_URL unset', () => {
  it('announces URLs that parse, and the sandbox webhook reaches the node so a top-up is credited', async () => {
    const node = testNode?.node;
    if (node === undefined) throw new Error('node did not start');
    expect(new URL(node.baseUrl).hostname).toBe('[::1]');
    expect(new URL(node.uwsUrl ?? 'ws://[::1]:1/ws').hostname).toBe('[::1]');

    const api = httpClient(node.baseUrl);
    expect((await api.get('/health/live')).status).toBe(200);
    const user = await registerUser(api);
    const started = await api.call('POST', '/v1/wallet/top-ups', {
      token: user.accessToken,
      headers: { 'idempotency-key': randomUUID() },
      body: { amount: 1_000, card: SandboxCard.SUCCEEDS },
    });
    expect(started.status).toBe(202);
    await untilDefined(async () => {
      const wallet = await api.get<{ available: number }>('/v1/wallet', user.accessToken);
      return wallet.body.available >= 1_000 ? true : undefined;
    }, 'the top-up to be credited');
  }, 60_000);
});
