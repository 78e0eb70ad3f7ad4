/**
 * Pure rules of jobs and bids (no I/O, no clock of their own): who may do what to a job or a bid in
 * which status, and how input is normalised. `jobs.ts` and `bids.ts` call them with the rows they
 * read; `rules.test.ts` covers them without servers. Each returns an AppError to throw, or null.
 */

import type { UserId } from '../../../protocol/src/ids.js';
import { MAX_SKILL_LENGTH, MAX_SKILLS } from '../../../protocol/src/rest/skills.js';
import type { Role } from '../../../protocol/src/rest/users.js';
import type { BidStatus, JobStatus } from '../../db/tables/marketplace.table.js';
import { AppError } from '../../platform/errors.js';

/** Who is calling (a subset of the auth Principal). */
export interface Actor {
  readonly userId: UserId;
  readonly roles: readonly Role[];
}

/** Largest amount accepted: JSON integers at the edges stay exact up to 2^53 − 1. */
export const MAX_AMOUNT = BigInt(Number.MAX_SAFE_INTEGER);
/** One cap for job and worker skills (protocol/src/rest/skills.ts), checked on the stored form. */
export { MAX_SKILL_LENGTH, MAX_SKILLS };

const invalid = (path: string, message: string) =>
  new AppError('VALIDATION_FAILED', message, { details: { errors: [{ path, message }] } });

/**
 * Skills as stored and searched: trimmed, lower case, inner whitespace collapsed, duplicates and
 * empties dropped, first occurrence order kept — so "React", " react " and "REACT" are one skill and
 * `skills @> …` matches however the hirer or the searcher typed it.
 */
export function normalizeSkills(skills: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const skill of skills) {
    const normal = skill.trim().replace(/\s+/g, ' ').toLowerCase();
    if (normal !== '') seen.add(normal);
  }
  return [...seen];
}

/**
 * Characters as the edges count them: Unicode code points (zod 4's `.max`, JSON Schema's `maxLength`,
 * PostgreSQL's `char_length`), not JavaScript's UTF-16 `length`, which counts an emoji twice. Checked
 * by `length`, text the edge accepted (1 500 emoji in a 2 000-character review) was refused here.
 */
export function codePointLength(text: string): number {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

/**
 * The first `max` characters (code points) of `text`: `slice` counts UTF-16 units, so it cut text
 * the edges had taken whole and could leave half of an emoji, which jsonb refuses (22P02).
 */
export function firstChars(text: string, max: number): string {
  return text.length <= max ? text : Array.from(text).slice(0, max).join('');
}

export function checkSkills(skills: readonly string[]): AppError | null {
  if (skills.length > MAX_SKILLS) return invalid('body.skills', `at most ${MAX_SKILLS} skills`);
  const long = skills.find((skill) => codePointLength(skill) > MAX_SKILL_LENGTH);
  return long === undefined
    ? null
    : invalid('body.skills', `a skill is at most ${MAX_SKILL_LENGTH} characters`);
}

/** A positive amount of minor units, exact at the edges. */
export function checkAmount(amount: bigint, path: string): AppError | null {
  if (amount <= 0n) return invalid(path, 'must be a positive integer of minor units');
  if (amount > MAX_AMOUNT) return invalid(path, `must be at most ${MAX_AMOUNT}`);
  return null;
}

/** Jobs are priced in the platform's currency: escrow holds it from a wallet of that currency. */
export function checkCurrency(currency: string, platformCurrency: string): AppError | null {
  return currency === platformCurrency
    ? null
    : invalid('body.budget.currency', `must be ${platformCurrency}`);
}

/**
 * The last instant an RFC 3339 timestamp can name (a four-digit year). A later one (e.g.
 * `9999-12-31T23:59:59Z` with a negative offset) is stored, but `toISOString` writes it as
 * `+010000-…`, which no response schema accepts: the job would answer 500 to everyone who reads it.
 */
export const MAX_DEADLINE = new Date('9999-12-31T23:59:59.999Z');

export function checkDeadline(deadline: Date | null, now: Date): AppError | null {
  if (deadline === null) return null;
  if (!(deadline.getTime() > now.getTime())) return invalid('body.deadline', 'must be in the future');
  return deadline.getTime() > MAX_DEADLINE.getTime()
    ? invalid('body.deadline', 'must be at most 9999-12-31T23:59:59.999Z')
    : null;
}

export function requireRole(actor: Actor, role: Role, doing: string): AppError | null {
  return actor.roles.includes(role) ? null : new AppError('FORBIDDEN', `only a ${role} may ${doing}`);
}

const isAdmin = (actor: Actor) => actor.roles.includes('admin');

/**
 * The `event` an INVALID_TRANSITION names (PROTOCOL.md: `state` the current state, `event` what was
 * tried), as contracts name theirs: `update` for a PATCH, else the action itself.
 */
const eventOf = (doing: 'change' | 'close' | 'withdraw') => (doing === 'change' ? 'update' : doing);

/** Changing or closing a job: its hirer, while it is open. */
export function canChangeJob(
  job: { hirer_id: UserId; status: JobStatus },
  actor: Actor,
  doing: 'change' | 'close',
): AppError | null {
  if (job.hirer_id !== actor.userId) return new AppError('FORBIDDEN', `only the job's hirer may ${doing} it`);
  if (job.status !== 'open') {
    return new AppError('INVALID_TRANSITION', `cannot ${doing} a job that is ${job.status}`, {
      details: { reason: 'INVALID_TRANSITION', state: job.status, event: eventOf(doing) },
    });
  }
  return null;
}

/** Bidding: a worker, not on their own job, while the job is open. (One live bid: the unique index.) */
export function canBidOn(job: { hirer_id: UserId; status: JobStatus }, actor: Actor): AppError | null {
  const role = requireRole(actor, 'worker', 'bid');
  if (role !== null) return role;
  if (job.hirer_id === actor.userId) return new AppError('FORBIDDEN', 'cannot bid on your own job');
  if (job.status !== 'open') {
    return new AppError('CONFLICT', `cannot bid on a job that is ${job.status}`, {
      details: { reason: 'JOB_NOT_OPEN', state: job.status },
    });
  }
  return null;
}

/**
 * Who may see a bid: its worker, the job's hirer, admins. Anyone else is told it does not exist
 * (404), so bid ids reveal nothing.
 */
export function canSeeBid(bid: { worker_id: UserId }, job: { hirer_id: UserId }, actor: Actor): boolean {
  return bid.worker_id === actor.userId || job.hirer_id === actor.userId || isAdmin(actor);
}

/** Changing or withdrawing a bid: its worker (the hirer gets 403), while it is pending. */
export function canChangeBid(
  bid: { worker_id: UserId; status: BidStatus },
  actor: Actor,
  doing: 'change' | 'withdraw',
): AppError | null {
  if (bid.worker_id !== actor.userId)
    return new AppError('FORBIDDEN', `only the bid's worker may ${doing} it`);
  if (bid.status !== 'pending') {
    return new AppError('INVALID_TRANSITION', `cannot ${doing} a bid that is ${bid.status}`, {
      details: { reason: 'INVALID_TRANSITION', state: bid.status, event: eventOf(doing) },
    });
  }
  return null;
}
