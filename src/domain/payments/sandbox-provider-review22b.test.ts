/**
 * Review 22b: the sandbox kept every payment's answer in memory for the life of the worker (its
 * idempotency map), so a worker's memory grew with every payment ever submitted. It keeps the most
 * recent `answersKept` now; a payment asked about after its answer was forgotten gets the same
 * answer (ids derived from the payment id, as the production wiring does) and its events again with
 * the same ids — duplicates the receiver drops.
 */
import { describe, expect, it } from 'vitest';
import { createManualTimers } from '../../platform/timers.js';
import type { ProviderEvent } from './provider.js';
import { createSandboxProvider, SANDBOX_ANSWERS_KEPT, SandboxCard } from './sandbox-provider.js';

const settle = () => new Promise((resolve) => setImmediate(resolve));

function sandbox(answersKept?: number) {
  const timers = createManualTimers(1_700_000_000_000);
  const delivered: ProviderEvent[] = [];
  const provider = createSandboxProvider({
    timers,
    deliver: async (event) => void delivered.push(event),
    newId: (seed) => `id(${seed})`, // derived from the seed, as in production
    delayedWebhookMs: 0,
    duplicateEvery: 0,
    ...(answersKept === undefined ? {} : { answersKept }),
  });
  const run = async () => {
    timers.advance(0);
    await settle();
  };
  return { provider, delivered, run };
}

const charge = (paymentId: string, card: string = SandboxCard.SUCCEEDS) => ({
  paymentId,
  amount: 1_000n,
  currency: 'USD',
  card,
});

describe('the sandbox provider keeps a bounded number of answers', () => {
  it('remembers at most SANDBOX_ANSWERS_KEPT answers however many payments it was asked', async () => {
    const { provider, run } = sandbox();
    for (let i = 0; i < SANDBOX_ANSWERS_KEPT + 500; i++) {
      await provider.charge(charge(`pay_${i}`, i % 2 === 0 ? SandboxCard.SUCCEEDS : SandboxCard.DECLINED));
    }
    await run();
    expect(provider.answersKept()).toBe(SANDBOX_ANSWERS_KEPT);
    expect(provider.inFlight()).toBe(0);
    provider.stop();
  });

  it('answers a payment asked again the same: silently while remembered, with duplicate events after', async () => {
    const { provider, delivered, run } = sandbox(2);
    const first = await provider.charge(charge('pay_a'));
    const declined = await provider.charge(charge('pay_b', SandboxCard.DECLINED));
    await run();
    expect(delivered.map((e) => [e.id, e.data.paymentId])).toEqual([
      ['evt_id(charge.succeeded.pay_a)', 'pay_a'],
    ]);

    // Remembered: the same answer, nothing sent.
    expect(await provider.charge(charge('pay_a'))).toEqual(first);
    await run();
    expect(delivered).toHaveLength(1);

    // pay_b is the least recently used: forgotten when two more arrive after pay_a was asked again.
    await provider.charge(charge('pay_c'));
    await provider.charge(charge('pay_d'));
    await run();
    expect(provider.answersKept()).toBe(2);
    expect(await provider.charge(charge('pay_b', SandboxCard.DECLINED))).toEqual(declined);

    // pay_a is forgotten too now: the same answer, its event again with the same id.
    expect(await provider.charge(charge('pay_a'))).toEqual(first);
    await run();
    const ofA = delivered.filter((e) => e.data.paymentId === 'pay_a');
    expect(ofA).toHaveLength(2);
    expect(ofA[1]).toEqual(ofA[0]);

    // Payouts the same way (ids and answer derived from the payment id).
    const payout = { paymentId: 'w1', amount: 500n, currency: 'USD', bankAccount: 'GB1234' };
    const paid = await provider.payout(payout);
    await provider.charge(charge('pay_e'));
    await provider.charge(charge('pay_f'));
    expect(await provider.payout(payout)).toEqual(paid);
    await run();
    const ofW1 = delivered.filter((e) => e.data.paymentId === 'w1');
    expect(ofW1.map((e) => e.id)).toEqual(['evt_id(payout.paid.w1)', 'evt_id(payout.paid.w1)']);
    expect(provider.answersKept()).toBe(2);
    provider.stop();
  });
});
