/**
 * A user's track record on their profile (issue 12 §6, after the Kelmah seed's "user performance"):
 * what their contracts came to, from the `contracts` table in one query (performance.repo.ts).
 *
 * Definitions (as either party unless said otherwise):
 * - `completedContracts`: contracts that ended `completed` (approved or auto-approved);
 * - `resolvedContracts`: ended `resolved` by an admin after a dispute;
 * - `cancelledContracts`: ended `cancelled` (before any delivery);
 * - `completionRate` = (completed + resolved) / (completed + resolved + cancelled), 2 decimals; null
 *   before the first contract ends. A resolved dispute counts as carried through: the work ended
 *   with a decision, not abandoned;
 * - `onTimeDeliveries`: as worker, contracts whose `delivered_at` (the latest delivery) ≤ `due_at`,
 *   out of `deliveries` (as worker, contracts delivered at least once);
 * - `totalEarned` (as worker) / `totalSpent` (as hirer): the amounts of `completed` contracts, minor
 *   units of the platform currency. Resolved contracts are NOT included: their split (toWorker /
 *   toHirer) lives in the ledger and the transition log, not in `contracts.amount`, and counting the
 *   whole amount would overstate both sides. Fees are not subtracted (the escrow amount is shown).
 *
 * Who sees what (`performanceAsSeenBy`): the money totals only the user themself and admins. Bid
 * and contract amounts are private to the two parties and admins, and a total is a sum of them: a
 * hirer with one completed contract would show its amount to everyone, and a total read before and
 * after a contract ends gives that contract's amount. Everyone else gets the counts and rates.
 * `inProgressContracts` stays public: it carries no amount, a hirer's running contracts are public
 * already (their jobs `in_progress` in the job search), and a worker's current load is what a hirer
 * choosing between workers wants to know (marketplaces show "jobs in progress" on profiles).
 */
import type { UserId } from '../../../protocol/src/ids.js';
import { type ContractFigures, contractFiguresOf } from '../../db/repositories/performance.repo.js';
import type { MarketplaceDeps } from './jobs.js';
import type { Actor } from './rules.js';

export interface UserPerformance {
  readonly contracts: number;
  readonly inProgressContracts: number;
  readonly completedContracts: number;
  readonly resolvedContracts: number;
  readonly cancelledContracts: number;
  readonly completionRate: number | null;
  readonly deliveries: number;
  readonly onTimeDeliveries: number;
  /** Minor units (exact as a JS number up to 2^53 − 1, the limit of every amount at the edges). */
  readonly totalEarned: number;
  readonly totalSpent: number;
}

/** Pure: the figures as shown. */
export function toPerformance(figures: ContractFigures): UserPerformance {
  const carried = figures.completed + figures.resolved;
  const ended = carried + figures.cancelled;
  return {
    contracts: figures.total,
    inProgressContracts: figures.in_progress,
    completedContracts: figures.completed,
    resolvedContracts: figures.resolved,
    cancelledContracts: figures.cancelled,
    completionRate: ended === 0 ? null : Math.round((carried / ended) * 100) / 100,
    deliveries: figures.delivered_as_worker,
    onTimeDeliveries: figures.on_time_as_worker,
    totalEarned: Number(figures.earned),
    totalSpent: Number(figures.spent),
  };
}

/** The figures without the money totals: what a profile shows to anyone but its user and admins. */
export type PublicPerformance = Omit<UserPerformance, 'totalEarned' | 'totalSpent'>;

/**
 * The figures of `subject` as `viewer` may see them: all of them for the user themself and for
 * admins; without `totalEarned` and `totalSpent` for everyone else (see the header).
 */
export function performanceAsSeenBy(
  figures: UserPerformance,
  subject: UserId,
  viewer: Actor,
): UserPerformance | PublicPerformance {
  if (viewer.userId === subject || viewer.roles.includes('admin')) return figures;
  const { totalEarned: _earned, totalSpent: _spent, ...shown } = figures;
  return shown;
}

export async function userPerformance(
  deps: Pick<MarketplaceDeps, 'db'>,
  userId: UserId,
): Promise<UserPerformance> {
  return toPerformance(await contractFiguresOf(deps.db, userId));
}
