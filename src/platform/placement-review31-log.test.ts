/**
 * Review 31 (operator, logs): placement reads the node registry in Redis every second, and more on
 * demand; while Redis was away each failed read wrote a warning, one line a second per gateway for
 * the whole outage. One line per 10 s now, with the number held back.
 */
import { describe, expect, it } from 'vitest';
import { loggerToMemory } from './logger.testing.js';
import { createPlacement } from './placement.js';
import { createManualTimers } from './timers.js';

describe('placement while the node registry cannot be read (review 31)', () => {
  it('logs the failure once per 10 s, keeping its view', async () => {
    const { log, lines } = loggerToMemory();
    const timers = createManualTimers(10_000);
    const placement = createPlacement({
      nodeId: 'g1',
      liveNodes: () => Promise.reject(new Error('Connection is closed.')),
      refreshMs: 1_000,
      timers,
      log: log,
    });
    const failures = () => lines.filter((line) => line.msg.startsWith('placement: node registry unreadable'));
    for (let second = 0; second < 25; second++) {
      await placement.refresh();
      timers.advance(1_000);
    }
    expect(placement.nodes()).toEqual(['g1']);
    expect(failures().map((line) => line.heldBack)).toEqual([0, 9, 9]);
  });
});
