/**
 * Retention: rows whose purpose has passed are deleted on a schedule, so tables that grow with every
 * request (the outbox, idempotency keys, mail, email tokens, refresh tokens and sessions) stay
 * bounded. What is kept, and why:
 * - published outbox events: 7 days (the relay and its tasks are done with them within minutes;
 *   the rest is for an operator following a trace id);
 * - idempotency keys: 48 h (a key is honoured for 24 h, PROTOCOL.md; a reuse after that is new);
 * - email tokens: a day past their expiry (expired, they open nothing);
 * - mail: 30 days once settled (sent, failed, kept in the outbox); a pending mail is never deleted;
 * - refresh tokens: a day past their expiry (expired, they are refused; gone, they are refused the
 *   same way, but a spent one presented again then no longer revokes its session);
 * - the sealed successor pair of a spent refresh token: an hour after the spend (it is handed out
 *   again only within the reuse grace, at most 60 s; later a spent token is reuse either way);
 * - sessions: 90 days after they ended (absolute expiry or revocation), so new-login notices still
 *   know the devices of those months; each user's newest session is kept, or a user whose sessions
 *   had all gone would get no notice at all for the next login from an unknown device.
 * The ledger, contracts, messages and notifications are records, never pruned here.
 *
 * Deletes go in batches of BATCH rows (each a short statement that finds its rows through the
 * indexes of migrations 0014 and 0015), and a run stops after MAX_BATCHES per table (a million rows) so a
 * first run over years of rows cannot hold a worker for long; the next run goes on. Refresh tokens
 * are pruned before sessions, so a session's delete rarely has tokens left to cascade to.
 * Every worker process runs it: the deletes are idempotent, and two at once only split the work.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database.js';
import {
  clearSpentRefreshSuccessors,
  pruneEndedSessions,
  pruneExpiredEmailTokens,
  pruneExpiredRefreshTokens,
  pruneIdempotencyKeys,
  prunePublishedOutboxEvents,
  pruneSettledEmails,
} from '../../db/repositories/retention.repo.js';
import type { Logger } from '../../platform/logger.js';
import type { CancelTimer, Timers } from '../../platform/timers.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const BATCH = 5_000;
const MAX_BATCHES = 200;
/** The first run comes soon after start (a fleet restarted more often than hourly still prunes). */
const FIRST_RUN_MS = 60_000;

/**
 * How long each kind of row is kept, in milliseconds (from its creation, expiry, spend or end, as
 * the header says). Runs in this order: expired refresh tokens first (their successors need no
 * clearing), and before the sessions they would cascade from.
 */
export const RETENTION = {
  publishedOutboxEvents: 7 * DAY_MS,
  idempotencyKeys: 48 * HOUR_MS,
  expiredEmailTokens: DAY_MS,
  settledEmails: 30 * DAY_MS,
  expiredRefreshTokens: DAY_MS,
  // MUST stay above REFRESH_REUSE_GRACE_S (at most 60 s, src/config): within it the pair is needed.
  spentRefreshSuccessors: HOUR_MS,
  // MUST stay above the longest access token lifetime (a day): pruneEndedSessions relies on it.
  endedSessions: 90 * DAY_MS,
} as const;

/** Rows deleted (successors: cleared) per kind by one pass. */
export type RetentionReport = Record<keyof typeof RETENTION, number>;

type Prune = (db: Kysely<Database>, before: Date, limit: number) => Promise<number>;

const PRUNES: Record<keyof typeof RETENTION, Prune> = {
  publishedOutboxEvents: prunePublishedOutboxEvents,
  idempotencyKeys: pruneIdempotencyKeys,
  expiredEmailTokens: pruneExpiredEmailTokens,
  settledEmails: pruneSettledEmails,
  expiredRefreshTokens: pruneExpiredRefreshTokens,
  spentRefreshSuccessors: clearSpentRefreshSuccessors,
  // Its own transaction per batch: the revocation rows its deletes fire are removed before commit.
  endedSessions: (db, before, limit) =>
    db.transaction().execute((trx) => pruneEndedSessions(trx, before, limit)),
};

/** One pass over every table: deletes what is older than its retention at `now`. */
export async function pruneExpiredRows(db: Kysely<Database>, now: Date): Promise<RetentionReport> {
  const report = {} as Record<keyof typeof RETENTION, number>;
  for (const [kind, keepMs] of Object.entries(RETENTION) as [keyof typeof RETENTION, number][]) {
    const before = new Date(now.getTime() - keepMs);
    let total = 0;
    for (let batch = 0; batch < MAX_BATCHES; batch++) {
      const count = await PRUNES[kind](db, before, BATCH);
      total += count;
      if (count < BATCH) break;
    }
    report[kind] = total;
  }
  return report;
}

/**
 * Runs `pruneExpiredRows` a minute after start, then every `intervalMs`. A failed run is logged;
 * the next one retries.
 */
export function startRetention(deps: {
  readonly db: Kysely<Database>;
  readonly timers: Timers;
  readonly log: Pick<Logger, 'info' | 'warn'>;
  readonly intervalMs: number;
}): { readonly stop: () => Promise<void> } {
  let cancel: CancelTimer | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const run = async () => {
    try {
      const report = await pruneExpiredRows(deps.db, new Date(deps.timers.now()));
      if (Object.values(report).some((count) => count > 0))
        deps.log.info({ deleted: report }, 'expired rows pruned');
    } catch (error) {
      deps.log.warn({ err: error }, 'pruning expired rows failed; the next run retries');
    }
  };
  const schedule = (delayMs: number) => {
    if (stopped) return;
    cancel = deps.timers.schedule(delayMs, () => {
      running = run().finally(() => {
        running = undefined;
        schedule(deps.intervalMs);
      });
    });
  };
  schedule(Math.min(FIRST_RUN_MS, deps.intervalMs));
  return {
    stop: async () => {
      stopped = true;
      cancel?.();
      await running;
    },
  };
}
