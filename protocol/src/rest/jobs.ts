/**
 * Jobs, bids and categories over REST (issue 12 §1–2). Amounts are integer minor units of the
 * platform currency, exact as JSON integers up to 2^53 − 1. POST /v1/jobs/:id/bids requires an
 * `Idempotency-Key` header (same semantics as the wallet's POSTs).
 */
import { z } from 'zod';
import { BidId, CategoryId, JobId, UserId } from '../ids.js';
import { Cursor, Iso, PageLimit, page } from './common.js';
import { Amount, Currency } from './payments.js';
import { MAX_SKILLS, Skill } from './skills.js';
import { multiLineText, singleLineText } from './text.js';

export const Category = z
  .object({ id: CategoryId, slug: z.string(), name: z.string() })
  .meta({ id: 'Category' });

export const CategoryList = z.object({ data: z.array(Category) }).meta({ id: 'CategoryList' });

export const BudgetKind = z.enum(['fixed', 'hourly']);
export const JobStatus = z.enum(['open', 'in_progress', 'completed', 'cancelled', 'closed']);
export const BidStatus = z.enum(['pending', 'accepted', 'rejected', 'withdrawn']);

export const Budget = z
  .strictObject({
    kind: BudgetKind.describe('fixed: the whole job; hourly: per hour.'),
    amount: Amount,
    currency: Currency.describe('Must be the platform currency (CURRENCY).'),
  })
  .meta({ id: 'Budget' });

export const CreateJobRequest = z
  .strictObject({
    title: singleLineText({ min: 1, max: 200 }),
    description: multiLineText({ min: 1, max: 20_000 }),
    categoryId: CategoryId,
    skills: z.array(Skill).max(MAX_SKILLS).default([]).describe('Stored lower case, duplicates dropped.'),
    budget: Budget,
    location: singleLineText({ max: 200 }).nullable().optional(),
    remote: z.boolean().default(false),
    deadline: Iso.nullable()
      .optional()
      .describe('Must be in the future, and at most 9999-12-31T23:59:59.999Z (a four-digit year in UTC).'),
  })
  .meta({ id: 'CreateJobRequest' });

export const UpdateJobRequest = z
  .strictObject({
    title: singleLineText({ min: 1, max: 200 }),
    description: multiLineText({ min: 1, max: 20_000 }),
    categoryId: CategoryId,
    skills: z.array(Skill).max(MAX_SKILLS),
    budget: z.strictObject({ kind: BudgetKind, amount: Amount, currency: Currency }).partial(),
    location: singleLineText({ max: 200 }).nullable(),
    remote: z.boolean(),
    deadline: Iso.nullable().describe(
      'Must be in the future, and at most 9999-12-31T23:59:59.999Z (a four-digit year in UTC).',
    ),
  })
  .partial()
  .meta({ id: 'UpdateJobRequest' });

export const Job = z
  .object({
    id: JobId,
    hirerId: UserId,
    categoryId: CategoryId,
    title: z.string(),
    description: z.string(),
    skills: z.array(z.string()),
    budget: Budget,
    location: z.string().nullable(),
    remote: z.boolean(),
    deadline: Iso.nullable(),
    status: JobStatus,
    version: z.int().min(0).describe('Bumped by every change; send it back as If-Match to PATCH safely.'),
    createdAt: Iso,
    updatedAt: Iso,
    closedAt: Iso.nullable(),
  })
  .meta({ id: 'Job' });

export const Bid = z
  .object({
    id: BidId,
    jobId: JobId,
    workerId: UserId,
    amount: Amount,
    deliveryDays: z.int().min(1).max(365),
    coverLetter: z.string(),
    status: BidStatus,
    version: z
      .int()
      .min(0)
      .describe(
        'Bumped by every change; send it back as If-Match to PATCH safely (and to accept: the version the hirer saw).',
      ),
    createdAt: Iso,
    updatedAt: Iso,
    decidedAt: Iso.nullable(),
  })
  .meta({ id: 'Bid' });

