import { describe, expect, it } from 'vitest';
import { createManualTimers } from '../../platform/timers.js';
import type { ProviderEvent } from './provider.js';
import {
  createSandboxProvider,
  SandboxCard,
  sandboxChargeOutcome,
  sandboxPayoutFailsLater,
} from './sandbox-provider.js';

const settle = () => new Promise((resolve) => setImmediate(resolve));

function sandbox(options: { duplicateEvery?: number; failFirst?: number } = {}) {
  const timers = createManualTimers(1_700_000_000_000);
  const delivered: ProviderEvent[] = [];
  let failures = options.failFirst ?? 0;
  let n = 0;
  const provider = createSandboxProvider({
    timers,
    deliver: async (event) => {
      if (failures > 0) {
        failures--;
        throw new Error('503');
      }
      delivered.push(event);
    },
    newId: () => String(++n),
    delayedWebhookMs: 5_000,
    duplicateEvery: options.duplicateEvery ?? 0,
  });
  return { timers, delivered, provider };
}

const charge = (card: string, paymentId = 'pay_1') => ({ paymentId, amount: 1_000n, currency: 'USD', card });

describe('sandbox provider', () => {
  it('answers each card as documented', () => {
    expect(sandboxChargeOutcome(SandboxCard.SUCCEEDS, 5_000)).toEqual({
      answer: 'accepted',
      webhookDelayMs: 0,
    });
    expect(sandboxChargeOutcome(SandboxCard.DELAYED_WEBHOOK, 5_000)).toEqual({
      answer: 'accepted',
      webhookDelayMs: 5_000,
    });
    expect(sandboxChargeOutcome(SandboxCard.DECLINED, 5_000)).toEqual({
      answer: 'declined',
      failureCode: 'card_declined',
    });
    expect(sandboxChargeOutcome(SandboxCard.INSUFFICIENT_FUNDS, 5_000)).toEqual({
      answer: 'declined',
      failureCode: 'insufficient_funds',
    });
    expect(sandboxChargeOutcome('1234', 5_000)).toMatchObject({ answer: 'declined' });
    expect(sandboxPayoutFailsLater('DE89370400440532010000')).toBe(true);
    expect(sandboxPayoutFailsLater('DE89370400440532013000')).toBe(false);
  });

  it('sends the success webhook at once, or after the delay for the slow card; declines send none', async () => {
    const { timers, delivered, provider } = sandbox();
    expect(await provider.charge(charge(SandboxCard.SUCCEEDS, 'p1'))).toMatchObject({ accepted: true });
    expect(await provider.charge(charge(SandboxCard.DELAYED_WEBHOOK, 'p2'))).toMatchObject({
      accepted: true,
    });
    expect(await provider.charge(charge(SandboxCard.DECLINED, 'p3'))).toEqual({
      accepted: false,
      failureCode: 'card_declined',
    });
    timers.advance(0);
    await settle();
    expect(delivered.map((e) => [e.type, e.data.paymentId])).toEqual([['charge.succeeded', 'p1']]);
    timers.advance(5_000);
    await settle();
    expect(delivered.map((e) => [e.type, e.data.paymentId])).toEqual([
      ['charge.succeeded', 'p1'],
      ['charge.succeeded', 'p2'],
    ]);
    expect(delivered[1]?.createdAt).toBe(1_700_000_005);
    expect(provider.inFlight()).toBe(0);
  });

  it('is idempotent per payment id, duplicates some events, retries failed deliveries', async () => {
    const { timers, delivered, provider } = sandbox({ duplicateEvery: 1, failFirst: 2 });
    const first = await provider.charge(charge(SandboxCard.SUCCEEDS));
    expect(await provider.charge(charge(SandboxCard.SUCCEEDS))).toEqual(first);
    timers.advance(0);
    await settle();
    expect(delivered).toHaveLength(0); // both copies failed once
    timers.advance(1_000);
    await settle();
    expect(delivered).toHaveLength(2);
    expect(delivered[0]).toEqual(delivered[1]); // the same event id twice
    expect(provider.inFlight()).toBe(0);
  });

  it('pays out, and for accounts ending 0000 fails the paid payout later', async () => {
    const { timers, delivered, provider } = sandbox();
    await provider.payout({ paymentId: 'w1', amount: 500n, currency: 'USD', bankAccount: 'GB0000' });
    await provider.payout({ paymentId: 'w2', amount: 500n, currency: 'USD', bankAccount: 'GB1234' });
    timers.advance(5_000);
    await settle();
    expect(delivered.map((e) => [e.type, e.data.paymentId, e.data.failureCode])).toEqual([
      ['payout.paid', 'w1', undefined],
      ['payout.paid', 'w2', undefined],
      ['payout.failed', 'w1', 'payout_failed'],
    ]);
    provider.stop();
  });

  it('asked again about a paid payout, sends its events again at once: the return too for 0000', async () => {
    const timers = createManualTimers(1_700_000_000_000);
    const delivered: ProviderEvent[] = [];
    const provider = createSandboxProvider({
      timers,
      deliver: async (event) => void delivered.push(event),
      newId: (seed) => seed, // the production wiring derives ids from the seed: the same ids again
      delayedWebhookMs: 3_600_000,
      duplicateEvery: 0,
    });
    const returned = { paymentId: 'w1', amount: 500n, currency: 'USD', bankAccount: 'GB0000' };
    const paid = { paymentId: 'w2', amount: 500n, currency: 'USD', bankAccount: 'GB1234' };
    await provider.payout(returned);
    await provider.payout(paid);
    timers.advance(0);
    await settle();
    const first = [...delivered];
    expect(first.map((e) => [e.type, e.data.paymentId])).toEqual([
      ['payout.paid', 'w1'],
      ['payout.paid', 'w2'],
    ]);
    // The late failure is lost (a worker restart); asked again, long before the delay:
    await provider.resendOutcome({ kind: 'withdrawal', ...returned });
    await provider.resendOutcome({ kind: 'withdrawal', ...paid });
    timers.advance(0);
    await settle();
    expect(delivered.slice(2).map((e) => [e.type, e.data.paymentId, e.data.failureCode])).toEqual([
      ['payout.paid', 'w1', undefined],
      ['payout.failed', 'w1', 'payout_failed'],
      ['payout.paid', 'w2', undefined],
    ]);
    // With their original ids: what was applied before is a duplicate.
    expect(delivered[2]?.id).toBe(first[0]?.id);
    expect(delivered[4]?.id).toBe(first[1]?.id);
    provider.stop();
  });
});
