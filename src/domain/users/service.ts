/**
 * Profiles, worker search and contacts. Contacts are one-sided entries ("I added you"); a pair that
 * added each other are mutual contacts, and only mutual contacts see each other's presence
 * (adding someone back is how a contact request is accepted). Removing a contact is announced on
 * the bus so every node stops the presence pushes between the two at once.
 */
import type { Kysely, Transaction } from 'kysely';
import type { UserId } from '../../../protocol/src/ids.js';
import type { RatingSummary } from '../../../protocol/src/rest/reviews.js';
import type {
  Contact,
  Me,
  UpdateMeRequest,
  UserProfile,
  UserSearchQuery,
  WorkerListing,
} from '../../../protocol/src/rest/users.js';
import type { Database } from '../../db/database.js';
import {
  addContactWithin,
  findProfilesByIds,
  lastSeenOf,
  listContacts,
  lockUserById,
  mutualContactIdsAmong,
  type ProfileRow,
  removeContact,
  searchDocumentOf,
  searchUsers,
  updateUser,
} from '../../db/repositories/users.repo.js';
import type { Bus } from '../../platform/bus/bus.js';
import { CONTACT_REMOVED_TOPIC } from '../../platform/bus/topics.js';
import { AppError } from '../../platform/errors.js';
import { performanceAsSeenBy, type UserPerformance, userPerformance } from '../marketplace/performance.js';
import { ratingSummaries, ratingSummary } from '../marketplace/reviews.js';
import { type Actor, normalizeSkills } from '../marketplace/rules.js';
import { decodeCursor, pageOf } from '../pagination.js';
import { toMe, toPublicUser } from './dto.js';
import { createBatchedReader } from './user-reader.js';

export { CONTACT_REMOVED_TOPIC };

/**
 * The words of a worker search as typed (at most 8), for `searchUsers` to match as prefixes. Split at
 * spaces only: PostgreSQL's parser cuts each word into lexemes as it cut the profile, so a word is
 * found as it is written there. Cut here at every character that is not a letter or a digit,
 * "jane.smith" (a username), "node.js" or "ASP.NET" were searched as "jane" & "smith", which never
 * match the one lexeme `jane.smith` of the profile; "राहुल" (its vowels are combining marks no NFC
 * composes) as "र" & "ह" & "ल"; and JavaScript's lower case of "İstanbul" ("i" + U+0307) matched no
 * "istanbul". A word with no letter or digit (punctuation) filters nothing, as before; a word of
 * one letter or digit is refused (VALIDATION_FAILED naming `querystring.q`).
 */
export function searchTerms(q: string | undefined): string[] {
  // Stored text is NFC (protocol/src/rest/text.ts): a query typed decomposed ("e" + U+0301 for "é",
  // as some keyboards and pasted text send it) must match it too.
  const terms = (q ?? '')
    .normalize('NFC')
    .split(/\s+/u)
    .filter((word) => WORD_CHARACTER.test(word))
    .slice(0, 8);
  // Each word matches as a prefix: "a" matched nearly every profile, and its index scan read every
  // word beginning with "a" of every profile before the first page was cut.
  if (terms.some((word) => (word.match(WORD_CHARACTERS) ?? []).length < MIN_SEARCH_WORD_LENGTH)) {
    const message = `each word must have at least ${MIN_SEARCH_WORD_LENGTH} letters or digits`;
    throw new AppError('VALIDATION_FAILED', message, {
      details: { errors: [{ path: 'querystring.q', message }] },
    });
  }
  return terms;
}

/** The fewest letters or digits a word of a worker search has (each word matches as a prefix). */
export const MIN_SEARCH_WORD_LENGTH = 2;

/**
 * What PostgreSQL's text parser keeps as part of a word: letters (with their combining marks),
 * decimal digits and letter numbers ("Ⅻ"). Not the other numbers, "½", "²" or "①": the parser
 * reads them as blanks, as punctuation, so a profile's "1½ years" holds the word "1" and no "½".
 * Searched for, such a word matched no profile at all; it is now punctuation here too.
 */
