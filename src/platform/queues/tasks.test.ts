import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { taskId } from './tasks.js';

describe('taskId', () => {
  it('gives distinct ids to texts that differ only by ":" and the characters it was mapped to', () => {
    const texts = ['evt:1', 'evt_1', 'evt%3A1', 'evt%1', 'evt%253A1', 'evt%_1', 'evt::1', 'evt:_1', 'evt_:1'];
    const ids = texts.map((text) => taskId('provider-event', text));
    expect(new Set(ids).size).toBe(texts.length);
    // Encoding the key again, as the task queue does, keeps them apart too.
    expect(new Set(ids.map((id) => taskId(id))).size).toBe(texts.length);
    for (const id of ids) expect(id).not.toContain(':');
  });

  it('is injective on any two texts made of the characters that matter', () => {
    // Short texts over few characters, so pairs that an escape could confuse come up often.
    const text = fc.string({ unit: fc.constantFrom(':', '_', '%', '3', 'A'), maxLength: 4 });
    fc.assert(
      fc.property(text, text, (a, b) => {
        if (a !== b) expect(taskId(a)).not.toBe(taskId(b));
        expect(taskId(a)).not.toContain(':');
      }),
      { numRuns: 2_000 },
    );
  });

  it('keeps every id without ":" or "%" unchanged (the dedupe key of tasks already enqueued)', () => {
    expect(taskId('provider-event', 'evt_1Xa-9b')).toBe('provider-event.evt_1Xa-9b');
    expect(taskId('payment', '0b1c6f5e-3a56-4b8e-9d43-2f1f7f0c8a11')).toBe(
      'payment.0b1c6f5e-3a56-4b8e-9d43-2f1f7f0c8a11',
    );
    expect(taskId(taskId('contract', 'c1', 'auto-approve', '3'))).toBe('contract.c1.auto-approve.3');
  });
});
