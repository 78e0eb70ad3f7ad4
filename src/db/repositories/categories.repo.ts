/**
 * Category changes by admins (issue 12 §1). Reads live in jobs.repo.ts (listCategories,
 * findCategory, findCategoryBySlug). A taken slug fails on the unique key `categories_slug_key`.
 */
import type { Kysely, Transaction } from 'kysely';
import type { CategoryId } from '../../../protocol/src/ids.js';
import type { Database } from '../database.js';
import type { CategoryRow } from './jobs.repo.js';

type Db = Kysely<Database> | Transaction<Database>;

export const CATEGORY_SLUG_KEY = 'categories_slug_key';

export function insertCategory(
  db: Db,
  category: { slug: string; name: string; now: Date },
): Promise<CategoryRow> {
  return db
    .insertInto('categories')
    .values({ slug: category.slug, name: category.name, created_at: category.now, updated_at: category.now })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Returns the changed row, or undefined when there is no such category. */
export function updateCategory(
  db: Db,
  id: CategoryId,
  patch: { readonly slug?: string; readonly name?: string },
  now: Date,
): Promise<CategoryRow | undefined> {
  return db
    .updateTable('categories')
    .set({
      ...(patch.slug === undefined ? {} : { slug: patch.slug }),
      ...(patch.name === undefined ? {} : { name: patch.name }),
      updated_at: now,
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}
