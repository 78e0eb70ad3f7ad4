import { describe, expect, it } from 'vitest';
import type { NotificationType } from '../../domain/notifications/types.js';
import { MAX_DIGEST_ITEMS, renderNotificationDigest } from './digest-template.js';

const at = new Date('2026-01-02T03:04:05.000Z');

describe('renderNotificationDigest', () => {
  it('renders each notification with its action, link and, for money, a receipt', () => {
    const mail = renderNotificationDigest('https://gigwire.example', {
      username: 'alice',
      items: [
        {
          type: 'payout.sent',
          title: 'Withdrawal sent',
          body: '12.50 USD was paid out to your bank account.',
          linkPath: '/wallet',
          data: { paymentId: 'pay-1', amount: 1250, currency: 'USD' },
          createdAt: at,
        },
        {
          type: 'bid.received',
          title: 'New bid on "<b>Logo</b>"',
          body: 'bob bid 5.00 USD.',
          linkPath: '/jobs/j1',
          data: {},
          createdAt: at,
        },
      ],
    });
    expect(mail.subject).toBe('2 new notifications on gigwire');
    for (const part of [mail.text, mail.html]) {
      expect(part).toContain('Amount: 12.50 USD');
      expect(part).toContain('Reference: pay-1');
      expect(part).toContain('Date: 2026-01-02 03:04 UTC');
      expect(part).toContain('https://gigwire.example/#/wallet');
      expect(part).toContain('https://gigwire.example/#/jobs/j1');
      expect(part).toContain('Review the bid');
    }
    expect(mail.html).toContain('New bid on &quot;&lt;b&gt;Logo&lt;/b&gt;&quot;');
    expect(mail.html).not.toContain('<b>Logo</b>');
    // Only money notifications carry a receipt.
    expect(mail.text.match(/Amount:/g)).toHaveLength(1);
  });

  it('gives a single notification a subject of our own words, never its user-written title', () => {
    const mail = renderNotificationDigest('http://localhost:3000', {
      username: 'bob',
      items: [
        {
          type: 'messages.unread',
          title: '3 new messages in Design',
          body: '3 new messages from alice in Design.',
          linkPath: '/rooms/r1',
          data: { roomId: 'r1', count: 3 },
          createdAt: at,
        },
      ],
    });
    expect(mail.subject).toBe('You have unread messages');
    expect(mail.subject).not.toContain('Design');
    // The title (with the room's name) is in the body.
    expect(mail.text).toContain('* 3 new messages in Design');
    expect(mail.text).toContain('Read the messages: http://localhost:3000/#/rooms/r1');
  });

  it('lists at most MAX_DIGEST_ITEMS, every security notice among them, and counts the rest', () => {
    const bid = (i: number) => ({
      type: 'bid.received' as const,
      title: `Bid ${i}`,
      body: 'b',
      linkPath: '/jobs/j',
      data: {},
      createdAt: at,
    });
    const items = [
      ...Array.from({ length: 5_000 }, (_, i) => bid(i)),
      {
        type: 'security.new_login' as const,
        title: 'New sign-in to your account',
        body: 'from 203.0.113.9',
        linkPath: '/profile/security',
        data: {},
        createdAt: at,
      },
    ];
    const mail = renderNotificationDigest('https://gigwire.example', { username: 'alice', items });
    expect(mail.text).toContain('New sign-in to your account');
    expect(mail.text.match(/^\* /gm)).toHaveLength(MAX_DIGEST_ITEMS);
    expect(mail.text).toContain(
      `…and ${5_001 - MAX_DIGEST_ITEMS} more: https://gigwire.example/#/notifications`,
    );
    expect(mail.html.length).toBeLessThan(100_000);
  });

  it('keeps user-written text on one line: no forged entries, no bidirectional overrides', () => {
    const mail = renderNotificationDigest('https://gigwire.example', {
      username: 'eve\u202e',
      items: [
        {
          type: 'bid.rejected',
          title: 'Logo\n\n* New sign-in to your account\n  Review: https://evil.example',
          body: 'x\r\ny',
          linkPath: '/jobs/j1',
          data: {},
          createdAt: at,
        },
      ],
    });
    expect(mail.text.match(/^\* /gm)).toHaveLength(1);
    expect(mail.text).not.toMatch(/^\* New sign-in/m);
    expect(mail.subject).not.toMatch(/[\n\r]/);
    expect(mail.text + mail.html).not.toContain('\u202e');
  });

  it('never throws on a type this build does not know or data that is not an object: generic words instead', () => {
    const legacy = {
      type: 'legacy.type' as NotificationType,
      title: 'Something old',
      body: 'from a removed feature',
      linkPath: '/',
      data: null as unknown as Record<string, unknown>,
      createdAt: at,
    };
    const alone = renderNotificationDigest('https://gigwire.example', { username: 'alice', items: [legacy] });
    expect(alone.subject).toBe('New notification on gigwire');
    for (const part of [alone.text, alone.html]) {
      expect(part).toContain('Something old');
      expect(part).toContain('Open gigwire');
      expect(part).not.toContain('undefined');
    }
    const mixed = renderNotificationDigest('https://gigwire.example', {
      username: 'alice',
      items: [
        legacy,
        { ...legacy, type: 'payment.succeeded', title: 'Payment' },
        { ...legacy, type: 'constructor' as NotificationType, title: 'Proto' },
      ],
    });
    expect(mixed.subject).toBe('3 new notifications on gigwire');
    expect(mixed.text).toContain('Open your wallet');
    expect(mixed.html.match(/Open gigwire/g)).toHaveLength(2);
    expect(mixed.text + mixed.html).not.toContain('undefined');
  });

  it('links the one-click unsubscribe page in both parts when given a token', () => {
    const item = {
      type: 'bid.received' as const,
      title: 'New bid',
      body: 'bob bid 5.00 USD.',
      linkPath: '/jobs/j1',
      data: {},
      createdAt: at,
    };
    const mail = renderNotificationDigest('https://gigwire.example', {
      username: 'alice',
      items: [item],
      unsubscribeToken: 'p4yl0ad.m4c',
    });
    const link = 'https://gigwire.example/v1/notifications/unsubscribe?token=p4yl0ad.m4c';
    expect(mail.text).toContain(`Stop these emails (security warnings are still sent): ${link}`);
    expect(mail.html).toContain(`<a href="${link}">unsubscribe</a>`);
    const without = renderNotificationDigest('https://gigwire.example', { username: 'alice', items: [item] });
    expect(without.text).not.toContain('unsubscribe');
  });
});