export const JobDetail = Job.extend({
  bidCount: z.int().min(0).describe('Bids other than withdrawn ones.'),
  bids: z
    .array(Bid)
    .optional()
    .describe(
      "The job's hirer (and admins) only: its newest 100 bids; GET /v1/jobs/{id}/bids pages them all.",
    ),
}).meta({ id: 'JobDetail' });

export const JobPage = page(Job).meta({ id: 'JobPage' });
export const BidPage = page(Bid).meta({ id: 'BidPage' });

/**
 * Comma-separated list in a query string (`skills=react,node`); an empty value is an empty list.
 * Blank items (`a,,b`, `a, `) are dropped, unless `blankItems: 'refuse'`: then each is handed to
 * `item` as `""`, which refuses it by its index. Refuse them where an empty list widens the filter
 * (a skill filter of only blanks would otherwise match every job).
 */
export const csv = <T extends z.ZodType<string, string>>(
  item: T,
  { blankItems = 'drop' }: { readonly blankItems?: 'drop' | 'refuse' } = {},
) =>
  z
    .string()
    .max(2000)
    .transform((value) => {
      if (value === '') return [];
      const parts = value.split(',').map((part) => part.trim());
      return blankItems === 'refuse' ? parts : parts.filter((part) => part !== '');
    })
    .pipe(z.array(item).max(30));

/**
 * A budget bound in minor units, digits only. Not `z.coerce.number()`: it reads an empty value (a
 * form's blank field, `?budgetMax=`) as 0, a filter that silently matched nothing; also ' 5', '0x10'.
 */
const queryAmount = z
  .string()
  .regex(/^\d{1,16}$/, 'must be a whole amount in minor units (digits only)')
  .transform(Number)
  .pipe(z.number().max(Number.MAX_SAFE_INTEGER))
  .describe('Whole amount in minor units (digits only).');

/** No `.meta({id})`: @fastify/swagger cannot turn a $ref'd querystring into parameters (500 on /openapi.json). */
export const JobSearchQuery = z.strictObject({
  q: z
    .string()
    .trim()
    .max(200)
    .optional()
    .describe(
      'Full text over title, skills and description (web search syntax: "quoted phrase", -not, or). Whole words, not prefixes. A text with no word to search for (only stop words such as "the", punctuation, or signs the text search reads as punctuation: "½", "²", "①") searches as if none was given.',
    ),
  categoryId: CategoryId.optional(),
  skills: csv(Skill, { blankItems: 'refuse' })
    .optional()
    .describe(
      'Comma-separated; jobs asking for all of them. A blank skill is refused; an empty value: any skills.',
    ),
  budgetMin: queryAmount.optional(),
  budgetMax: queryAmount.optional(),
  budgetKind: BudgetKind.optional(),
  status: csv(JobStatus).optional().describe('Comma-separated; default open.'),
  remote: z
    .enum(['true', 'false'])
    .transform((value) => value === 'true')
    .optional(),
  location: z.string().trim().max(200).optional().describe('Case-insensitive part of the location.'),
  hirerId: UserId.optional(),
  sort: z.enum(['newest', 'relevance']).optional().describe('Default: relevance with q, newest without.'),
  cursor: Cursor.optional(),
  limit: PageLimit,
});

export const PlaceBidRequest = z
  .strictObject({
    amount: Amount,
    deliveryDays: z.int().min(1).max(365),
    coverLetter: multiLineText({ max: 5000 }).default(''),
  })
  .meta({ id: 'PlaceBidRequest' });

// Not PlaceBidRequest.partial(): its coverLetter default would blank the letter of every PATCH.
export const UpdateBidRequest = z
  .strictObject({
    amount: Amount,
    deliveryDays: z.int().min(1).max(365),
    coverLetter: multiLineText({ max: 5000 }),
  })
  .partial()
  .meta({ id: 'UpdateBidRequest' });

export const PageQuery = z.strictObject({ cursor: Cursor.optional(), limit: PageLimit });
export const JobIdParams = z.object({ id: JobId });
export const BidIdParams = z.object({ id: BidId });
