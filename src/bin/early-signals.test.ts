import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { holdStopSignals, type StopSignal } from './early-signals.js';

describe('holdStopSignals', () => {
  it('holds the first signal until the hand-over, then passes every signal to the handler', () => {
    const source = new EventEmitter();
    const signals = holdStopSignals(source);
    source.emit('SIGINT', 'SIGINT');
    source.emit('SIGTERM', 'SIGTERM');
    expect(signals.pending()).toBe('SIGINT');
    const seen: StopSignal[] = [];
    signals.handOver((signal) => seen.push(signal));
    expect(seen).toEqual(['SIGINT']);
    source.emit('SIGTERM', 'SIGTERM');
    expect(seen).toEqual(['SIGINT', 'SIGTERM']);
  });

  it('keeps one listener per signal for good (removing the last would drop a caught signal)', () => {
    const source = new EventEmitter();
    const signals = holdStopSignals(source);
    signals.handOver(() => undefined);
    expect(source.listenerCount('SIGTERM')).toBe(1);
    expect(source.listenerCount('SIGINT')).toBe(1);
  });

  it('calls nothing at the hand-over when no signal came, and only the first handler counts', () => {
    const source = new EventEmitter();
    const signals = holdStopSignals(source);
    const first: StopSignal[] = [];
    const second: StopSignal[] = [];
    signals.handOver((signal) => first.push(signal));
    signals.handOver((signal) => second.push(signal));
    expect(first).toEqual([]);
    source.emit('SIGTERM', 'SIGTERM');
    expect(first).toEqual(['SIGTERM']);
    expect(second).toEqual([]);
  });
});
