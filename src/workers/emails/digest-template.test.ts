import { describe, expect, it } from 'vitest';
import { renderNotificationDigest } from './digest-template.js';

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
      expect(part).toContain('https://gigwire.example/wallet');
      expect(part).toContain('https://gigwire.example/jobs/j1');
      expect(part).toContain('Review the bid');
    }
    expect(mail.html).toContain('New bid on &quot;&lt;b&gt;Logo&lt;/b&gt;&quot;');
    expect(mail.html).not.toContain('<b>Logo</b>');
    // Only money notifications carry a receipt.
    expect(mail.text.match(/Amount:/g)).toHaveLength(1);
  });

  it('uses the title as the subject of a single notification', () => {
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
    expect(mail.subject).toBe('3 new messages in Design');
    expect(mail.text).toContain('Read the messages: http://localhost:3000/rooms/r1');
  });
});
