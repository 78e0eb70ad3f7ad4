/** Profiles: the owner's view (/v1/me), the public view (/v1/users/:id), search and contacts. */
import { z } from 'zod';
import { UserId } from '../ids.js';
import { Cursor, distinct, Iso, PageLimit, page } from './common.js';
import { RatingSummary, UserPerformance } from './reviews.js';
import { MAX_SKILL_LENGTH, MAX_SKILLS, Skill } from './skills.js';
import { multiLineText, singleLineText } from './text.js';

export const Role = z.enum(['worker', 'hirer', 'admin']);
export type Role = z.infer<typeof Role>;
/** Roles a user may pick when registering; `admin` is granted, never chosen. */
export const SelfServiceRole = z.enum(['worker', 'hirer']);

export const Availability = z.enum(['available', 'busy', 'unavailable']);
export type Availability = z.infer<typeof Availability>;

export const Money = z
  .strictObject({
    amount: z.number().int().min(0).max(100_000_000).describe('Minor units (cents).'),
    currency: z.string().regex(/^[A-Z]{3}$/, { error: 'must be an ISO 4217 code such as EUR' }),
  })
  .meta({ id: 'Money' });

/**
 * A profile link. Stored as the URL's serialisation (what a browser opens); one with a user name or
 * password (`https://site.example@evil.example/`, which reads as the site before "@") is 400.
 */
const httpUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
  .max(2048)
  .describe('An http(s) URL without a user name or password, at most 2048 characters once percent-encoded.');

export const WorkerProfile = z
  .object({
    skills: z.array(z.string()),
    hourlyRate: Money.nullable(),
    availability: Availability.nullable(),
    portfolioLinks: z.array(z.string()),
  })
  .meta({ id: 'WorkerProfile' });

export const PublicUser = z
  .object({
    id: UserId,
    username: z.string(),
    roles: z
      .array(Role)
      .describe(
        "`worker` and `hirer`; `admin` appears only in your own profile (GET /v1/me) and the admin console, never in another user's view.",
      ),
    displayName: z.string().nullable(),
    bio: z.string().nullable(),
    avatarUrl: z.string().nullable(),
    location: z.string().nullable(),
    workerProfile: WorkerProfile.nullable().describe('Present for users with the worker role.'),
    createdAt: Iso,
  })
  .meta({ id: 'PublicUser' });
export type PublicUser = z.infer<typeof PublicUser>;

export const Presence = z
  .object({
    status: z.enum(['online', 'offline']),
    lastSeenAt: Iso.nullable().describe('When the user was last online; null while online or never seen.'),
  })
  .meta({ id: 'Presence' });

/**
 * GET /v1/users/:id: the public profile, with live presence only for the caller themself and for
 * mutual contacts (each added the other); absent for everyone else.
 */
export const UserProfile = PublicUser.extend({
  presence: Presence.optional().describe(
    'Present only when you and the user added each other as contacts (or it is you).',
  ),
  rating: RatingSummary.describe('Reviews about the user (published, not hidden).'),
  performance: UserPerformance.describe(
    "The user's contracts in figures; the money totals (totalEarned, totalSpent) only in your own profile.",
  ),
}).meta({ id: 'UserProfile' });
export type UserProfile = z.infer<typeof UserProfile>;

export const Me = PublicUser.extend({
  email: z.string(),
  emailVerified: z.boolean(),
}).meta({ id: 'Me' });
export type Me = z.infer<typeof Me>;

export const UpdateMeRequest = z
  .strictObject({
    displayName: singleLineText({ min: 1, max: 80 }).nullable(),
    bio: multiLineText({ max: 2000 }).nullable(),
    avatarUrl: httpUrl.nullable(),
    location: singleLineText({ min: 1, max: 120 }).nullable(),
    skills: z.array(Skill).max(MAX_SKILLS),
    hourlyRate: Money.nullable(),
    availability: Availability.nullable(),
    portfolioLinks: distinct(z.array(httpUrl).max(10), 'link'),
  })
  .partial()
  .meta({ id: 'UpdateMeRequest' });
export type UpdateMeRequest = z.infer<typeof UpdateMeRequest>;

export const UserSearchQuery = z.strictObject({
  q: z
    .string()
    .trim()
    .max(200)
    .optional()
    .describe(
      'Words matched (as prefixes) against name, bio, location and skills. Each word needs at least 2 letters or digits (400 VALIDATION_FAILED naming `querystring.q` otherwise: one is a prefix of nearly every profile); words of punctuation only, "½", "²" or "①" included (the text search reads them as punctuation), are ignored.',
    ),
  skill: z.string().trim().toLowerCase().max(MAX_SKILL_LENGTH).optional(),
  location: z.string().trim().max(120).optional().describe('Case-insensitive substring of the location.'),
  cursor: Cursor.optional(),
  limit: PageLimit,
});
export type UserSearchQuery = z.infer<typeof UserSearchQuery>;

/** A worker search result: the public profile and the rating summary (to sort and show stars). */
export const WorkerListing = PublicUser.extend({ rating: RatingSummary }).meta({ id: 'WorkerListing' });
export type WorkerListing = z.infer<typeof WorkerListing>;

export const UserPage = page(WorkerListing).meta({ id: 'UserPage' });

export const UserIdParams = z.strictObject({ id: UserId });
export const ContactParams = z.strictObject({ userId: UserId });

export const Contact = z.object({ user: PublicUser, addedAt: Iso }).meta({ id: 'Contact' });
export type Contact = z.infer<typeof Contact>;
export const ContactList = z.object({ data: z.array(Contact) }).meta({ id: 'ContactList' });
