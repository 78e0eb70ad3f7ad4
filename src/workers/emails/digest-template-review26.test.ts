/**
 * Review 26: the digest task reads at most MAX_DIGEST_ITEMS notifications and counts the rest
 * (`total`): the mail's subject, its opening line and its "…and N more" line say the whole count.
 */
import { describe, expect, it } from 'vitest';
import { MAX_DIGEST_ITEMS, renderNotificationDigest } from './digest-template.js';

describe('a digest whose notifications were read up to the bound', () => {
  it('counts the notifications that were not read in its subject and its "more" line', () => {
    const items = Array.from({ length: MAX_DIGEST_ITEMS }, (_, i) => ({
      type: 'bid.received' as const,
      title: `New bid on "Job ${i}"`,
      body: 'someone bid 1.00 USD.',
      linkPath: '/',
      data: {},
      createdAt: new Date('2026-01-02T03:04:05Z'),
    }));
    const mail = renderNotificationDigest('https://gigwire.example', {
      username: 'alice',
      items,
      total: 1_234,
    });
    expect(mail.subject).toBe('1234 new notifications on gigwire');
    expect(mail.text).toContain('here are 1234 things that happened on gigwire:');
    expect(mail.text.match(/^\* /gm)).toHaveLength(MAX_DIGEST_ITEMS);
    expect(mail.text).toContain(
      `…and ${1_234 - MAX_DIGEST_ITEMS} more: https://gigwire.example/#/notifications`,
    );
    expect(mail.html).toContain(`…and ${1_234 - MAX_DIGEST_ITEMS} more</a>`);
  });
});
