/**
 * A wallet's history for GET /v1/wallet/transactions: newest first, each line with its reason and
 * counterparty, keyset-paged by an opaque cursor. A user who never used the wallet sees an empty
 * page (never NOT_FOUND).
 */
import type { UserId } from '../../../protocol/src/ids.js';
import { findWallet, walletHistory } from '../../db/repositories/ledger.repo.js';
import type { LedgerTransactionKind } from '../../db/tables/ledger.table.js';
import { AppError } from '../../platform/errors.js';
import type { PaymentsDeps } from './ledger.js';

/** Why money moved, as clients see it. */
export const WalletReason = {
  top_up: 'top-up',
  withdrawal: 'withdrawal',
  withdrawal_reversal: 'withdrawal-reversal',
  transfer: 'transfer',
  escrow_hold: 'escrow-hold',
  escrow_release: 'escrow-release',
  escrow_refund: 'escrow-refund',
  escrow_split: 'escrow-split',
  hold_post: 'hold',
  reversal: 'reversal',
} as const satisfies Record<LedgerTransactionKind, string>;
export type WalletReason = (typeof WalletReason)[keyof typeof WalletReason];

export interface WalletLine {
  readonly transactionId: string;
  readonly reason: WalletReason;
  /** Signed minor units: negative when money left the wallet. */
  readonly amount: bigint;
  readonly balanceAfter: bigint;
  readonly counterpartyId: UserId | null;
  readonly contractId: string | null;
  readonly note: string | null;
  readonly createdAt: Date;
}

const ENTRY_ID = /^[1-9][0-9]{0,18}$/;

export function encodeHistoryCursor(entryId: string): string {
  return Buffer.from(`e${entryId}`).toString('base64url');
}

/** @throws AppError VALIDATION_FAILED for a cursor this API did not make. */
export function decodeHistoryCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const id = text.slice(1);
  if (text.startsWith('e') && ENTRY_ID.test(id) && BigInt(id) <= 9_223_372_036_854_775_807n) return id;
  throw new AppError('VALIDATION_FAILED', 'invalid cursor', {
    details: { errors: [{ path: 'querystring.cursor', message: 'is not a cursor from this API' }] },
  });
}

export async function walletTransactions(
  deps: Pick<PaymentsDeps, 'db' | 'settings'>,
  userId: UserId,
  page: { readonly cursor: string | undefined; readonly limit: number },
): Promise<{ data: WalletLine[]; nextCursor: string | null }> {
  const beforeEntryId = decodeHistoryCursor(page.cursor);
  const wallet = await findWallet(deps.db, userId, deps.settings.currency);
  if (wallet === undefined) return { data: [], nextCursor: null };
  const rows = await walletHistory(deps.db, wallet.id, { beforeEntryId, limit: page.limit });
  const pageRows = rows.slice(0, page.limit);
  const last = pageRows[pageRows.length - 1];
  return {
    data: pageRows.map((row) => ({
      transactionId: row.transactionId,
      reason: WalletReason[row.kind],
      amount: row.amount,
      balanceAfter: row.balanceAfter,
      counterpartyId: row.counterpartyId,
      contractId: row.contractId,
      note: row.memo,
      createdAt: row.createdAt,
    })),
    nextCursor: rows.length > page.limit && last !== undefined ? encodeHistoryCursor(last.entryId) : null,
  };
}
