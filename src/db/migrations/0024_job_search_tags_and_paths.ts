import { type Kysely, sql } from 'kysely';

/**
 * Words of a job that its search vector lost, so that no search found the job by them.
 * PostgreSQL's text-search parser reads `<word …>` as an XML/HTML tag and drops it whole, attributes
 * and all (`List<String>`, `a <canvas> game`, `x<y and the python library z>w`), and a word pair
 * joined by `/` as one file path with no parts (`React/Redux`, `UI/UX`, `CI/CD` were the tokens
 * `react/redux`, `ui/ux`, `ci/cd`): a search for `canvas`, `redux` or `ux` did not find them. The
 * vector now reads `<`, `>` and `/` as blanks (`translate`), and so does the search
 * (`jobs.repo.ts`, `searchJobs`), so `UI/UX` typed in the search box still finds them; no other
 * token changes. Jobs holding one of the three get their vector again (`set title = title` fires
 * the trigger; nothing else changes).
 *
 * Statements run one by one: PGlite's query path takes a single statement per call.
 */
const vectorOf = (blanks: boolean) => {
  const text = (expression: string) => (blanks ? `translate(${expression}, '<>/', '   ')` : expression);
  return `create or replace function jobs_search_vector() returns trigger language plpgsql as $$
   begin
     new.search_vector :=
       setweight(to_tsvector('english', ${text("coalesce(new.title, '')")}), 'A') ||
       setweight(to_tsvector('english', ${text("array_to_string(new.skills, ' ')")}), 'B') ||
       setweight(to_tsvector('english', ${text("coalesce(new.description, '')")}), 'C');
     return new;
   end $$`;
};

const holds = (column: string) => `${column} ~ '[<>/]'`;
const reindexJobsHoldingThem = `update jobs set title = title
  where ${holds('title')} or ${holds('description')} or ${holds("array_to_string(skills, ' ')")}`;

// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql.raw(vectorOf(true)).execute(db);
  await sql.raw(reindexJobsHoldingThem).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql.raw(vectorOf(false)).execute(db);
  await sql.raw(reindexJobsHoldingThem).execute(db);
}
