/**
 * The marketplace's tables (migration 0007). Money columns are `bigint` minor units: pg returns them
 * as strings, and the repositories turn them into JS `bigint`, never `number`.
 */
import type { ColumnType, Generated } from 'kysely';
import type {
  BidId,
  CategoryId,
  ContractId,
  JobId,
  ReviewId,
  RoomId,
  UserId,
} from '../../../protocol/src/ids.js';

/** bigint read as a decimal string; written as a decimal string (exact beyond 2^53). */
type Int8 = ColumnType<string, string, string>;
/** Maintained by the database (trigger); never written by the code. */
type DbMaintained<T> = ColumnType<T, never, never>;
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type TextArray = ColumnType<string[], string[] | undefined, string[]>;

export type JobStatus = 'open' | 'in_progress' | 'completed' | 'cancelled' | 'closed';
export type BudgetKind = 'fixed' | 'hourly';
export type BidStatus = 'pending' | 'accepted' | 'rejected' | 'withdrawn';
export type ContractStateColumn =
  | 'active'
  | 'delivered'
  | 'completed'
  | 'cancelled'
  | 'disputed'
  | 'resolved';
export type ContractActorKind = 'hirer' | 'worker' | 'admin' | 'timer';

export interface CategoriesTable {
  id: Generated<CategoryId>;
  slug: string;
  name: string;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface JobsTable {
  id: Generated<JobId>;
  hirer_id: UserId;
  category_id: CategoryId;
  title: string;
  description: string;
  skills: TextArray;
  budget_kind: BudgetKind;
  budget_amount: Int8;
  currency: string;
  location: string | null;
  remote: Generated<boolean>;
  deadline: Date | null;
  status: Generated<JobStatus>;
  search_vector: DbMaintained<string>;
  version: Generated<number>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  closed_at: Date | null;
}

export interface BidsTable {
  id: Generated<BidId>;
  job_id: JobId;
  worker_id: UserId;
  amount: Int8;
  delivery_days: number;
  cover_letter: string;
  status: Generated<BidStatus>;
  version: Generated<number>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  decided_at: Date | null;
  /** Withdrawn by an account lock, not by the worker: not counted toward their bids on the job. */
  withdrawn_by_lock: Generated<boolean>;
}

export interface ContractsTable {
  id: Generated<ContractId>;
  job_id: JobId;
  bid_id: BidId;
  hirer_id: UserId;
  worker_id: UserId;
  title: string;
  amount: Int8;
  currency: string;
  delivery_days: number;
  state: Generated<ContractStateColumn>;
  version: Generated<number>;
  deliveries: Generated<number>;
  room_id: RoomId | null;
  due_at: Timestamp;
  delivered_at: Date | null;
  auto_approve_at: Date | null;
  completed_at: Date | null;
  cancelled_at: Date | null;
  disputed_at: Date | null;
  resolved_at: Date | null;
  review_deadline_at: Date | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface ContractTransitionsTable {
  id: Generated<string>;
  contract_id: ContractId;
  version: number;
  event: string;
  from_state: ContractStateColumn | null;
  to_state: ContractStateColumn;
  actor_kind: ContractActorKind;
  actor_id: UserId | null;
  payload: ColumnType<Record<string, unknown>, Record<string, unknown> | undefined, never>;
  created_at: Generated<Date>;
}

export interface ReviewsTable {
  id: Generated<ReviewId>;
  contract_id: ContractId;
  author_id: UserId;
  subject_id: UserId;
  rating: number;
  text: Generated<string>;
  created_at: Generated<Date>;
  published_at: Date | null;
  hidden_at: Date | null;
  hidden_by: UserId | null;
  hidden_reason: string | null;
}

export interface UserRatingsTable {
  user_id: UserId;
  rating_count: Generated<number>;
  rating_sum: Generated<number>;
  updated_at: Generated<Date>;
}
