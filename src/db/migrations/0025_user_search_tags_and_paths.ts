import { type Kysely, sql } from 'kysely';

/**
 * Words of a profile that worker search could not find, as job search could not before 0024.
 * PostgreSQL's text-search parser reads `<word …>` as an XML/HTML tag and drops it whole
 * (`<canvas> games`), and a word pair joined by `/` as one file path with no parts (`UI/UX`,
 * `React/Redux` were the tokens `ui/ux`, `react/redux`): a search for `ux`, `canvas` or `redux` did
 * not find the profile. The search document (`users.repo.ts`, `searchDocumentOf`) now holds `<`, `>`
 * and `/` as blanks, and each searched word reads them so too (`prefixOperand`); the GIN index
 * `users_search_idx` is unchanged. Profiles holding one of the three get their document so
 * (`updated_at` unchanged: the profile itself is not).
 *
 * `down` leaves the documents as they are: which blanks were `/` is not known, and the older search
 * finds them by each word.
 */
// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`update users set search_document = translate(search_document, '<>/', '   ')
    where search_document ~ '[<>/]'`.execute(db);
}

export async function down(_db: Kysely<unknown>): Promise<void> {}
