/**
 * Jobs and categories (issue 12 §1), as plain functions taking their ports (`MarketplaceDeps`).
 * A change and the outbox event it causes are written in one transaction; status changes and
 * PATCHes compare the row's version (optimistic), so two concurrent edits cannot both win silently.
 */
import type { Kysely, Transaction } from 'kysely';
import type { CategoryId, JobId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import { rejectPendingBids } from '../../db/repositories/bids.repo.js';
import {
  type CategoryRow,
  countBidsOfJob,
  countOpenJobsOf,
  findCategory,
  findJobWithHirerLock,
  hasSearchTerms,
  insertJob,
  isContractPartyOfJob,
  type JobCursor,
  type JobPatch,
  type JobRow,
  type JobSort,
  listCategories,
  lockJob,
  lockPoster,
  searchJobs as searchJobRows,
  updateJobIfVersion,
} from '../../db/repositories/jobs.repo.js';
import { insertOutboxEvent } from '../../db/repositories/outbox.repo.js';
import type { BudgetKind, JobStatus } from '../../db/tables/marketplace.table.js';
import type { Clock } from '../../platform/clock.js';
import { AppError } from '../../platform/errors.js';
import { decodeCursor, encodeCursor } from '../pagination.js';
import { MarketplaceEvent } from './events.js';
import {
  type Actor,
  canChangeJob,
  checkAmount,
  checkCurrency,
  checkDeadline,
  checkSkills,
  normalizeSkills,
  requireRole,
} from './rules.js';

/** Open jobs one hirer may have at once (409 CONFLICT `JOB_LIMIT` on posting one more). */
export const MAX_OPEN_JOBS_PER_HIRER = 200;

export interface MarketplaceSettings {
  /** The platform currency (CURRENCY): jobs are priced in it, escrow holds it. */
  readonly currency: string;
}

export interface MarketplaceDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly settings: MarketplaceSettings;
}

export { MarketplaceEvent } from './events.js';

export interface Budget {
  readonly kind: BudgetKind;
  /** Minor units. */
  readonly amount: bigint;
  readonly currency: string;
}

export interface Job {
  readonly id: JobId;
  readonly hirerId: UserId;
  readonly categoryId: CategoryId;
  readonly title: string;
  readonly description: string;
  readonly skills: readonly string[];
  readonly budget: Budget;
  readonly location: string | null;
  readonly remote: boolean;
  readonly deadline: Date | null;
  readonly status: JobStatus;
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly closedAt: Date | null;
}

export interface Category {
  readonly id: CategoryId;
  readonly slug: string;
  readonly name: string;
}

export const toJob = (row: JobRow): Job => ({
  id: row.id,
  hirerId: row.hirer_id,
  categoryId: row.category_id,
  title: row.title,
  description: row.description,
  skills: row.skills,
  budget: { kind: row.budget_kind, amount: BigInt(row.budget_amount), currency: row.currency },
  location: row.location,
  remote: row.remote,
  deadline: row.deadline,
  status: row.status,
  version: row.version,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  closedAt: row.closed_at,
});

const toCategory = (row: CategoryRow): Category => ({ id: row.id, slug: row.slug, name: row.name });

const orThrow = (error: AppError | null): void => {
  if (error !== null) throw error;
};

export async function categories(deps: Pick<MarketplaceDeps, 'db'>): Promise<Category[]> {
  return (await listCategories(deps.db)).map(toCategory);
}

export interface JobInput {
  readonly categoryId: CategoryId;
  readonly title: string;
  readonly description: string;
  readonly skills: readonly string[];
  readonly budget: Budget;
  readonly location?: string | null;
  readonly remote: boolean;
  readonly deadline?: Date | null;
}

async function requireCategory(db: Kysely<Database> | Transaction<Database>, id: CategoryId): Promise<void> {
  if ((await findCategory(db, id)) === undefined) {
    throw new AppError('VALIDATION_FAILED', 'unknown category', {
      details: { errors: [{ path: 'body.categoryId', message: 'is not a category' }] },
    });
  }
}

