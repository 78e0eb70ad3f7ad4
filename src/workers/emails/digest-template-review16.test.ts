import { describe, expect, it } from 'vitest';
import { MAX_DIGEST_ITEMS, renderNotificationDigest } from './digest-template.js';

describe('a digest flooded with security notices', () => {
  it('lists at most MAX_DIGEST_ITEMS even when they are all security notices, and counts the rest', () => {
    const at = new Date('2026-01-02T03:04:05Z');
    // Someone who holds the password signs in from a new device 20 000 times within one digest.
    const items = Array.from({ length: 20_000 }, (_, i) => ({
      type: 'security.new_login' as const,
      title: 'New sign-in to your account',
      body: `Your account was signed in to from a new device (203.0.113.${i % 250}).`,
      linkPath: '/profile/security',
      data: {},
      createdAt: at,
    }));
    const mail = renderNotificationDigest('https://gigwire.example', { username: 'alice', items });
    expect(mail.text.match(/^\* /gm)).toHaveLength(MAX_DIGEST_ITEMS);
    expect(mail.text).toContain('New sign-in to your account');
    expect(mail.text).toContain(
      `…and ${20_000 - MAX_DIGEST_ITEMS} more: https://gigwire.example/#/notifications`,
    );
    // Well under what receiving servers accept (commonly 10 to 25 MB), whatever the count.
    expect(mail.html.length).toBeLessThan(100_000);
    expect(mail.text.length).toBeLessThan(100_000);
  });
});