const WORD_CHARACTER = /[\p{L}\p{Nd}\p{Nl}]/u;
const WORD_CHARACTERS = /[\p{L}\p{M}\p{Nd}\p{Nl}]/gu;

/**
 * An hourly rate is in the platform currency (CURRENCY), as job budgets, bids and wallets are: a
 * rate in another currency cannot be compared with the budgets it is matched against. Refused as a
 * job budget in another currency is (VALIDATION_FAILED naming the field, "must be USD").
 */
function checkHourlyRateCurrency(patch: UpdateMeRequest, platformCurrency: string): void {
  const currency = patch.hourlyRate?.currency;
  if (currency === undefined || currency === platformCurrency) return;
  const message = `must be ${platformCurrency}`;
  throw new AppError('VALIDATION_FAILED', message, {
    details: { errors: [{ path: 'body.hourlyRate.currency', message }] },
  });
}

/** The longest link stored, as UpdateMeRequest's `httpUrl` allows it. */
const MAX_LINK_LENGTH = 2048;

/**
 * A profile link as stored and shown: the URL's WHATWG serialisation (what a browser would open),
 * not the characters sent. The schema checks only that the text parses, and the parser ignores
 * tabs and line breaks and takes text-direction overrides, zero-width and other invisible characters
 * and spaces in the path, which were stored and shown to everyone as sent: a link whose visible text
 * reads other than where it goes (`https://evil.example/` + U+202E + `moc.elgoog` displays as ending in
 * google.com). Serialised, they are percent-encoded and a look-alike host is its `xn--` form.
 */
function storedLink(value: string, path: string): string {
  const url = new URL(value);
  // A user name or password reads as the site: `https://www.behance.net@evil.example/work` goes to
  // evil.example. No portfolio or avatar needs credentials in its link, so none is taken.
  if (url.username !== '' || url.password !== '') {
    const message = 'must not carry a user name or password (the text before "@" reads as the site)';
    throw new AppError('VALIDATION_FAILED', message, { details: { errors: [{ path, message }] } });
  }
  const href = url.href;
  if (href.length > MAX_LINK_LENGTH) {
    const message = `must be at most ${MAX_LINK_LENGTH} characters once percent-encoded`;
    throw new AppError('VALIDATION_FAILED', message, { details: { errors: [{ path, message }] } });
  }
  return href;
}

/**
 * Portfolio links as stored, each its serialisation: two that differ as typed but are one link once
 * serialised (`https://GitHub.com/me` and `https://github.com:443/me`) are refused as the schema
 * refuses one link named twice, instead of showing it twice on the profile.
 */
export function storedLinks(links: readonly string[]): string[] {
  const stored = links.map((link, index) => storedLink(link, `body.portfolioLinks.${index}`));
  const twice = stored.findIndex((link, index) => stored.indexOf(link) !== index);
  if (twice >= 0) {
    const message = `is the link of body.portfolioLinks.${stored.indexOf(stored[twice] as string)} again`;
    throw new AppError('VALIDATION_FAILED', 'must not name a link twice', {
      details: { errors: [{ path: `body.portfolioLinks.${twice}`, message }] },
    });
  }
  return stored;
}

