import { type Kysely, sql } from 'kysely';

/**
 * The marketplace (issue 12): categories (seeded), jobs, bids, contracts with their transition log,
 * double-blind reviews and per-user rating sums. What must never break is enforced here, so a bug
 * above cannot break it:
 * - one live bid (pending or accepted) per worker per job — partial unique index;
 * - one contract per job and per bid — unique keys (two concurrent accepts: one wins, one 23505);
 * - a contract's transitions are numbered by the version they produced, once each;
 * - one review per author per contract; ratings 1–5, text ≤ 2000.
 * Money is integer minor units in `bigint` (as the ledger). Jobs carry a `search_vector` maintained
 * by a trigger (weights: title A, skills B, description C), searched through a GIN index; the
 * trigger (not a generated column) because array_to_string is only STABLE.
 *
 * Statements run one by one: PGlite's query path takes a single statement per call.
 */
const statements: readonly string[] = [
  `create table categories (
     id uuid primary key default gen_random_uuid(),
     slug text not null unique check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' and char_length(slug) <= 64),
     name text not null check (char_length(name) between 1 and 100),
     created_at timestamptz not null default now(),
     updated_at timestamptz not null default now()
   )`,
  `insert into categories (slug, name) values
     ('software-development', 'Software development'),
     ('design', 'Design'),
     ('writing', 'Writing'),
     ('translation', 'Translation'),
     ('marketing', 'Marketing'),
     ('data', 'Data and analytics'),
     ('video-audio', 'Video and audio'),
     ('admin-support', 'Admin support'),
     ('home-services', 'Home services'),
     ('other', 'Other')`,

  `create table jobs (
     id uuid primary key default gen_random_uuid(),
     hirer_id uuid not null references users (id),
     category_id uuid not null references categories (id),
     title text not null check (char_length(title) between 1 and 200),
     description text not null check (char_length(description) between 1 and 20000),
     skills text[] not null default '{}' check (cardinality(skills) <= 30),
     budget_kind text not null check (budget_kind in ('fixed', 'hourly')),
     budget_amount bigint not null check (budget_amount > 0),
     currency text not null check (currency ~ '^[A-Z]{3}$'),
     location text check (char_length(location) <= 200),
     remote boolean not null default false,
     deadline timestamptz,
     status text not null default 'open'
       check (status in ('open', 'in_progress', 'completed', 'cancelled', 'closed')),
     search_vector tsvector not null default ''::tsvector,
     -- Bumped by every change: PATCH and status changes compare it (optimistic concurrency).
     version integer not null default 0,
     created_at timestamptz not null default now(),
     updated_at timestamptz not null default now(),
     closed_at timestamptz
   )`,
  `create function jobs_search_vector() returns trigger language plpgsql as $$
   begin
     new.search_vector :=
       setweight(to_tsvector('english', coalesce(new.title, '')), 'A') ||
       setweight(to_tsvector('english', array_to_string(new.skills, ' ')), 'B') ||
       setweight(to_tsvector('english', coalesce(new.description, '')), 'C');
     return new;
   end $$`,
  `create trigger jobs_search_vector before insert or update of title, description, skills on jobs
     for each row execute function jobs_search_vector()`,
  'create index jobs_search_idx on jobs using gin (search_vector)',
  'create index jobs_skills_idx on jobs using gin (skills)',
  // Newest first within a status (the default listing: open jobs), and within a category.
  'create index jobs_status_created_idx on jobs (status, created_at desc, id desc)',
  'create index jobs_category_created_idx on jobs (category_id, status, created_at desc, id desc)',
  'create index jobs_hirer_created_idx on jobs (hirer_id, created_at desc, id desc)',

  `create table bids (
     id uuid primary key default gen_random_uuid(),
     job_id uuid not null references jobs (id),
     worker_id uuid not null references users (id),
     amount bigint not null check (amount > 0),
     delivery_days integer not null check (delivery_days between 1 and 365),
     cover_letter text not null check (char_length(cover_letter) <= 5000),
     status text not null default 'pending' check (status in ('pending', 'accepted', 'rejected', 'withdrawn')),
     version integer not null default 0,
     created_at timestamptz not null default now(),
     updated_at timestamptz not null default now(),
     decided_at timestamptz
   )`,
  // One live bid per worker per job; a withdrawn or rejected one no longer counts.
  `create unique index bids_one_live_key on bids (job_id, worker_id) where status in ('pending', 'accepted')`,
  'create index bids_job_created_idx on bids (job_id, created_at desc, id desc)',
  'create index bids_worker_created_idx on bids (worker_id, created_at desc, id desc)',

  `create table contracts (
     id uuid primary key default gen_random_uuid(),
     job_id uuid not null unique references jobs (id),
     bid_id uuid not null unique references bids (id),
     hirer_id uuid not null references users (id),
     worker_id uuid not null references users (id),
     -- The terms as accepted (a snapshot: later edits of the job or bid do not change them).
     title text not null,
     amount bigint not null check (amount > 0),
     currency text not null check (currency ~ '^[A-Z]{3}$'),
     delivery_days integer not null check (delivery_days between 1 and 365),
     state text not null default 'active'
       check (state in ('active', 'delivered', 'completed', 'cancelled', 'disputed', 'resolved')),
     -- Number of transitions applied; a transition updates "where version = $seen" (optimistic).
     version integer not null default 0,
     deliveries integer not null default 0,
     room_id uuid references rooms (id) on delete set null,
     due_at timestamptz not null,
     delivered_at timestamptz,
     auto_approve_at timestamptz,
     completed_at timestamptz,
     cancelled_at timestamptz,
     disputed_at timestamptz,
     resolved_at timestamptz,
     review_deadline_at timestamptz,
     created_at timestamptz not null default now(),
     updated_at timestamptz not null default now(),
     constraint contracts_parties_differ check (hirer_id <> worker_id)
   )`,
  'create index contracts_hirer_created_idx on contracts (hirer_id, created_at desc, id desc)',
  'create index contracts_worker_created_idx on contracts (worker_id, created_at desc, id desc)',

  `create table contract_transitions (
     id uuid primary key default gen_random_uuid(),
     contract_id uuid not null references contracts (id),
     -- The contract version this transition produced: the log's order, one row per version.
     version integer not null,
     event text not null,
     from_state text,
     to_state text not null,
     actor_kind text not null check (actor_kind in ('hirer', 'worker', 'admin', 'timer')),
     actor_id uuid references users (id),
     payload jsonb not null default '{}'::jsonb,
     created_at timestamptz not null default now(),
     constraint contract_transitions_version_key unique (contract_id, version)
   )`,

  `create table reviews (
     id uuid primary key default gen_random_uuid(),
     contract_id uuid not null references contracts (id),
     author_id uuid not null references users (id),
     subject_id uuid not null references users (id),
     rating smallint not null check (rating between 1 and 5),
     text text not null default '' check (char_length(text) <= 2000),
     created_at timestamptz not null default now(),
     -- Double-blind: null until both parties reviewed or the window closed.
     published_at timestamptz,
     hidden_at timestamptz,
     hidden_by uuid references users (id),
     hidden_reason text,
     constraint reviews_one_per_author_key unique (contract_id, author_id),
     constraint reviews_not_self check (author_id <> subject_id),
     constraint reviews_hidden_reason check ((hidden_at is null) = (hidden_reason is null))
   )`,
  `create index reviews_subject_published_idx on reviews (subject_id, published_at desc, id desc)
     where published_at is not null and hidden_at is null`,

  // Summary of published, visible reviews per user, updated once per published review (O(1)).
  `create table user_ratings (
     user_id uuid primary key references users (id) on delete cascade,
     rating_count integer not null default 0 check (rating_count >= 0),
     rating_sum integer not null default 0 check (rating_sum >= 0),
     updated_at timestamptz not null default now()
   )`,
];

// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'user_ratings',
    'reviews',
    'contract_transitions',
    'contracts',
    'bids',
    'jobs',
    'categories',
  ]) {
    await sql.raw(`drop table if exists ${table}`).execute(db);
  }
  await sql.raw('drop function if exists jobs_search_vector()').execute(db);
}
