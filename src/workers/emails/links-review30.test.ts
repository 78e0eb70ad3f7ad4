/**
 * Review 30: the mail of an accepted bid says "Open the contract" and its notification carries the
 * contract's id, but the link opened the job's page (the web app's own list opens the contract).
 */
import { describe, expect, it } from 'vitest';
import { linkPathOf } from '../../domain/notifications/content.js';
import { renderNotificationDigest } from './digest-template.js';

const jobId = '0b6f0d7e-58a4-4d0f-9a39-1f3f5a6c7d01';
const contractId = '7c9e6679-7425-40de-944b-e07fc1f90ae7';

describe('the link of an accepted bid (review 30)', () => {
  it('opens the contract the bid started', () => {
    expect(linkPathOf('bid.accepted', { bidId: 'b', jobId, contractId })).toBe(`/contracts/${contractId}`);
    // Bids that started nothing still open their job, or the job board.
    expect(linkPathOf('bid.rejected', { bidId: 'b', jobId })).toBe(`/jobs/${jobId}`);
    expect(linkPathOf('bid.received', {})).toBe('/');
  });

  it('is where the digest mail\'s "Open the contract" leads', () => {
    const mail = renderNotificationDigest('https://gigwire.example', {
      username: 'worker',
      items: [
        {
          type: 'bid.accepted',
          title: 'Your bid was accepted',
          body: 'Your bid on "Logo" was accepted: the contract has started.',
          linkPath: linkPathOf('bid.accepted', { jobId, contractId }),
          data: { jobId, contractId },
          createdAt: new Date('2026-01-01T00:00:00Z'),
        },
      ],
    });
    expect(mail.text).toContain(`Open the contract: https://gigwire.example/#/contracts/${contractId}`);
    expect(mail.html).toContain(`href="https://gigwire.example/#/contracts/${contractId}"`);
  });
});