/** A PATCH /v1/me inside the caller's transaction, the row locked while merged. */
async function updateMeIn(trx: Transaction<Database>, userId: UserId, patch: UpdateMeRequest): Promise<Me> {
  const user = await lockUserById(trx, userId);
  if (user === undefined) throw new AppError('UNAUTHORIZED', 'invalid access token');
  const next = {
    display_name: patch.displayName === undefined ? user.display_name : patch.displayName,
    bio: patch.bio === undefined ? user.bio : patch.bio,
    avatar_url:
      patch.avatarUrl === undefined
        ? user.avatar_url
        : patch.avatarUrl === null
          ? null
          : storedLink(patch.avatarUrl, 'body.avatarUrl'),
    location: patch.location === undefined ? user.location : patch.location,
    // As job skills are stored and searched (rules.ts): "Machine  Learning" pasted with two spaces is
    // the skill "machine learning" a search or a job names, not a third spelling nobody finds.
    skills: patch.skills === undefined ? user.skills : normalizeSkills(patch.skills),
    hourly_rate_amount:
      patch.hourlyRate === undefined ? user.hourly_rate_amount : (patch.hourlyRate?.amount ?? null),
    hourly_rate_currency:
      patch.hourlyRate === undefined ? user.hourly_rate_currency : (patch.hourlyRate?.currency ?? null),
    availability: patch.availability === undefined ? user.availability : patch.availability,
    portfolio_links:
      patch.portfolioLinks === undefined ? user.portfolio_links : storedLinks(patch.portfolioLinks),
  };
  const updated = await updateUser(trx, userId, {
    ...next,
    search_document: searchDocumentOf({ username: user.username, ...next }),
  });
  if (updated === undefined) throw new AppError('UNAUTHORIZED', 'invalid access token');
  return toMe(updated);
}

