import { Backoffs, type Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import {
  BACKOFF_CAP_MS,
  CAPPED_EXPONENTIAL,
  cappedExponentialDelay,
  retryBudget,
  taskBackoffStrategy,
} from './backoff.js';
import { tasks } from './tasks.js';

const HOUR = 3_600_000;
const MINUTE = 60_000;

/** The backoff of a task definition, as the strategy and `retryBudget` take it. */
const cappedOf = (backoff: { readonly delay: number; readonly jitter?: number }) => ({
  delayMs: backoff.delay,
  jitter: backoff.jitter ?? 0,
});

describe('capped exponential backoff', () => {
  it('doubles from the base delay and never waits longer than the cap', () => {
    const waits = Array.from({ length: 14 }, (_, i) =>
      cappedExponentialDelay(i + 1, { delayMs: 1_000, jitter: 0 }),
    );
    expect(waits).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000, 300_000,
      300_000, 300_000,
    ]);
    expect(BACKOFF_CAP_MS).toBe(5 * MINUTE);
    // Far past the point where 2^n overflows a double: still the cap, still a finite number.
    expect(cappedExponentialDelay(5_000, { delayMs: 1_000, jitter: 0 })).toBe(BACKOFF_CAP_MS);
  });

  it('jitters each wait downwards only, by at most the jitter fraction', () => {
    const backoff = { delayMs: 1_000, jitter: 0.2 };
    for (const attemptsMade of [1, 5, 9, 10, 40]) {
      const nominal = cappedExponentialDelay(attemptsMade, { ...backoff, jitter: 0 });
      expect(cappedExponentialDelay(attemptsMade, backoff, () => 0)).toBe(nominal);
      expect(cappedExponentialDelay(attemptsMade, backoff, () => 0.999_999)).toBeGreaterThanOrEqual(
        Math.floor(nominal * 0.8),
      );
      for (let i = 0; i < 200; i++) {
        const wait = cappedExponentialDelay(attemptsMade, backoff);
        expect(wait).toBeLessThanOrEqual(nominal);
        expect(wait).toBeGreaterThanOrEqual(Math.floor(nominal * 0.8));
      }
    }
    // Spread: tasks failed by one outage do not all come back in the same millisecond.
    const spread = new Set(Array.from({ length: 50 }, () => cappedExponentialDelay(20, backoff)));
    expect(spread.size).toBeGreaterThan(10);
  });

  it('is what BullMQ computes for a task of our type through the worker setting', async () => {
    const definition = tasks['notifications.digest'];
    expect(definition.backoff.type).toBe(CAPPED_EXPONENTIAL);
    const job = { opts: { backoff: definition.backoff } } as unknown as Job;
    for (const attemptsMade of [1, 3, 9, 10, 53]) {
      const nominal = cappedExponentialDelay(attemptsMade, { delayMs: 1_000, jitter: 0 });
      const wait = await Backoffs.calculate(
        definition.backoff,
        attemptsMade,
        new Error('database down'),
        job,
        taskBackoffStrategy,
      );
      expect(wait).toBeLessThanOrEqual(nominal);
      expect(wait).toBeGreaterThanOrEqual(Math.floor(nominal * 0.8));
    }
  });

  it('gives every database-bound task 3 to 4 hours of retries, 5 minutes apart at most', () => {
    const databaseBound = Object.entries(tasks).filter(([name]) => name !== 'emails.send');
    expect(databaseBound.map(([name]) => name).sort()).toEqual([
      'contracts.auto-approve',
      'notifications.deliver',
      'notifications.digest',
      'notifications.unread-check',
      'payments.apply-event',
      'payments.escrow',
      'payments.submit',
      'reviews.publish',
    ]);
    for (const [name, definition] of databaseBound) {
      expect(definition.backoff.type, name).toBe(CAPPED_EXPONENTIAL);
      const budget = retryBudget(definition.attempts, cappedOf(definition.backoff));
      // The figures tasks.ts states: between 3 h 3 min and 3 h 49 min of waiting.
      expect(budget.minMs, name).toBeGreaterThanOrEqual(3 * HOUR);
      expect(budget.minMs, name).toBe(10_968_800); // 3 h 2 min 48.8 s
      expect(budget.maxMs, name).toBe(13_711_000); // 3 h 48 min 31 s
      // The old policy (10 attempts, plain exponential from 1 s) waited 511 s in all.
      expect(budget.minMs).toBeGreaterThan(20 * 511_000);
    }
  });

  it("keeps the emails' own policy: 15 attempts, plain exponential from 1 s, about 4.5 h, longer than the database budget", () => {
    const email = tasks['emails.send'];
    expect(email.attempts).toBe(15);
    expect(email.backoff).toEqual({ type: 'exponential', delay: 1_000 });
    let total = 0;
    for (let attemptsMade = 1; attemptsMade < email.attempts; attemptsMade++) {
      total += Backoffs.calculate(email.backoff, attemptsMade, new Error('x'), {} as Job) as number;
    }
    expect(total).toBe(16_383_000); // 4 h 33 min
    const database = tasks['notifications.digest'];
    expect(total).toBeGreaterThan(retryBudget(database.attempts, cappedOf(database.backoff)).maxMs);
  });

  it('reads delay and jitter from the task; an unknown type is retried the same way, never dropped', () => {
    const job = (backoff: unknown) => ({ opts: { backoff } }) as unknown as Job;
    expect(
      taskBackoffStrategy(3, CAPPED_EXPONENTIAL, undefined, job({ type: CAPPED_EXPONENTIAL, delay: 500 })),
    ).toBe(2_000);
    expect(taskBackoffStrategy(12, 'some-future-type', undefined, job({ type: 'some-future-type' }))).toBe(
      BACKOFF_CAP_MS,
    );
    expect(taskBackoffStrategy(2, 'x', undefined, job(250))).toBe(500);
  });
});
