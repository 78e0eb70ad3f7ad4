/**
 * The gateway's half of live marketplace pushes (issue 12 §7; the relay's half is
 * src/domain/events/live.ts). Every node hears both topics and serves the sockets it holds:
 * - `market.event`: a `market` push to each named user with a socket here, through their user
 *   actor (which orders it with their other personal pushes);
 * - `market.job-posted`: a `job.posted` push to each connection whose `jobs.watch` matches.
 * Payloads come from another process: parsed with the protocol schemas, anything else dropped.
 */
import { z } from 'zod';
import { JobPostedPayload, MarketEventPayload } from '../../protocol/src/frames.js';
import { UserId } from '../../protocol/src/ids.js';
import type { UserMessage } from '../actors/user/user-actor.js';
import { JOB_POSTED_TOPIC, MARKET_EVENT_TOPIC } from '../domain/events/live.js';
import type { Bus } from '../platform/bus/bus.js';
import type { Connection } from './connection.js';
import type { Hub } from './hub.js';
import type { JobBoard } from './job-board.js';

const MarketAnnouncement = z.object({ userIds: z.array(z.unknown()), event: MarketEventPayload });
const JobPostedAnnouncement = z.object({ job: JobPostedPayload });

/** Subscribes this node to the marketplace topics; returns the unsubscribe functions. */
export async function subscribeMarketLive(deps: {
  readonly bus: Pick<Bus, 'subscribe'>;
  readonly hub: Pick<Hub, 'connectionsOf' | 'pushTo'>;
  readonly jobBoard: Pick<JobBoard<Connection>, 'watchersOf'>;
  readonly tellUser: (userId: UserId, message: UserMessage) => void;
}): Promise<(() => Promise<void>)[]> {
  const { bus, hub, jobBoard } = deps;
  return [
    await bus.subscribe(MARKET_EVENT_TOPIC, (payload) => {
      const announcement = MarketAnnouncement.safeParse(payload);
      if (!announcement.success) return;
      const { event } = announcement.data;
      for (const raw of announcement.data.userIds) {
        const userId = UserId.safeParse(raw);
        // Users without a socket here are some other node's (or nobody's): no actor is woken for them.
        if (userId.success && hub.connectionsOf(userId.data).size > 0) {
          deps.tellUser(userId.data, { type: 'market', event });
        }
      }
    }),
    await bus.subscribe(JOB_POSTED_TOPIC, (payload) => {
      const announcement = JobPostedAnnouncement.safeParse(payload);
      if (!announcement.success) return;
      const { job } = announcement.data;
      const watchers = jobBoard.watchersOf(job);
      if (watchers.length > 0) hub.pushTo(watchers, { t: 'job.posted', d: job });
    }),
  ];
}
