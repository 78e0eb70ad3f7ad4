/**
 * The live job board of this node (issue 12 §7): which connection watches which jobs (`jobs.watch`)
 * and who is shown a newly posted job. One watch per connection (a new one replaces it), dropped
 * with the connection; nothing is stored, so a reconnecting client watches again (the SDK does).
 *
 * Matching: the category equals the watched one when one is set, and the job asks for at least ONE
 * of the watched skills when any are set. Any-of, not all-of (REST search's `skills` is all-of): a
 * worker watches with the skills they have, and a job needing one of them is worth seeing; all-of
 * would hide every job that names fewer skills than the worker has. Watches are indexed by category,
 * so a post looks only at the watchers of its category and those of every category.
 */
import type { CategoryId } from '../../protocol/src/ids.js';
import { normalizeSkills } from '../domain/marketplace/rules.js';

/** A connection's filter, normalised: skills as REST stores them (empty: any skills). */
export interface JobWatch {
  readonly categoryId: CategoryId | undefined;
  readonly skills: ReadonlySet<string>;
}

/** What of a posted job the filter looks at (skills already normalised, as stored). */
export interface PostedJobKey {
  readonly categoryId: string;
  readonly skills: readonly string[];
}

/** The filter as a watch: skills normalised like REST's (`normalizeSkills`). */
export function toJobWatch(filter: { categoryId?: CategoryId; skills?: readonly string[] }): JobWatch {
  return { categoryId: filter.categoryId, skills: new Set(normalizeSkills(filter.skills ?? [])) };
}

export function watchMatches(watch: JobWatch, job: PostedJobKey): boolean {
  if (watch.categoryId !== undefined && watch.categoryId !== job.categoryId) return false;
  if (watch.skills.size === 0) return true;
  return job.skills.some((skill) => watch.skills.has(skill));
}

/** Key of the watches of every category in `byCategory`. */
const ANY = '*';

export function createJobBoard<C>() {
  const watches = new Map<C, JobWatch>();
  const byCategory = new Map<string, Set<C>>();

  const drop = (connection: C) => {
    const previous = watches.get(connection);
    if (previous === undefined) return;
    watches.delete(connection);
    const key = previous.categoryId ?? ANY;
    const set = byCategory.get(key);
    set?.delete(connection);
    if (set?.size === 0) byCategory.delete(key);
  };

  return {
    /** Starts or replaces the connection's watch. */
    watch(connection: C, watch: JobWatch): void {
      drop(connection);
      watches.set(connection, watch);
      const key = watch.categoryId ?? ANY;
      let set = byCategory.get(key);
      if (set === undefined) {
        set = new Set();
        byCategory.set(key, set);
      }
      set.add(connection);
    },

    /** Ends the connection's watch; a no-op without one (also called when it closes). */
    unwatch: drop,

    /** The connections that are to be shown this job. */
    watchersOf(job: PostedJobKey): C[] {
      const targets: C[] = [];
      for (const key of [job.categoryId, ANY]) {
        for (const connection of byCategory.get(key) ?? []) {
          const watch = watches.get(connection);
          if (watch !== undefined && watchMatches(watch, job)) targets.push(connection);
        }
      }
      return targets;
    },

    /** Watching connections on this node. */
    size: () => watches.size,
  };
}

export type JobBoard<C> = ReturnType<typeof createJobBoard<C>>;
