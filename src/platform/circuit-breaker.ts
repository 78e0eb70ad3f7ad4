/**
 * A circuit breaker with a per-call timeout, for calls to an outside service (the payment provider).
 * - closed: calls pass; `failureThreshold` consecutive failures (errors or timeouts) open it;
 * - open: calls fail at once with CircuitOpenError for `cooldownMs` (the service gets air);
 * - half-open: after the cooldown one trial call passes; success closes, failure opens again.
 * Time comes from the Timers port, so tests drive it by hand. A timed-out call is not cancelled
 * (the service may still act on it): callers must make the call idempotent (payment ids as keys).
 */
import type { Timers } from './timers.js';

export class CircuitOpenError extends Error {
  override readonly name = 'CircuitOpenError';
  constructor(readonly retryInMs: number) {
    super(`circuit open; retry in ${retryInMs} ms`);
  }
}

export class CallTimeoutError extends Error {
  override readonly name = 'CallTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
  }
}

export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CircuitBreaker {
  readonly call: <T>(work: () => Promise<T>) => Promise<T>;
  readonly state: () => CircuitState;
}

export function createCircuitBreaker(options: {
  readonly timers: Timers;
  readonly timeoutMs: number;
  readonly failureThreshold: number;
  readonly cooldownMs: number;
  readonly onStateChange?: (state: CircuitState) => void;
}): CircuitBreaker {
  let state: CircuitState = 'closed';
  let failures = 0;
  let openedAt = 0;
  let trialInFlight = false;

  const setState = (next: CircuitState) => {
    if (next === state) return;
    state = next;
    options.onStateChange?.(next);
  };

  const withTimeout = <T>(work: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const cancel = options.timers.schedule(options.timeoutMs, () =>
        reject(new CallTimeoutError(options.timeoutMs)),
      );
      work().then(
        (value) => {
          cancel();
          resolve(value);
        },
        (error: unknown) => {
          cancel();
          reject(error);
        },
      );
    });

  /**
   * Time since the circuit opened. The Timers port's clock is the wall clock: set back while the
   * circuit is open (an NTP correction), it made the cooldown last as long as the step, payouts
   * failing fast all that time; a step back restarts the cooldown instead (one cooldown at most).
   */
  const sinceOpened = () => {
    const now = options.timers.now();
    if (now < openedAt) openedAt = now;
    return now - openedAt;
  };

  return {
    state: () => {
      if (state === 'open' && sinceOpened() >= options.cooldownMs) return 'half-open';
      return state;
    },
    call: async <T>(work: () => Promise<T>): Promise<T> => {
      let trial = false;
      if (state === 'open') {
        const waited = sinceOpened();
        if (waited < options.cooldownMs || trialInFlight) {
          throw new CircuitOpenError(Math.max(0, options.cooldownMs - waited));
        }
        setState('half-open');
      }
      if (state === 'half-open') {
        if (trialInFlight) throw new CircuitOpenError(0);
        trialInFlight = true;
        trial = true;
      }
      try {
        const value = await withTimeout(work);
        failures = 0;
        setState('closed');
        return value;
      } catch (error) {
        failures++;
        if (trial || failures >= options.failureThreshold) {
          openedAt = options.timers.now();
          setState('open');
        }
        throw error;
      } finally {
        if (trial) trialInFlight = false;
      }
    },
  };
}