/** POST /v1/jobs: a hirer posts an open job; `job.posted` is written with it. */
export async function createJob(deps: MarketplaceDeps, actor: Actor, input: JobInput): Promise<Job> {
  return deps.db.transaction().execute((trx) => createJobIn(trx, deps, actor, input));
}

/** `createJob` inside the caller's transaction (the REST edge's optional Idempotency-Key transaction). */
export async function createJobIn(
  trx: Transaction<Database>,
  deps: Pick<MarketplaceDeps, 'clock' | 'settings'>,
  actor: Actor,
  input: JobInput,
): Promise<Job> {
  orThrow(requireRole(actor, 'hirer', 'post a job'));
  const now = deps.clock.now();
  const skills = normalizeSkills(input.skills);
  orThrow(checkSkills(skills));
  orThrow(checkAmount(input.budget.amount, 'body.budget.amount'));
  orThrow(checkCurrency(input.budget.currency, deps.settings.currency));
  orThrow(checkDeadline(input.deadline ?? null, now));
  await requireCategory(trx, input.categoryId);
  // The poster's row locked: an admin's lock (an UPDATE of it) waits for this post, and the
  // retirement that follows the lock closes the job; or this post sees the lock and is refused. A
  // post authenticated just before the lock no longer commits an open job of a locked hirer. Two
  // posts of one hirer take turns on it, so each counts the other's job against the cap.
  if ((await lockPoster(trx, actor.userId)) !== null) {
    throw new AppError('UNAUTHORIZED', 'this account is locked');
  }
  // Every open job is listed on the board, searched and pushed to its watchers: a hirer (or a
  // script with a hirer's token) posting without end would bury everyone else's jobs.
  if ((await countOpenJobsOf(trx, actor.userId)) >= MAX_OPEN_JOBS_PER_HIRER) {
    throw new AppError(
      'CONFLICT',
      `at most ${MAX_OPEN_JOBS_PER_HIRER} open jobs per hirer: close or fill one to post another`,
      { details: { reason: 'JOB_LIMIT', limit: MAX_OPEN_JOBS_PER_HIRER } },
    );
  }
  const row = await insertJob(trx, {
    hirerId: actor.userId,
    categoryId: input.categoryId,
    title: input.title.trim(),
    description: input.description,
    skills,
    budgetKind: input.budget.kind,
    budgetAmount: input.budget.amount,
    currency: input.budget.currency,
    location: input.location?.trim() || null,
    remote: input.remote,
    deadline: input.deadline ?? null,
    now,
  });
  await insertOutboxEvent(trx, MarketplaceEvent.jobPosted, {
    jobId: row.id,
    hirerId: row.hirer_id,
    categoryId: row.category_id,
    skills: row.skills,
    // Pushed to the watchers of matching job boards (jobs.watch), not to named users.
    notify: [],
  });
  return toJob(row);
}

export type JobUpdate = Partial<Omit<JobInput, 'budget'>> & {
  readonly budget?: Partial<Omit<Budget, 'currency'>> & { readonly currency?: string };
};

/**
 * Only the job's hirer changes it (canChangeJob). Anyone else is refused as `visibleJobRow` answers
 * them first: a job hidden from them is NOT_FOUND as an unknown id, where FORBIDDEN would tell them
 * it exists.
 */
async function checkCanChange(
  trx: Transaction<Database>,
  job: JobRow,
  actor: Actor,
  doing: 'change' | 'close',
): Promise<void> {
  if (job.hirer_id !== actor.userId) await visibleJobRow({ db: trx }, actor, job.id);
  orThrow(canChangeJob(job, actor, doing));
}

/**
 * PATCH /v1/jobs/:id: the owner, while open. `expectedVersion` (If-Match) makes a stale edit a
 * CONFLICT; without it the version read here is the one compared.
 */
