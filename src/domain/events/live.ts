/**
 * Live marketplace pushes (issue 12 §7): what the outbox relay announces on the bus once a batch of
 * events has committed, for every gateway node to push to the sockets it holds.
 *
 * - `market.event` `{userIds, event}`: every marketplace event with people to tell (its `notify`
 *   list, `liveRecipients`) becomes one `market` push of ids and states (MarketEventPayload); each
 *   node gives it to the user actors of those users with sockets there.
 * - a contract event's job-room system message (`roomId`, `roomSeq`; stored by the transition) on
 *   the room's topic, for the members joined now (members who miss it read the room's history).
 * - `market.job-posted` `{job}`: each `job.posted` whose job is still open, and its hirer not
 *   locked, when the relay reads it (one query per batch) becomes a job-board summary (JobPostedPayload); each node pushes it to
 *   the connections whose `jobs.watch` filter matches (src/gateway/job-board.ts).
 *
 * At most once, by design: announced after the relay's commit, so a crash in between loses the
 * push and never repeats it; a failed publish is logged and dropped. REST is the truth: a client
 * re-reads it after a reconnect. Payloads are parsed again with the protocol schemas by the
 * subscriber, the bus being a process boundary.
 */
import type { Kysely } from 'kysely';
import {
  type JobPostedPayload,
  type MarketEventPayload,
  MarketEventType,
} from '../../../protocol/src/frames.js';
import { BidId, ContractId, JobId, ReviewId, RoomId, type UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import { findOpenJobs, type JobRow } from '../../db/repositories/jobs.repo.js';
import type { OutboxEventRow } from '../../db/repositories/outbox.repo.js';
import { messagesAfter } from '../../db/repositories/rooms.repo.js';
import type { Bus } from '../../platform/bus/bus.js';
import { JOB_POSTED_TOPIC, MARKET_EVENT_TOPIC, roomTopic, type Topic } from '../../platform/bus/topics.js';
import type { Logger } from '../../platform/logger.js';
import {
  CONTRACT_EVENT_PREFIX,
  isMarketplaceEvent,
  liveRecipients,
  MarketplaceEvent,
} from '../marketplace/events.js';
import { toRoomMessage } from '../rooms/service.js';

export { JOB_POSTED_TOPIC, MARKET_EVENT_TOPIC };

/** The state an event leaves its bid or job in, for events whose payload does not say. */
const IMPLIED_STATE: Readonly<Record<string, string>> = {
  [MarketEventType.BID_PLACED]: 'pending',
  [MarketEventType.BID_ACCEPTED]: 'accepted',
  [MarketEventType.BID_REJECTED]: 'rejected',
  [MarketEventType.BID_WITHDRAWN]: 'withdrawn',
  [MarketEventType.JOB_CLOSED]: 'closed',
  [MarketEventType.REVIEW_PUBLISHED]: 'published',
};

/**
 * The `market` push of an outbox event, and who gets it; undefined for events that are no
 * marketplace event or concern nobody by name (`job.posted` goes to job boards instead). Only ids,
 * a state and a version are copied: payloads may grow fields that must not leave the server.
 */
export function marketPushOf(
  event: Pick<OutboxEventRow, 'id' | 'type' | 'payload' | 'created_at'>,
): { userIds: UserId[]; event: MarketEventPayload } | undefined {
  if (!isMarketplaceEvent(event.type)) return undefined;
  const userIds = liveRecipients(event.payload);
  if (userIds.length === 0) return undefined;
  const { payload } = event;
  const jobId = JobId.safeParse(payload.jobId);
  const bidId = BidId.safeParse(payload.bidId);
  const contractId = ContractId.safeParse(payload.contractId);
  const reviewId = ReviewId.safeParse(payload.reviewId);
  const state =
    event.type.startsWith(CONTRACT_EVENT_PREFIX) && typeof payload.state === 'string'
      ? payload.state
      : IMPLIED_STATE[event.type];
  const version = payload.version;
  return {
    userIds,
    event: {
      id: event.id,
      type: event.type,
      ...(jobId.success ? { jobId: jobId.data } : {}),
      ...(bidId.success ? { bidId: bidId.data } : {}),
      ...(contractId.success ? { contractId: contractId.data } : {}),
      ...(reviewId.success ? { reviewId: reviewId.data } : {}),
      ...(state === undefined ? {} : { state }),
      ...(Number.isSafeInteger(version) && (version as number) >= 0 ? { version: version as number } : {}),
      at: event.created_at.toISOString(),
    },
  };
}

/** A job row as its job-board summary. */
function jobSummary(row: JobRow): JobPostedPayload {
  return {
    id: row.id,
    title: row.title,
    categoryId: row.category_id,
    skills: row.skills,
    // Exact: amounts are at most 2^53 − 1 (rules.ts MAX_AMOUNT).
    budget: { kind: row.budget_kind, amount: Number(row.budget_amount), currency: row.currency },
    remote: row.remote,
    location: row.location,
    hirerId: row.hirer_id,
    createdAt: row.created_at.toISOString(),
  };
}

export interface LiveDeps {
  readonly db: Kysely<Database>;
  readonly bus: Pick<Bus, 'publish'>;
  readonly log: Pick<Logger, 'warn' | 'error'>;
}

/**
 * Announces the live pushes of committed events. Never throws: a failed read or publish, or an event
 * whose payload cannot be read, is logged and the rest go on (the events stay published; their
 * tasks are not affected).
 */
export async function announceLive(deps: LiveDeps, events: readonly OutboxEventRow[]): Promise<void> {
  const publish = async <P>(topic: Topic<P>, payload: P, eventId: string) => {
    try {
      await deps.bus.publish(topic, payload);
    } catch (error) {
      deps.log.warn({ err: error, eventId, topic: topic.name }, 'live marketplace push not announced');
    }
  };
  const posted: JobId[] = [];
  for (const event of events) {
    // One event at a time: a payload no push can be made of (`null`, an operator's insert, a bug)
    // loses its own pushes only, never those of the events after it in the batch.
    try {
      if (event.type === MarketplaceEvent.jobPosted) {
        const jobId = JobId.safeParse(event.payload.jobId);
        if (jobId.success) posted.push(jobId.data);
      }
      const push = marketPushOf(event);
      if (push !== undefined) await publish(MARKET_EVENT_TOPIC, push, event.id);
      if (event.type.startsWith(CONTRACT_EVENT_PREFIX)) await pushContractRoomMessage(deps, event);
    } catch (error) {
      deps.log.error(
        { err: error, eventId: event.id, event: event.type },
        'live push of an outbox event not made: its payload could not be read',
      );
    }
  }
  let jobs: JobPostedPayload[];
  try {
    // Read after the commit: a job closed meanwhile is no longer news.
    jobs = (await findOpenJobs(deps.db, posted)).map(jobSummary);
  } catch (error) {
    deps.log.warn({ err: error, jobs: posted.length }, 'posted jobs not read; job boards miss them');
    return;
  }
  for (const job of jobs) await publish(JOB_POSTED_TOPIC, { job }, job.id);
}

/**
 * The room message a contract transition stored, pushed to its room. Read after the relay's commit
 * through the pool: inside the relay's transaction this read would wait for a second connection,
 * which the embedded database (one connection) never has.
 */
async function pushContractRoomMessage(deps: LiveDeps, event: OutboxEventRow): Promise<void> {
  const roomId = RoomId.safeParse(event.payload.roomId);
  const seq = event.payload.roomSeq;
  if (!roomId.success || typeof seq !== 'number' || !Number.isSafeInteger(seq)) return;
  try {
    const [row] = await messagesAfter(deps.db, roomId.data, seq - 1, 1);
    if (row === undefined || row.seq !== seq) return;
    await deps.bus.publish(roomTopic(roomId.data), { frame: { t: 'room.message', d: toRoomMessage(row) } });
  } catch (error) {
    deps.log.warn({ err: error, roomId: roomId.data, seq }, 'contract room message not pushed');
  }
}
