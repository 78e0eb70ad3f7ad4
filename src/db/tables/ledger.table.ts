/**
 * The ledger's tables (migration 0004). Money columns are `bigint` minor units: pg returns them as
 * strings, and the repository turns them into JS `bigint`, never `number`.
 */
import type { ColumnType, Generated } from 'kysely';
import type { UserId } from '../../../protocol/src/ids.js';

/** bigint read as a decimal string; written as a decimal string (exact beyond 2^53). */
type Int8 = ColumnType<string, string, string>;
/** bigint the database fills (identity, default or trigger). */
type GeneratedInt8 = ColumnType<string, string | undefined, never>;
type Id = ColumnType<string, never, never>;

export type LedgerAccountKind = 'wallet' | 'escrow' | 'platform_fees' | 'provider_clearing';

export interface LedgerAccountsTable {
  id: Id;
  kind: LedgerAccountKind;
  user_id: UserId | null;
  contract_id: string | null;
  currency: string;
  /** Cached Σ entries; maintained by the entry trigger only. */
  posted: GeneratedInt8;
  /** Σ pending holds debiting / crediting this account; maintained by the hold trigger only. */
  pending_debits: GeneratedInt8;
  pending_credits: GeneratedInt8;
  /** Number of entries on this account. */
  version: GeneratedInt8;
  allow_negative: ColumnType<boolean, boolean | undefined, never>;
  created_at: Generated<Date>;
}

export type LedgerTransactionKind =
  | 'top_up'
  | 'withdrawal'
  | 'withdrawal_reversal'
  | 'transfer'
  | 'escrow_hold'
  | 'escrow_release'
  | 'escrow_refund'
  | 'escrow_split'
  | 'hold_post'
  | 'reversal';

export interface LedgerTransactionsTable {
  id: Id;
  op_key: string;
  kind: LedgerTransactionKind;
  currency: string;
  external_ref: string | null;
  hold_id: string | null;
  contract_id: string | null;
  initiator_id: UserId | null;
  memo: string | null;
  created_at: Generated<Date>;
}

export interface LedgerEntriesTable {
  id: Id;
  transaction_id: string;
  account_id: string;
  amount: Int8;
  /** Set by the insert trigger. */
  account_version: ColumnType<string, never, never>;
  balance_after: ColumnType<string, never, never>;
  created_at: Generated<Date>;
}

export type LedgerHoldStatus = 'pending' | 'posted' | 'voided';

export interface LedgerHoldsTable {
  id: Id;
  op_key: string;
  reason: string;
  debit_account_id: string;
  credit_account_id: string;
  amount: Int8;
  currency: string;
  status: ColumnType<LedgerHoldStatus, undefined, LedgerHoldStatus>;
  created_at: Generated<Date>;
  resolved_at: ColumnType<Date | null, undefined, Date>;
}

export type EscrowStatus = 'held' | 'released' | 'refunded' | 'split';

export interface LedgerEscrowsTable {
  contract_id: string;
  account_id: string;
  hirer_id: UserId;
  worker_id: UserId;
  amount: Int8;
  currency: string;
  status: ColumnType<EscrowStatus, undefined, EscrowStatus>;
  hold_transaction_id: string;
  resolution_transaction_id: ColumnType<string | null, undefined, string>;
  created_at: Generated<Date>;
  resolved_at: ColumnType<Date | null, undefined, Date>;
}

export interface IdempotencyKeysTable {
  user_id: UserId;
  key: string;
  scope: string;
  request_hash: string;
  response_status: number | null;
  response_body: unknown;
  created_at: Generated<Date>;
  completed_at: Date | null;
}

export type PaymentKind = 'top_up' | 'withdrawal';
export type PaymentStatus = 'pending' | 'succeeded' | 'failed';

/** Migration 0005. */
export interface PaymentsTable {
  id: Generated<string>;
  user_id: UserId;
  kind: PaymentKind;
  status: ColumnType<PaymentStatus, PaymentStatus | undefined, PaymentStatus>;
  amount: Int8;
  currency: string;
  instrument: string;
  provider_ref: string | null;
  submitted_at: Date | null;
  /** When the payment was first handed to the provider (migration 0027); null: never sent. */
  submit_attempted_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  failure_code: string | null;
  hold_id: string | null;
  transaction_id: string | null;
  reversal_transaction_id: string | null;
  created_at: Generated<Date>;
  settled_at: Date | null;
}

export interface ProviderEventsTable {
  id: string;
  type: string;
  payment_id: string | null;
  outcome: string;
  received_at: Generated<Date>;
  /** Migration 0006: the event as received; null for older rows. */
  payload: ColumnType<unknown, Record<string, unknown> | null | undefined, never>;
}
