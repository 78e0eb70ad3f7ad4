/**
 * The marketplace's outbox events (issue 12 §8) and who hears of each live. Every event is written
 * in the transaction of the change it reports; its payload carries ids (never rows) and `notify`,
 * the users to push it to through their user actors (§7). The relay turns an event into pushes and
 * tasks after the commit; the Notifications issue turns the same events into stored notifications.
 */
import { UserId } from '../../../protocol/src/ids.js';

/** Outbox event types of jobs, bids, contracts and reviews. */
export const MarketplaceEvent = {
  jobPosted: 'job.posted',
  jobClosed: 'job.closed',
  bidPlaced: 'bid.placed',
  bidAccepted: 'bid.accepted',
  bidRejected: 'bid.rejected',
  bidWithdrawn: 'bid.withdrawn',
  reviewPublished: 'review.published',
} as const;
export type MarketplaceEventType = (typeof MarketplaceEvent)[keyof typeof MarketplaceEvent];

/** Contract events are `contract.<event>` (the transition table's `outbox` effect). */
export const CONTRACT_EVENT_PREFIX = 'contract.';

/** True for every event type this module defines (the relay's filter). */
export function isMarketplaceEvent(type: string): boolean {
  return (
    type.startsWith(CONTRACT_EVENT_PREFIX) ||
    (Object.values(MarketplaceEvent) as readonly string[]).includes(type)
  );
}

/**
 * Fields every contract event payload carries (`contract.accept`, `contract.deliver`, …).
 * `autoApproveAt` is set on `contract.deliver` (the relay schedules the timer for it);
 * `reviewDeadlineAt` when the contract ends with reviews open (the review-window timer);
 * `escrow` names the money move the relay enqueues on the payments queue.
 */
export interface ContractEventPayload {
  readonly contractId: string;
  readonly jobId: string;
  readonly hirerId: string;
  readonly workerId: string;
  readonly event: string;
  readonly from: string | null;
  readonly state: string;
  readonly version: number;
  readonly notify: readonly string[];
  readonly autoApproveAt?: string;
  readonly reviewDeadlineAt?: string;
  readonly escrow?: 'release' | 'refund' | 'split';
}

/** The users an event is pushed to live: its `notify` list, parsed (anything else is dropped). */
export function liveRecipients(payload: Record<string, unknown>): UserId[] {
  const notify = payload.notify;
  if (!Array.isArray(notify)) return [];
  const users: UserId[] = [];
  for (const raw of notify) {
    const parsed = UserId.safeParse(raw);
    if (parsed.success && !users.includes(parsed.data)) users.push(parsed.data);
  }
  return users;
}