export function createUserService(deps: {
  readonly db: Kysely<Database>;
  /** Whether each user has a socket open on any node (the presence registry in Redis). */
  readonly isOnline: (userIds: readonly UserId[]) => Promise<boolean[]>;
  readonly bus: Bus;
  /**
   * CONTACTS_MAX_PER_USER: contacts one user may add. Without a cap one account could grow its list
   * without end, and GET /v1/me/contacts (one page) would load it all into the node's memory.
   */
  readonly maxContactsPerUser: number;
  /** CURRENCY, the platform currency: an hourly rate must be in it. */
  readonly currency: string;
}) {
  const { db } = deps;
  /**
   * The user rows read by GET /v1/me and the profile reads: batched (`where id in (…)` for all
   * requests waiting), never cached, so a read that starts after a write committed sees it
   * (user-reader.ts).
   */
  const userById = createBatchedReader<UserId, ProfileRow>({
    load: async (ids) => new Map((await findProfilesByIds(db, ids)).map((row) => [row.id, row])),
  });

  /**
   * What GET /v1/users/:id adds to the row, read the same batched way: rating summaries of all ids
   * waiting in one query, each distinct user's contract figures once per batch (requests for the
   * same profile share them), and the mutual-contact checks of a batch in one query per viewer. Like
   * the row, none is cached: a read never joins a query sent before it asked.
   */
  const ratingOf = createBatchedReader<UserId, RatingSummary>({
    load: (ids) => ratingSummaries({ db }, ids),
  });
  const performanceOf = createBatchedReader<UserId, UserPerformance>({
    load: async (ids) =>
      new Map(await Promise.all(ids.map(async (id) => [id, await userPerformance({ db }, id)] as const))),
  });
  const isMutualContact = createBatchedReader<string, true>({
    load: async (pairs) => {
      const byViewer = new Map<UserId, UserId[]>();
      for (const pair of pairs) {
        const [viewer, id] = pair.split(' ') as [UserId, UserId];
        byViewer.set(viewer, [...(byViewer.get(viewer) ?? []), id]);
      }
      const mutual = new Map<string, true>();
      await Promise.all(
        [...byViewer].map(async ([viewer, ids]) => {
          for (const id of await mutualContactIdsAmong(db, viewer, ids)) mutual.set(`${viewer} ${id}`, true);
        }),
      );
      return mutual;
    },
  });

  const activeUser = async (id: UserId) => {
    const user = await userById(id);
    if (user === undefined || user.locked_at !== null) throw new AppError('NOT_FOUND', 'no such user');
    return user;
  };

  return {
    async getMe(userId: UserId): Promise<Me> {
      const user = await userById(userId);
      if (user === undefined) throw new AppError('UNAUTHORIZED', 'invalid access token');
      return toMe(user);
    },

    async updateMe(userId: UserId, patch: UpdateMeRequest): Promise<Me> {
      checkHourlyRateCurrency(patch, deps.currency);
      // Locked while merged: two PATCHes at once (bio from one tab, location from another) would
      // otherwise each write back the other's field as it was before, losing one of them.
      return db.transaction().execute((trx) => updateMeIn(trx, userId, patch));
    },

    /**
     * The public profile with its rating summary and contract figures (issue 12 §5–6); presence and
     * last-seen only for the user themself and mutual contacts; the money totals of the figures only
     * for the user themself and admins (performance.ts: amounts are the parties' own).
     */
    async getUser(caller: Actor, id: UserId): Promise<UserProfile> {
      const viewer = caller.userId;
      // All four reads at once (they need only the ids): one wait for the database instead of three
      // in a row. A missing or locked user is still NOT_FOUND; its other reads were only wasted.
      const [user, rating, performance, mutual] = await Promise.all([
        userById(id),
        ratingOf(id),
        performanceOf(id),
        viewer === id ? true : isMutualContact(`${viewer} ${id}`),
      ]);
      if (user === undefined || user.locked_at !== null) throw new AppError('NOT_FOUND', 'no such user');
      if (performance === undefined) throw new Error(`no contract figures read for ${id}`);
      const profile = {
        ...toPublicUser(user),
        rating: rating ?? ratingSummary(undefined),
        performance: performanceAsSeenBy(performance, id, caller),
      };
      if (mutual !== true) return profile;
      const [online] = await deps.isOnline([id]);
      if (online) return { ...profile, presence: { status: 'online', lastSeenAt: null } };
      const lastSeen = (await lastSeenOf(db, [id])).get(id);
      return { ...profile, presence: { status: 'offline', lastSeenAt: lastSeen?.toISOString() ?? null } };
    },

    /** Workers matching the query, newest first, cursor-paginated; each with its rating summary. */
    async searchWorkers(
      query: UserSearchQuery,
    ): Promise<{ data: WorkerListing[]; nextCursor: string | null }> {
      const rows = await searchUsers(db, {
        terms: searchTerms(query.q),
        // Normalised as stored (updateMeIn); a blank one filters nothing, as a blank `skills` of
        // GET /v1/jobs does (it matched no worker at all).
        skill: normalizeSkills(query.skill === undefined ? [] : [query.skill.normalize('NFC')])[0],
        location: query.location?.normalize('NFC'),
        role: 'worker',
        after: decodeCursor('workers', query.cursor),
        limit: query.limit + 1,
      });
      const ratings = await ratingSummaries(
        { db },
        rows.slice(0, query.limit).map((row) => row.id),
      );
      return pageOf('workers', rows, query.limit, (row) => ({
        ...toPublicUser(row),
        rating: ratings.get(row.id) ?? ratingSummary(undefined),
      }));
    },

    async addContact(userId: UserId, contactId: UserId): Promise<void> {
      if (userId === contactId) {
        throw new AppError('VALIDATION_FAILED', 'you cannot add yourself as a contact', {
          details: { errors: [{ path: 'params.userId', message: 'is your own id' }] },
        });
      }
      await activeUser(contactId);
      if ((await addContactWithin(db, userId, contactId, deps.maxContactsPerUser)) === 'full') {
        throw new AppError('CONFLICT', `a user may have at most ${deps.maxContactsPerUser} contacts`, {
          details: { limit: deps.maxContactsPerUser },
        });
      }
    },

    async removeContact(userId: UserId, contactId: UserId): Promise<void> {
      await removeContact(db, userId, contactId);
      // Announced even when the row was gone already: the DELETE is idempotent, and a retry after a
      // failed publish (the client saw a 5xx) must still end the former contact's presence watch.
      await deps.bus.publish(CONTACT_REMOVED_TOPIC, { userId, contactId });
    },

    async listContacts(userId: UserId): Promise<{ data: Contact[] }> {
      const rows = await listContacts(db, userId);
      return { data: rows.map((row) => ({ user: toPublicUser(row), addedAt: row.added_at.toISOString() })) };
    },
  };
}

export type UserService = ReturnType<typeof createUserService>;
