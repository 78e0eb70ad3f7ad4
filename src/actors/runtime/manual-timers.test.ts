// Tests of createManualTimers (src/platform/timers.ts) live here because the actor runtime's tests rely
// on exactly these semantics.
import { describe, expect, it } from 'vitest';
import { createManualTimers, MAX_TIMER_DELAY_MS, systemTimers } from '../../platform/timers.js';

describe('createManualTimers', () => {
  it('runs due callbacks in due-time order, ties in scheduling order, each at its own time', () => {
    const timers = createManualTimers(1_000);
    const ran: string[] = [];
    const at = (label: string) => () => ran.push(`${label}@${timers.now()}`);
    timers.schedule(30, at('c'));
    timers.schedule(10, at('a'));
    timers.schedule(10, at('b'));
    timers.schedule(50, at('late'));
    timers.advance(40);
    expect(ran).toEqual(['a@1010', 'b@1010', 'c@1030']);
    expect(timers.now()).toBe(1_040);
    expect(timers.pending()).toBe(1);
  });

  it('also runs callbacks scheduled by callbacks when they fall due within the same advance', () => {
    const timers = createManualTimers();
    const ran: number[] = [];
    timers.schedule(10, () => {
      ran.push(timers.now());
      timers.schedule(0, () => ran.push(timers.now()));
      timers.schedule(15, () => ran.push(timers.now()));
      timers.schedule(100, () => ran.push(timers.now()));
    });
    timers.advance(30);
    expect(ran).toEqual([10, 10, 25]);
    expect(timers.pending()).toBe(1);
  });

  it('cancel removes a callback, is idempotent, and is harmless after the callback ran', () => {
    const timers = createManualTimers();
    let ran = 0;
    const cancelFirst = timers.schedule(5, () => ran++);
    const cancelSecond = timers.schedule(5, () => ran++);
    cancelFirst();
    cancelFirst();
    expect(timers.pending()).toBe(1);
    timers.advance(5);
    cancelSecond();
    expect(ran).toBe(1);
    expect(timers.pending()).toBe(0);
  });

  it('refuses delays Node would not honour', () => {
    const timers = createManualTimers();
    expect(() => timers.schedule(Number.POSITIVE_INFINITY, () => undefined)).toThrow(RangeError);
    expect(() => timers.schedule(-1, () => undefined)).toThrow(RangeError);
    expect(() => systemTimers.schedule(MAX_TIMER_DELAY_MS + 1, () => undefined)).toThrow(RangeError);
  });
});

describe('systemTimers', () => {
  it('fires after the delay and can be cancelled', async () => {
    const fired: string[] = [];
    const cancel = systemTimers.schedule(1, () => fired.push('cancelled'));
    cancel();
    await new Promise<void>((resolve) => systemTimers.schedule(5, resolve));
    expect(fired).toEqual([]);
    expect(Math.abs(systemTimers.now() - Date.now())).toBeLessThan(1_000);
  });
});
