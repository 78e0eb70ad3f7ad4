import { describe, expect, it } from 'vitest';
import { availableEvents, decide } from './contract-process.js';

// Review 30: after a delivery and a request for changes the contract is `active` again, but cancel
// is refused for good (guard neverDelivered). `available` offered it anyway, and the web app drew a
// "Cancel contract" button for both parties that could only ever answer 409.
describe('available events after a request for changes (review 30)', () => {
  const now = new Date('2026-12-07T12:00:00.000Z');

  it('offers no cancel once the work was delivered, as decide refuses it; before any delivery, cancel', () => {
    const afterChanges = { autoApproveAt: null, now, deliveries: 1 };
    for (const actor of ['hirer', 'worker'] as const) {
      const refused = decide('active', 'cancel', actor, { version: 3, deliveries: 1, amount: 100n, now });
      expect(refused).toMatchObject({ ok: false, error: { guard: 'neverDelivered' } });
      expect(availableEvents('active', actor, afterChanges)).not.toContain('cancel');
    }
    expect(availableEvents('active', 'hirer', afterChanges)).toEqual(['dispute']);
    expect(availableEvents('active', 'worker', afterChanges)).toEqual(['deliver', 'dispute']);
    const fresh = { autoApproveAt: null, now, deliveries: 0 };
    expect(availableEvents('active', 'hirer', fresh)).toEqual(['cancel', 'dispute']);
    expect(availableEvents('active', 'worker', fresh)).toEqual(['deliver', 'cancel', 'dispute']);
  });
});
