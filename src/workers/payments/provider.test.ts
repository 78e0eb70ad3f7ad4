/**
 * The process's payment provider: the sandbox's answers are the same after a restart (ids derived
 * from the payment id), and every call goes through the timeout and the circuit breaker.
 */
import { describe, expect, it } from 'vitest';
import type { Config } from '../../config/index.js';
import type { ProviderEvent } from '../../domain/payments/provider.js';
import { SandboxCard } from '../../domain/payments/sandbox-provider.js';
import { CallTimeoutError, CircuitOpenError } from '../../platform/circuit-breaker.js';
import { createLogger } from '../../platform/logger.js';
import { createManualTimers } from '../../platform/timers.js';
import { createProcessProvider } from './provider.js';

const settings = (overrides: Partial<Config['payments']> = {}): Config['payments'] => ({
  currency: 'USD',
  platformFeeBps: 1000,
  provider: 'sandbox',
  webhookSecrets: [`whsec_${Buffer.alloc(32, 7).toString('base64')}`],
  developmentWebhookSecret: false,
  webhookBaseUrl: 'http://127.0.0.1:9',
  auditIntervalMs: 0,
  reconcileAfterMs: 0,
  payoutReturnWindowMs: 0,
  transfersPerMinute: 30,
  providerTimeoutMs: 1_000,
  sandboxWebhookDelayMs: 0,
  sandboxLatencyMs: 0,
  ...overrides,
});

function processProvider(overrides: Partial<Config['payments']> = {}) {
  const timers = createManualTimers(1_700_000_000_000);
  const events: ProviderEvent[] = [];
  const running = createProcessProvider({
    settings: settings(overrides),
    ownBaseUrl: () => undefined,
    clock: { now: () => new Date(timers.now()) },
    timers,
    log: createLogger({ level: 'silent', pretty: false }),
    deliver: async (event) => void events.push(event),
  });
  return { ...running, timers, events };
}

/** Lets promise callbacks run between manual timer steps. */
const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('the process provider', () => {
  it('a restarted process answers a payment the same: same reference, same event ids', async () => {
    const request = { paymentId: '5b0e7c8e-3c1d-4a3e-9a51-0d7c9e0f1a2b', amount: 500n, currency: 'USD' };
    const runs = [];
    for (let restart = 0; restart < 2; restart++) {
      const { provider, timers, events, stop } = processProvider();
      const payout = await provider.payout({ ...request, bankAccount: 'DE89370400440532010000' });
      const charge = await provider.charge({
        ...request,
        paymentId: '0d3f5a1e-8f4b-4c2a-b6e1-7a9c2d4e6f80',
        card: SandboxCard.SUCCEEDS,
      });
      for (let step = 0; step < 5; step++) {
        timers.advance(0);
        await flush();
      }
      const ids = [...new Set(events.map((event) => `${event.type} ${event.id}`))].sort();
      runs.push({ payout, charge, ids });
      stop();
    }
    expect(runs[0]?.payout).toMatchObject({ accepted: true, providerRef: expect.stringMatching(/^po_/) });
    expect(runs[0]?.ids).toHaveLength(3);
    expect(runs[1]).toEqual(runs[0]);
    const { provider, stop } = processProvider();
    const other = await provider.payout({
      ...request,
      paymentId: 'another',
      bankAccount: 'DE89370400440532010000',
    });
    expect(other).not.toEqual(runs[0]?.payout);
    stop();
  });

  it('a call slower than the timeout fails; 5 in a row open the breaker (calls fail at once) until a trial after 30 s', async () => {
    // Each call takes 4 s (SANDBOX_LATENCY_MS), the timeout is 1 s.
    const { provider, timers, breaker, stop } = processProvider({ sandboxLatencyMs: 4_000 });
    const payout = (n: number) =>
      provider.payout({
        paymentId: `p${n}`,
        amount: 1n,
        currency: 'USD',
        bankAccount: 'DE89370400440532013001',
      });
    for (let n = 0; n < 5; n++) {
      const call = payout(n);
      const settled = call.catch((error: unknown) => error);
      timers.advance(1_000);
      expect(await settled).toBeInstanceOf(CallTimeoutError);
    }
    expect(breaker.state()).toBe('open');
    await expect(payout(5)).rejects.toBeInstanceOf(CircuitOpenError);
    // Let the slow calls finish in the background (they are not cancelled: the ids make them safe).
    timers.advance(4_000);
    await flush();
    timers.advance(30_000);
    expect(breaker.state()).toBe('half-open');
    stop();
    const fast = processProvider();
    await expect(
      fast.provider.payout({
        paymentId: 'q',
        amount: 1n,
        currency: 'USD',
        bankAccount: 'DE89370400440532013001',
      }),
    ).resolves.toMatchObject({ accepted: true });
    fast.stop();
  });
});
