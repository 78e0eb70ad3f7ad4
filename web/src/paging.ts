/**
 * Lists read a page at a time (REST `cursor`/`nextCursor`, newest first) that pushes also make the
 * app read again from the top: "My contracts", a job's bids, the notifications. No JSX.
 *
 * The server's cursors are keysets (after this item), so a page read later goes on from where the
 * last one ended whatever was added at the top meanwhile; an item pushed down from one page into
 * the next by newer ones is in both: listed once, at its newest version.
 */

export interface Page<T> {
  readonly data: readonly T[];
  readonly nextCursor: string | null;
}

interface Versioned {
  readonly id: string;
  readonly version: number;
}

/**
 * `top`, a fresh read of the first pages, over `shown`: the items of `top` in its order (each at the
 * newer version of the two), then those of `shown` it does not hold (older ones, read by "More"),
 * in theirs. Nothing is listed twice.
 */
export function mergeTop<T extends Versioned>(top: readonly T[], shown: readonly T[] | undefined): T[] {
  const before = new Map((shown ?? []).map((item) => [item.id, item]));
  const fresh = top.map((item) => {
    const old = before.get(item.id);
    return old !== undefined && old.version > item.version ? old : item;
  });
  const inTop = new Set(top.map((item) => item.id));
  return [...fresh, ...(shown ?? []).filter((item) => !inTop.has(item.id))];
}

/** `page`, the one after those shown, appended to `shown`: only what is not listed yet. */
export function appendPage<T extends Versioned>(shown: readonly T[] | undefined, page: readonly T[]): T[] {
  const known = new Set((shown ?? []).map((item) => item.id));
  return [...(shown ?? []), ...page.filter((item) => !known.has(item.id))];
}

/** The first `pages` pages (at least one) read one after the other, as one page. */
export async function firstPages<T>(
  read: (cursor?: string) => Promise<Page<T>>,
  pages: number,
): Promise<Page<T>> {
  const data: T[] = [];
  let cursor: string | undefined;
  for (let n = 0; ; n++) {
    const page = await read(cursor);
    data.push(...page.data);
    if (page.nextCursor === null || n + 1 >= pages) return { data, nextCursor: page.nextCursor };
    cursor = page.nextCursor;
  }
}
