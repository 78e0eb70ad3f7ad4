import { describe, expect, it } from 'vitest';
import { CallTimeoutError, CircuitOpenError, createCircuitBreaker } from './circuit-breaker.js';
import { createManualTimers } from './timers.js';

const fail = () => Promise.reject(new Error('boom'));
const ok = () => Promise.resolve('ok');

describe('circuit breaker', () => {
  it('opens after consecutive failures, fails fast while open, closes after a good trial', async () => {
    const timers = createManualTimers();
    const states: string[] = [];
    const breaker = createCircuitBreaker({
      timers,
      timeoutMs: 1_000,
      failureThreshold: 3,
      cooldownMs: 10_000,
      onStateChange: (s) => states.push(s),
    });
    await expect(breaker.call(fail)).rejects.toThrow('boom');
    await expect(breaker.call(fail)).rejects.toThrow('boom');
    expect(await breaker.call(ok)).toBe('ok'); // a success resets the count
    for (let i = 0; i < 3; i++) await expect(breaker.call(fail)).rejects.toThrow('boom');
    expect(breaker.state()).toBe('open');
    let called = false;
    await expect(
      breaker.call(async () => {
        called = true;
      }),
    ).rejects.toBeInstanceOf(CircuitOpenError);
    expect(called).toBe(false);

    timers.advance(10_000);
    expect(breaker.state()).toBe('half-open');
    await expect(breaker.call(fail)).rejects.toThrow('boom'); // failed trial: open again
    expect(breaker.state()).toBe('open');
    timers.advance(10_000);
    expect(await breaker.call(ok)).toBe('ok');
    expect(breaker.state()).toBe('closed');
    expect(states).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
  });

  it('counts a call without an answer within the timeout as a failure', async () => {
    const timers = createManualTimers();
    const breaker = createCircuitBreaker({ timers, timeoutMs: 500, failureThreshold: 1, cooldownMs: 1_000 });
    const pending = breaker.call(() => new Promise<never>(() => undefined));
    timers.advance(500);
    await expect(pending).rejects.toBeInstanceOf(CallTimeoutError);
    expect(breaker.state()).toBe('open');
    expect(timers.pending()).toBe(0);
  });

  it('lets one trial through while half-open', async () => {
    const timers = createManualTimers();
    const breaker = createCircuitBreaker({ timers, timeoutMs: 500, failureThreshold: 1, cooldownMs: 1_000 });
    await expect(breaker.call(fail)).rejects.toThrow();
    timers.advance(1_000);
    let release!: (v: string) => void;
    const trial = breaker.call(() => new Promise<string>((r) => (release = r)));
    await expect(breaker.call(ok)).rejects.toBeInstanceOf(CircuitOpenError);
    release('done');
    expect(await trial).toBe('done');
    expect(await breaker.call(ok)).toBe('ok');
  });

  it('waits one cooldown, not the size of the step, when the wall clock is set back while open', async () => {
    const manual = createManualTimers();
    let wallMs = 1_000_000;
    const timers = { ...manual, now: () => wallMs };
    const breaker = createCircuitBreaker({
      timers,
      timeoutMs: 1_000,
      failureThreshold: 1,
      cooldownMs: 10_000,
    });
    await expect(breaker.call(fail)).rejects.toThrow('boom');
    expect(breaker.state()).toBe('open');
    wallMs -= 3_600_000; // an hour back
    await expect(breaker.call(ok)).rejects.toBeInstanceOf(CircuitOpenError);
    wallMs += 10_000;
    expect(breaker.state()).toBe('half-open');
    expect(await breaker.call(ok)).toBe('ok');
  });
});
