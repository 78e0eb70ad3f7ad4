/**
 * Admins edit the job categories (issue 12 §1; the migration seeds ten). A category's id never
 * changes, so jobs keep theirs through a rename or a new slug. No deletion: jobs reference
 * categories, and a category in use cannot go.
 */
import type { CategoryId } from '../../../protocol/src/ids.js';
import { isUniqueViolation } from '../../db/errors.js';
import {
  CATEGORY_SLUG_KEY,
  insertCategory,
  updateCategory as updateCategoryRow,
} from '../../db/repositories/categories.repo.js';
import { AppError } from '../../platform/errors.js';
import type { Category, MarketplaceDeps } from './jobs.js';
import type { Actor } from './rules.js';

export interface CategoryInput {
  /** Lower case words joined by '-', ≤ 64 characters (the migration's CHECK; the edge validates). */
  readonly slug: string;
  /** 1–100 characters. */
  readonly name: string;
}

const requireAdmin = (actor: Actor): void => {
  if (!actor.roles.includes('admin')) throw new AppError('FORBIDDEN', 'admin role required');
};

const slugTaken = (slug: string) =>
  new AppError('CONFLICT', `the slug ${slug} is taken`, { details: { reason: 'SLUG_TAKEN', slug } });

async function mapSlugConflict<T>(slug: string | undefined, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (slug !== undefined && isUniqueViolation(error, CATEGORY_SLUG_KEY)) throw slugTaken(slug);
    throw error;
  }
}

const toCategory = (row: { id: CategoryId; slug: string; name: string }): Category => ({
  id: row.id,
  slug: row.slug,
  name: row.name,
});

/** POST /v1/admin/categories. A taken slug → 409 CONFLICT `SLUG_TAKEN`. */
export async function createCategory(
  deps: Pick<MarketplaceDeps, 'db' | 'clock'>,
  actor: Actor,
  input: CategoryInput,
): Promise<Category> {
  requireAdmin(actor);
  const row = await mapSlugConflict(input.slug, () =>
    insertCategory(deps.db, { slug: input.slug, name: input.name.trim(), now: deps.clock.now() }),
  );
  return toCategory(row);
}

/** PATCH /v1/admin/categories/:id: rename and/or re-slug. Unknown → 404, taken slug → 409. */
export async function updateCategory(
  deps: Pick<MarketplaceDeps, 'db' | 'clock'>,
  actor: Actor,
  id: CategoryId,
  patch: Partial<CategoryInput>,
): Promise<Category> {
  requireAdmin(actor);
  const row = await mapSlugConflict(patch.slug, () =>
    updateCategoryRow(
      deps.db,
      id,
      {
        ...(patch.slug === undefined ? {} : { slug: patch.slug }),
        ...(patch.name === undefined ? {} : { name: patch.name.trim() }),
      },
      deps.clock.now(),
    ),
  );
  if (row === undefined) throw new AppError('NOT_FOUND', 'no such category');
  return toCategory(row);
}