export async function updateJob(
  deps: MarketplaceDeps,
  actor: Actor,
  jobId: JobId,
  update: JobUpdate,
  expectedVersion?: number,
): Promise<Job> {
  const now = deps.clock.now();
  const patch: { -readonly [K in keyof JobPatch]: JobPatch[K] } = {};
  if (update.title !== undefined) patch.title = update.title.trim();
  if (update.description !== undefined) patch.description = update.description;
  if (update.categoryId !== undefined) patch.categoryId = update.categoryId;
  if (update.skills !== undefined) {
    patch.skills = normalizeSkills(update.skills);
    orThrow(checkSkills(patch.skills));
  }
  if (update.budget?.kind !== undefined) patch.budgetKind = update.budget.kind;
  if (update.budget?.amount !== undefined) {
    orThrow(checkAmount(update.budget.amount, 'body.budget.amount'));
    patch.budgetAmount = update.budget.amount;
  }
  if (update.budget?.currency !== undefined)
    orThrow(checkCurrency(update.budget.currency, deps.settings.currency));
  if (update.location !== undefined) patch.location = update.location?.trim() || null;
  if (update.remote !== undefined) patch.remote = update.remote;
  if (update.deadline !== undefined) patch.deadline = update.deadline;
  return deps.db.transaction().execute(async (trx) => {
    // Locked: two edits without If-Match take turns and both apply. Read unlocked, the second one's
    // conditional write found the version moved and answered 409 to a client that asked for no check.
    const job = await lockJob(trx, jobId, 'update');
    if (job === undefined) throw new AppError('NOT_FOUND', 'no such job');
    await checkCanChange(trx, job, actor, 'change');
    if (expectedVersion !== undefined && expectedVersion !== job.version) {
      throw new AppError('CONFLICT', 'the job has changed since it was read', {
        details: { reason: 'VERSION_MISMATCH', version: job.version },
      });
    }
    // Nothing to change (`{}`, `{"budget": {}}`, or the values the job has: a form sent whole, a
    // retry after a lost answer): the job as it is. Writing it anyway bumped its version, so every
    // other editor's If-Match went stale (409) over an edit that changed nothing.
    const changes = changedJobFields(patch, job);
    if (Object.keys(changes).length === 0) return toJob(job);
    // Only a new deadline must be in the future: a form sent whole with the deadline it had (now
    // passed) changes the rest.
    if (changes.deadline !== undefined) orThrow(checkDeadline(changes.deadline, now));
    if (changes.categoryId !== undefined) await requireCategory(trx, changes.categoryId);
    const row = await updateJobIfVersion(trx, jobId, job.version, 'open', changes, now);
    if (row === undefined) {
      throw new AppError('CONFLICT', 'the job changed while it was being updated', {
        details: { reason: 'VERSION_MISMATCH' },
      });
    }
    return toJob(row);
  });
}

/** The fields of `patch` whose value differs from the job's (an edit to the same value is none). */
function changedJobFields(patch: JobPatch, job: JobRow): JobPatch {
  const changes: { -readonly [K in keyof JobPatch]: JobPatch[K] } = {};
  if (patch.title !== undefined && patch.title !== job.title) changes.title = patch.title;
  if (patch.description !== undefined && patch.description !== job.description) {
    changes.description = patch.description;
  }
  if (patch.categoryId !== undefined && patch.categoryId !== job.category_id) {
    changes.categoryId = patch.categoryId;
  }
  if (
    patch.skills !== undefined &&
    (patch.skills.length !== job.skills.length || patch.skills.some((skill, i) => skill !== job.skills[i]))
  ) {
    changes.skills = patch.skills;
  }
  if (patch.budgetKind !== undefined && patch.budgetKind !== job.budget_kind) {
    changes.budgetKind = patch.budgetKind;
  }
  if (patch.budgetAmount !== undefined && patch.budgetAmount !== BigInt(job.budget_amount)) {
    changes.budgetAmount = patch.budgetAmount;
  }
  if (patch.location !== undefined && patch.location !== job.location) changes.location = patch.location;
  if (patch.remote !== undefined && patch.remote !== job.remote) changes.remote = patch.remote;
  if (patch.deadline !== undefined && patch.deadline?.getTime() !== job.deadline?.getTime()) {
    changes.deadline = patch.deadline;
  }
  return changes;
}

/**
 * POST /v1/jobs/:id/close: the owner, while open (no hire): open → closed. Pending bids are
 * rejected with it (a `bid.rejected` event each), in the same transaction. `expectedVersion`
 * (If-Match, optional as on PATCH) refuses to close a job changed since it was read: CONFLICT
 * `VERSION_MISMATCH` with the current version, nothing changed.
 */
