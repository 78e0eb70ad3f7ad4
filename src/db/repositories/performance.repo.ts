/**
 * Figures of a user's contracts for their profile (issue 12 §6), in ONE aggregate query over the
 * contracts where they are hirer or worker. `hirer_id = $1 or worker_id = $1` is answered by a
 * BitmapOr of `contracts_hirer_created_idx` and `contracts_worker_created_idx` (0007), so the cost
 * grows with the user's own contracts, not with the table.
 */
import { type Kysely, sql, type Transaction } from 'kysely';
import type { UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../database.js';

type Db = Kysely<Database> | Transaction<Database>;

/** Counts as numbers; money sums as decimal strings of minor units (bigint sums are exact). */
export interface ContractFigures {
  readonly total: number;
  readonly in_progress: number;
  readonly completed: number;
  readonly resolved: number;
  readonly cancelled: number;
  readonly delivered_as_worker: number;
  readonly on_time_as_worker: number;
  readonly earned: string;
  readonly spent: string;
}

export async function contractFiguresOf(db: Db, userId: UserId): Promise<ContractFigures> {
  const { rows } = await sql<Record<keyof ContractFigures, string>>`
    select
      count(*) as total,
      count(*) filter (where state in ('active', 'delivered', 'disputed')) as in_progress,
      count(*) filter (where state = 'completed') as completed,
      count(*) filter (where state = 'resolved') as resolved,
      count(*) filter (where state = 'cancelled') as cancelled,
      count(*) filter (where worker_id = ${userId} and delivered_at is not null) as delivered_as_worker,
      count(*) filter (where worker_id = ${userId} and delivered_at <= due_at) as on_time_as_worker,
      coalesce(sum(amount) filter (where worker_id = ${userId} and state = 'completed'), 0) as earned,
      coalesce(sum(amount) filter (where hirer_id = ${userId} and state = 'completed'), 0) as spent
    from contracts
    where hirer_id = ${userId} or worker_id = ${userId}`.execute(db);
  const row = rows[0];
  const n = (value: string | undefined) => Number(value ?? 0);
  return {
    total: n(row?.total),
    in_progress: n(row?.in_progress),
    completed: n(row?.completed),
    resolved: n(row?.resolved),
    cancelled: n(row?.cancelled),
    delivered_as_worker: n(row?.delivered_as_worker),
    on_time_as_worker: n(row?.on_time_as_worker),
    earned: String(row?.earned ?? '0'),
    spent: String(row?.spent ?? '0'),
  };
}
