/**
 * Categories and jobs (migration 0007). Plain functions over `db | trx`; the domain owns
 * transactions. Search is keyset-paginated and every filter is served by an index of 0007.
 */
import { type ExpressionBuilder, type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { CategoryId, JobId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../database.js';
import type { BudgetKind, CategoriesTable, JobStatus, JobsTable } from '../tables/marketplace.table.js';

type Db = Kysely<Database> | Transaction<Database>;
export type CategoryRow = Selectable<CategoriesTable>;
/** A job row without its search vector (never read by the code). */
export type JobRow = Omit<Selectable<JobsTable>, 'search_vector'>;

const JOB_COLUMNS = [
  'id',
  'hirer_id',
  'category_id',
  'title',
  'description',
  'skills',
  'budget_kind',
  'budget_amount',
  'currency',
  'location',
  'remote',
  'deadline',
  'status',
  'version',
  'created_at',
  'updated_at',
  'closed_at',
] as const;

export function listCategories(db: Db): Promise<CategoryRow[]> {
  return db.selectFrom('categories').selectAll().orderBy('name').execute();
}

export function findCategory(db: Db, id: CategoryId): Promise<CategoryRow | undefined> {
  return db.selectFrom('categories').selectAll().where('id', '=', id).executeTakeFirst();
}

export function findCategoryBySlug(db: Db, slug: string): Promise<CategoryRow | undefined> {
  return db.selectFrom('categories').selectAll().where('slug', '=', slug).executeTakeFirst();
}

export interface NewJob {
  readonly hirerId: UserId;
  readonly categoryId: CategoryId;
  readonly title: string;
  readonly description: string;
  readonly skills: readonly string[];
  readonly budgetKind: BudgetKind;
  readonly budgetAmount: bigint;
  readonly currency: string;
  readonly location: string | null;
  readonly remote: boolean;
  readonly deadline: Date | null;
  readonly now: Date;
}

export function insertJob(db: Db, job: NewJob): Promise<JobRow> {
  return db
    .insertInto('jobs')
    .values({
      hirer_id: job.hirerId,
      category_id: job.categoryId,
      title: job.title,
      description: job.description,
      skills: [...job.skills],
      budget_kind: job.budgetKind,
      budget_amount: job.budgetAmount.toString(),
      currency: job.currency,
      location: job.location,
      remote: job.remote,
      deadline: job.deadline,
      created_at: job.now,
      updated_at: job.now,
      closed_at: null,
    })
    .returning(JOB_COLUMNS)
    .executeTakeFirstOrThrow();
}

export function findJob(db: Db, id: JobId): Promise<JobRow | undefined> {
  return db.selectFrom('jobs').select(JOB_COLUMNS).where('id', '=', id).executeTakeFirst();
}

/**
 * When the hirer of the job in the outer query was locked (null while not locked), as a scalar
 * subquery: PostgreSQL runs it per job row that passed the other filters, a lookup by primary key.
 * As `not exists (…)` the planner turned it into an anti-join that read all of `jobs` (a hash of
 * the locked users, a sequential scan of jobs) instead of walking a jobs index to the page's end.
 */
const hirerLockedAtOf = (eb: ExpressionBuilder<Database, 'jobs'>) =>
  eb.selectFrom('users').select('users.locked_at').whereRef('users.id', '=', 'jobs.hirer_id');

/** The job, with whether its hirer's account is locked (a job page hides such jobs), in one query. */
export function findJobWithHirerLock(
  db: Db,
  id: JobId,
): Promise<(JobRow & { readonly hirer_locked: boolean }) | undefined> {
  return db
    .selectFrom('jobs')
    .select(JOB_COLUMNS)
    .select((eb) => eb(hirerLockedAtOf(eb), 'is not', null).$castTo<boolean>().as('hirer_locked'))
    .where('id', '=', id)
    .executeTakeFirst();
}

/** Whether `userId` is a party (hirer or worker) of the contract on the job, if it has one. */
export async function isContractPartyOfJob(db: Db, jobId: JobId, userId: UserId): Promise<boolean> {
  const row = await db
    .selectFrom('contracts')
    .select('id')
    .where('job_id', '=', jobId)
    .where((eb) => eb.or([eb('hirer_id', '=', userId), eb('worker_id', '=', userId)]))
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Those of `ids` that are still open and whose hirer is not locked, oldest first (the live job board
 * reads a relay batch at once). A locked hirer's jobs are gone from the job search for everyone; an
 * open one can outlive the lock (a post that commits after the lock closed the hirer's jobs, or one
 * the relay reads before the lock's closing reached it), and was pushed to every job board anyway:
 * the locked spammer's last posts went out live to every watcher.
 */
export function findOpenJobs(db: Db, ids: readonly JobId[]): Promise<JobRow[]> {
  if (ids.length === 0) return Promise.resolve([]);
  return db
    .selectFrom('jobs')
    .select(JOB_COLUMNS)
    .where('id', 'in', ids)
    .where('status', '=', 'open')
    .where((eb) => eb(hirerLockedAtOf(eb), 'is', null))
    .orderBy('created_at')
    .execute();
}

/**
 * The job row locked for this transaction: `update` for status changes (close, accept), `share` for
 * bids, which may run side by side but must not pass a close or an accept that is committing.
 */
export function lockJob(
  trx: Transaction<Database>,
  id: JobId,
  mode: 'update' | 'share' = 'update',
): Promise<JobRow | undefined> {
  const query = trx.selectFrom('jobs').select(JOB_COLUMNS).where('id', '=', id);
  return (mode === 'update' ? query.forUpdate() : query.forShare()).executeTakeFirst();
}

export interface JobPatch {
  readonly categoryId?: CategoryId;
  readonly title?: string;
  readonly description?: string;
  readonly skills?: readonly string[];
  readonly budgetKind?: BudgetKind;
  readonly budgetAmount?: bigint;
  readonly location?: string | null;
  readonly remote?: boolean;
  readonly deadline?: Date | null;
}

/**
 * Applies `patch` if the job is still at `version` and in `status`; returns the new row, or
 * undefined when another change got there first (or the status moved on).
 */
export function updateJobIfVersion(
  db: Db,
  id: JobId,
  version: number,
  status: JobStatus,
  patch: JobPatch & { readonly status?: JobStatus; readonly closedAt?: Date },
  now: Date,
): Promise<JobRow | undefined> {
  return db
    .updateTable('jobs')
    .set({
      ...(patch.categoryId === undefined ? {} : { category_id: patch.categoryId }),
      ...(patch.title === undefined ? {} : { title: patch.title }),
      ...(patch.description === undefined ? {} : { description: patch.description }),
      ...(patch.skills === undefined ? {} : { skills: [...patch.skills] }),
      ...(patch.budgetKind === undefined ? {} : { budget_kind: patch.budgetKind }),
      ...(patch.budgetAmount === undefined ? {} : { budget_amount: patch.budgetAmount.toString() }),
      ...(patch.location === undefined ? {} : { location: patch.location }),
      ...(patch.remote === undefined ? {} : { remote: patch.remote }),
      ...(patch.deadline === undefined ? {} : { deadline: patch.deadline }),
      ...(patch.status === undefined ? {} : { status: patch.status }),
      ...(patch.closedAt === undefined ? {} : { closed_at: patch.closedAt }),
      version: sql<number>`version + 1`,
      updated_at: now,
    })
    .where('id', '=', id)
    .where('version', '=', version)
    .where('status', '=', status)
    .returning(JOB_COLUMNS)
    .executeTakeFirst();
}

/**
 * Moves the job from status `from` to `to` (bumping its version); does nothing when it is no longer
 * in `from`. For status changes driven by a contract, whatever the job's version.
 */
export async function setJobStatusIf(
  db: Db,
  id: JobId,
  from: JobStatus,
  to: JobStatus,
  now: Date,
): Promise<void> {
  await db
    .updateTable('jobs')
    .set({ status: to, version: sql<number>`version + 1`, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', from)
    .execute();
}

export type JobSort = 'newest' | 'relevance';

/** Where the previous page ended: (created_at, id) for newest, plus the rank for relevance. */
export interface JobCursor {
  readonly createdAt: string;
  readonly id: string;
  readonly rank?: number;
}

export interface JobSearch {
  /** Free text (title A, skills B, description C), parsed by websearch_to_tsquery: never a syntax error. */
  readonly text: string | undefined;
  readonly categoryId: CategoryId | undefined;
  /** Jobs asking for all of these skills. */
  readonly skills: readonly string[];
  readonly budgetMin: bigint | undefined;
  readonly budgetMax: bigint | undefined;
  readonly budgetKind: BudgetKind | undefined;
  readonly statuses: readonly JobStatus[];
  readonly remote: boolean | undefined;
  /** Case-insensitive substring of the location. */
  readonly location: string | undefined;
  readonly hirerId: UserId | undefined;
  readonly sort: JobSort;
  readonly after: JobCursor | undefined;
  readonly limit: number;
}

export type JobSearchRow = JobRow & { readonly rank: number };

/**
 * PostgreSQL's English stop words (tsearch_data/english.stop; PGlite ships the same file), which
 * websearch_to_tsquery('english', …) drops.
 */
const ENGLISH_STOP_WORDS = new Set(
  [
    'i me my myself we our ours ourselves you your yours yourself yourselves he him his himself ',
    'she her hers herself it its itself they them their theirs themselves what which who whom ',
    'this that these those am is are was were be been being have has had having do does did doing ',
    'a an the and but if or because as until while of at by for with about against between into ',
    'through during before after above below to from up down in out on off over under again ',
    'further then once here there when where why how all any both each few more most other some ',
    'such no nor not only own same so than too very s t can will just don should now',
  ]
    .join('')
    .split(' '),
);

/**
 * The search text as a tsquery. `<`, `>` and `/` read as blanks, as in the jobs' search vector
 * (migration 0024: the parser dropped `<word>` as a tag and made `UI/UX` one file-path token, so
 * `ux` found no UI/UX job); typed `UI/UX` is then `ui` and `ux`, as the vector holds it.
 */
const searchQuery = (text: string) => sql`websearch_to_tsquery('english', translate(${text}, '<>/', '   '))`;

/**
 * Whether `text` leaves any term to search for once websearch_to_tsquery has dropped stop words
 * ("the and") and syntax: with none, its query matches no job at all. A word outside the stop list
 * always leaves one, so PostgreSQL is asked (one round trip more) only for a text of stop words.
 */
export async function hasSearchTerms(db: Db, text: string): Promise<boolean> {
  // Cut where the parser cuts (C.UTF-8 and PGlite alike): letters, their marks, decimal digits and
  // letter numbers make words; "½", "²" or "①" (other numbers) are blanks to it. Cut only at
  // letters and digits, "½" was a word here and its search a tsquery of nothing that matched no
  // job; it now asks PostgreSQL, which finds no term in it: a search without text, as "the".
  const words = text.toLowerCase().split(/[^\p{L}\p{M}\p{Nd}\p{Nl}]+/u);
  if (words.some((word) => word !== '' && !ENGLISH_STOP_WORDS.has(word))) return true;
  const row = await sql<{ terms: number }>`select numnode(${searchQuery(text)}) as terms`
    .execute(db)
    .then((result) => result.rows[0]);
  return (row?.terms ?? 0) > 0;
}

/**
 * Up to `limit` jobs (the caller asks one more than a page, to know whether there is a next one),
 * newest first or by relevance (ts_rank, then newest). Relevance without text is newest. Jobs of
 * locked hirers are left out.
 */
export function searchJobs(db: Db, search: JobSearch): Promise<JobSearchRow[]> {
  const tsquery = search.text === undefined ? undefined : searchQuery(search.text);
  const rank =
    tsquery === undefined ? sql<number>`0::float8` : sql<number>`ts_rank(search_vector, ${tsquery})::float8`;
  let query = db.selectFrom('jobs').select(JOB_COLUMNS).select(rank.as('rank'));
  if (tsquery !== undefined) query = query.where(sql<boolean>`search_vector @@ ${tsquery}`);
  if (search.statuses.length > 0) query = query.where('status', 'in', [...search.statuses]);
  if (search.categoryId !== undefined) query = query.where('category_id', '=', search.categoryId);
  if (search.skills.length > 0) {
    query = query.where(sql<boolean>`skills @> ${sql.val([...search.skills])}::text[]`);
  }
  if (search.budgetKind !== undefined) query = query.where('budget_kind', '=', search.budgetKind);
  if (search.budgetMin !== undefined) query = query.where('budget_amount', '>=', search.budgetMin.toString());
  if (search.budgetMax !== undefined) query = query.where('budget_amount', '<=', search.budgetMax.toString());
  if (search.remote !== undefined) query = query.where('remote', '=', search.remote);
  if (search.hirerId !== undefined) query = query.where('hirer_id', '=', search.hirerId);
  // A locked hirer's jobs are gone with their profile (found by nobody, admins included).
  query = query.where((eb) => eb(hirerLockedAtOf(eb), 'is', null));
  if (search.location !== undefined) {
    const escaped = search.location.replace(/[\\%_]/g, (c) => `\\${c}`);
    query = query.where('location', 'ilike', `%${escaped}%`);
  }
  const byRank = search.sort === 'relevance' && tsquery !== undefined;
  if (search.after !== undefined) {
    const { createdAt, id } = search.after;
    query = byRank
      ? query.where(
          sql<boolean>`(${rank}, created_at, id) < (${search.after.rank ?? 0}::float8, ${createdAt}::timestamptz, ${id}::uuid)`,
        )
      : query.where(sql<boolean>`(created_at, id) < (${createdAt}::timestamptz, ${id}::uuid)`);
  }
  if (byRank) query = query.orderBy(rank, 'desc');
  return query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(search.limit).execute();
}

/** Bids that count on a job's page: every bid but withdrawn ones. */
export async function countBidsOfJob(db: Db, jobId: JobId): Promise<number> {
  const row = await db
    .selectFrom('bids')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where('job_id', '=', jobId)
    .where('status', '<>', 'withdrawn')
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

/** Ids of a hirer's open jobs (an account being locked closes them). */
export async function openJobIdsOf(db: Db, hirerId: UserId): Promise<JobId[]> {
  const rows = await db
    .selectFrom('jobs')
    .select('id')
    .where('hirer_id', '=', hirerId)
    .where('status', '=', 'open')
    .execute();
  return rows.map((row) => row.id as JobId);
}

/** How many open jobs a hirer has (the cap on posting; read through `jobs_hirer_created_idx`). */
export async function countOpenJobsOf(db: Db, hirerId: UserId): Promise<number> {
  const row = await db
    .selectFrom('jobs')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('hirer_id', '=', hirerId)
    .where('status', '=', 'open')
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/**
 * The poster's user row FOR NO KEY UPDATE, answering its `locked_at` (undefined: no such user).
 * Two posts of one hirer take turns here, so the open-jobs cap counts each other's job; an admin's
 * lock (an UPDATE of the row) waits for the post as it did for the FOR SHARE read before.
 */
export async function lockPoster(
  trx: Transaction<Database>,
  hirerId: UserId,
): Promise<Date | null | undefined> {
  const row = await trx
    .selectFrom('users')
    .select('locked_at')
    .where('id', '=', hirerId)
    .forNoKeyUpdate()
    .executeTakeFirst();
  return row === undefined ? undefined : row.locked_at;
}