export async function closeJob(
  deps: MarketplaceDeps,
  actor: Actor,
  jobId: JobId,
  expectedVersion?: number,
): Promise<Job> {
  return deps.db.transaction().execute((trx) => closeJobIn(trx, deps, actor, jobId, expectedVersion));
}

/** `closeJob` inside the caller's transaction (the REST edge's optional Idempotency-Key transaction). */
export async function closeJobIn(
  trx: Transaction<Database>,
  deps: Pick<MarketplaceDeps, 'clock'>,
  actor: Actor,
  jobId: JobId,
  expectedVersion?: number,
): Promise<Job> {
  const now = deps.clock.now();
  // Locked: a bid being placed (FOR SHARE) or accepted waits for this, or this for it.
  const job = await lockJob(trx, jobId, 'update');
  if (job === undefined) throw new AppError('NOT_FOUND', 'no such job');
  await checkCanChange(trx, job, actor, 'close');
  if (expectedVersion !== undefined && expectedVersion !== job.version) {
    throw new AppError('CONFLICT', 'the job has changed since it was read', {
      details: { reason: 'VERSION_MISMATCH', version: job.version },
    });
  }
  const row = await updateJobIfVersion(
    trx,
    jobId,
    job.version,
    'open',
    { status: 'closed', closedAt: now },
    now,
  );
  if (row === undefined) throw new AppError('CONFLICT', 'the job changed while it was being closed');
  const rejected = await rejectPendingBids(trx, jobId, now);
  await insertOutboxEvent(trx, MarketplaceEvent.jobClosed, { jobId, hirerId: job.hirer_id, notify: [] });
  for (const bid of rejected) {
    await insertOutboxEvent(trx, MarketplaceEvent.bidRejected, {
      bidId: bid.id,
      jobId,
      workerId: bid.worker_id,
      reason: 'job_closed',
      notify: [bid.worker_id],
    });
  }
  return toJob(row);
}

export interface JobWithBidCount {
  readonly job: Job;
  /** Bids other than withdrawn ones. */
  readonly bidCount: number;
}

/**
 * The job row if `actor` may know the job exists, else NOT_FOUND exactly as for an unknown id. Jobs
 * are public: any signed-in user sees any job, except a locked hirer's, which is gone with their
 * profile for all but admins and the parties of the contract on it: the worker hired for it keeps
 * the job's page, the description of the work their contract is about (the contract itself holds
 * only the title). Every per-job read goes through this (the job, its bids), so none of them tells
 * a hidden job from an unknown one.
 */
export async function visibleJobRow(
  deps: Pick<MarketplaceDeps, 'db'>,
  actor: Actor,
  jobId: JobId,
): Promise<JobRow> {
  const job = await findJobWithHirerLock(deps.db, jobId);
  if (job === undefined) throw new AppError('NOT_FOUND', 'no such job');
  const { hirer_locked: hirerLocked, ...row } = job;
  if (
    hirerLocked &&
    !actor.roles.includes('admin') &&
    !(await isContractPartyOfJob(deps.db, jobId, actor.userId))
  ) {
    throw new AppError('NOT_FOUND', 'no such job');
  }
  return row;
}

/** GET /v1/jobs/:id: the job (to those `visibleJobRow` shows it to) with its bid count. Bids: `bids.ts`. */
export async function getJob(
  deps: Pick<MarketplaceDeps, 'db'>,
  actor: Actor,
  jobId: JobId,
): Promise<JobWithBidCount> {
  const row = await visibleJobRow(deps, actor, jobId);
  return { job: toJob(row), bidCount: await countBidsOfJob(deps.db, jobId) };
}

export interface JobQuery {
  readonly text?: string;
  readonly categoryId?: CategoryId;
  readonly skills?: readonly string[];
  readonly budgetMin?: bigint;
  readonly budgetMax?: bigint;
  readonly budgetKind?: BudgetKind;
  /** Default: open jobs only. */
  readonly statuses?: readonly JobStatus[];
  readonly remote?: boolean;
  readonly location?: string;
  readonly hirerId?: UserId;
  /** Default: relevance when there is text, newest otherwise. */
  readonly sort?: JobSort;
  readonly cursor?: string;
  /** 1–100, default 20. */
  readonly limit?: number;
}

