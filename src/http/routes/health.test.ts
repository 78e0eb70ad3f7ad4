import Fastify from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { READY_REUSE_MS, registerHealthRoutes } from './health.js';

/** An app with one counted check whose answers the test decides. */
async function appWithCheck() {
  let calls = 0;
  let healthy = true;
  const app = Fastify();
  registerHealthRoutes(app, {
    info: () => ({}),
    checks: {
      postgres: async () => {
        calls += 1;
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (!healthy) throw new Error('connection refused');
      },
    },
    timeoutMs: 1_000,
    isDraining: () => false,
  });
  await app.ready();
  return {
    app,
    calls: () => calls,
    fail: () => {
      healthy = false;
    },
    ready: async () => (await app.inject({ method: 'GET', url: '/health/ready' })).statusCode,
  };
}

describe('/health/ready', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs one round of checks for many requests at once and for requests within READY_REUSE_MS', async () => {
    const node = await appWithCheck();
    const statuses = await Promise.all(Array.from({ length: 50 }, () => node.ready()));
    expect(statuses.every((status) => status === 200)).toBe(true);
    expect(node.calls()).toBe(1);
    for (let i = 0; i < 20; i++) expect(await node.ready()).toBe(200);
    expect(node.calls()).toBe(1);
    await node.app.close();
  });

  it('checks again once the last round is READY_REUSE_MS old, and then reports a failure', async () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const node = await appWithCheck();
    expect(await node.ready()).toBe(200);
    node.fail();
    vi.advanceTimersByTime(READY_REUSE_MS - 10);
    expect(await node.ready()).toBe(200);
    expect(node.calls()).toBe(1);
    vi.advanceTimersByTime(20);
    expect(await node.ready()).toBe(503);
    expect(node.calls()).toBe(2);
    await node.app.close();
  });
});