export interface JobPage {
  readonly data: Job[];
  readonly nextCursor: string | null;
}

export const DEFAULT_JOB_PAGE = 20;
export const MAX_JOB_PAGE = 100;

/**
 * Relevance cursors carry the rank before the usual (created_at, id) cursor of pagination.ts:
 * `<rank>~<cursor>`. The rank is a float8 printed by JS, which parses back to the same double.
 */
function encodeRelevanceCursor(row: { rank: number; created_at: Date; id: string }): string {
  return `${row.rank}~${encodeCursor('jobs-by-relevance', row)}`;
}

function decodeJobCursor(cursor: string | undefined, sort: JobSort): JobCursor | undefined {
  if (cursor === undefined) return undefined;
  const cut = cursor.indexOf('~');
  // A cursor of the other order (the sort changed between pages) reaches the check of its list, so
  // the 400 says "a cursor of another list", not "not a cursor from this API".
  if (sort === 'newest') {
    if (cut < 0) return decodeCursor('jobs', cursor);
    decodeCursor('jobs', cursor.slice(cut + 1));
    return decodeCursor('jobs', '!');
  }
  const rank = cut > 0 ? Number(cursor.slice(0, cut)) : Number.NaN;
  // decodeCursor throws VALIDATION_FAILED for anything we did not make; the rank likewise.
  const base = decodeCursor('jobs-by-relevance', cut > 0 ? cursor.slice(cut + 1) : cursor);
  if (!Number.isFinite(rank) || rank < 0 || base === undefined) return decodeCursor('jobs-by-relevance', '!');
  return { ...base, rank };
}

/**
 * GET /v1/jobs: full text + filters, newest first or by relevance, keyset cursor pages. Jobs of
 * locked hirers are left out (for everyone: an admin reads one by id).
 */
export async function searchJobs(deps: Pick<MarketplaceDeps, 'db'>, query: JobQuery): Promise<JobPage> {
  // Stored text is NFC (protocol/src/rest/text.ts): a query typed decomposed ("e" + U+0301 for "é",
  // as some keyboards and pasted text send it) must match it too, in the full text and the location.
  let text = query.text?.normalize('NFC').trim() || undefined;
  // Only stop words ("the and") or syntax: a tsquery of nothing, which matched no job at all. It is
  // a search without text (every job the other filters let through, newest first).
  if (text !== undefined && !(await hasSearchTerms(deps.db, text))) text = undefined;
  const sort: JobSort = query.sort ?? (text === undefined ? 'newest' : 'relevance');
  const effectiveSort: JobSort = text === undefined ? 'newest' : sort;
  const limit = Math.min(Math.max(query.limit ?? DEFAULT_JOB_PAGE, 1), MAX_JOB_PAGE);
  if (query.budgetMin !== undefined && query.budgetMax !== undefined && query.budgetMin > query.budgetMax) {
    throw new AppError('VALIDATION_FAILED', 'budgetMin is above budgetMax', {
      details: { errors: [{ path: 'querystring.budgetMin', message: 'must not exceed budgetMax' }] },
    });
  }
  const rows = await searchJobRows(deps.db, {
    text,
    categoryId: query.categoryId,
    skills: normalizeSkills(query.skills ?? []),
    budgetMin: query.budgetMin,
    budgetMax: query.budgetMax,
    budgetKind: query.budgetKind,
    statuses: query.statuses ?? ['open'],
    remote: query.remote,
    location: query.location?.normalize('NFC').trim() || undefined,
    hirerId: query.hirerId,
    sort: effectiveSort,
    after: decodeJobCursor(query.cursor, effectiveSort),
    limit: limit + 1,
  });
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  const more = rows.length > limit && last !== undefined;
  return {
    data: page.map(toJob),
    nextCursor: !more
      ? null
      : effectiveSort === 'relevance'
        ? encodeRelevanceCursor(last)
        : encodeCursor('jobs', last),
  };
}
