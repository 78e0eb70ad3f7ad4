/**
 * The wallet operations the REST edge calls (issue 11 §4), wired to their ports once per process:
 * a user's balance and history (an unused wallet reads 0 and an empty page, never 404), a transfer
 * to another user inside the caller's idempotency transaction, and the ledger audit for admins.
 * Amounts leave here as JSON-safe numbers (every amount is capped at 2^53 − 1 on the way in).
 */
import type { Transaction } from 'kysely';
import type { UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import { findTransactionByOpKey } from '../../db/repositories/ledger.repo.js';
import { findUserById, lockedAtShared } from '../../db/repositories/users.repo.js';
import type { Bus } from '../../platform/bus/bus.js';
import { WALLET_CHANGED_TOPIC } from '../../platform/bus/topics.js';
import { AppError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import { type AuditReport, auditLedger } from './audit.js';
import { walletTransactions } from './history.js';
import type { PaymentsDeps } from './ledger.js';
import { MAX_AMOUNT } from './rules.js';
import { transferIn, walletBalanceWithParked } from './wallet.js';

export { WALLET_CHANGED_TOPIC };

/** Announces committed balance changes; never throws (a missed push is repaired by the next one or by REST). */
export type AnnounceWalletChange = (userIds: readonly string[]) => void;

export function walletAnnouncer(bus: Bus, log: Pick<Logger, 'warn'>): AnnounceWalletChange {
  return (userIds) => {
    if (userIds.length === 0) return;
    bus.publish(WALLET_CHANGED_TOPIC, { userIds: [...new Set(userIds)] }).catch((error: unknown) => {
      log.warn({ err: error }, 'wallet change not announced');
    });
  };
}

export interface WalletView {
  readonly currency: string;
  readonly available: number;
  readonly pending: number;
  readonly posted: number;
  /** Money parked for the user (their wallet at its balance limit): credited once it has room. */
  readonly parked: number;
}

export interface TransferView {
  readonly id: string;
  readonly toUserId: UserId;
  readonly amount: number;
  readonly note: string | null;
}

export interface AuditView {
  readonly ranAt: string;
  readonly clean: boolean;
  readonly findings: AuditReport['findings'];
}

export interface WalletApi {
  readonly balance: (userId: UserId) => Promise<WalletView>;
  readonly history: (
    userId: UserId,
    page: { cursor: string | undefined; limit: number },
  ) => Promise<Awaited<ReturnType<typeof walletTransactions>>>;
  /**
   * Inside the caller's (idempotency) transaction. NOT_FOUND for an unknown or locked recipient (a
   * locked one still gets the first transfer's answer on a retry of a transfer made under `opKey`),
   * VALIDATION_FAILED for yourself, INSUFFICIENT_FUNDS (409, with the shortfall) when not covered,
   * UNAUTHORIZED when the sender's account was locked (`assertNotLocked`).
   */
  readonly transferIn: (
    trx: Transaction<Database>,
    fromUserId: UserId,
    input: { toUserId: UserId; amount: number; note?: string | undefined },
    opKey: string,
  ) => Promise<TransferView>;
  /** Audits the ledger now (read-only, one snapshot) for the admin endpoint. */
  readonly audit: () => Promise<AuditView>;
}

/**
 * Refuses a locked account's money request (401, as the auth layer would once it knows): the user's
 * row is read FOR SHARE, so an admin's lock (an UPDATE of that row) waits for this transaction, or
 * this transaction sees the lock it waited for. The auth layer alone lets a request authenticated
 * just before the lock through (other nodes see a lock within about a second), and its transfer or
 * withdrawal moved the money of an account an admin had just stopped.
 */
export async function assertNotLocked(trx: Transaction<Database>, userId: UserId): Promise<void> {
  if ((await lockedAtShared(trx, userId)) != null) {
    throw new AppError('UNAUTHORIZED', 'this account is locked');
  }
}

export function createWalletApi(deps: PaymentsDeps): WalletApi {
  return {
    balance: async (userId) => {
      const balance = await walletBalanceWithParked(deps, userId);
      return {
        currency: balance.currency,
        available: Number(balance.available),
        pending: Number(balance.pending),
        posted: Number(balance.posted),
        // Capped for JSON: several parked credits may add up past 2^53 − 1 (each is at most that).
        parked: Number(balance.parked > MAX_AMOUNT ? MAX_AMOUNT : balance.parked),
      };
    },
    history: (userId, page) => walletTransactions(deps, userId, page),
    transferIn: async (trx, fromUserId, input, opKey) => {
      // The sender's row FOR SHARE, as a bid's (marketplace/bids.ts): a transfer authenticated just
      // before an admin's lock (other nodes learn of it within about a second) either commits first
      // or is refused here — a locked account moves no money out.
      await assertNotLocked(trx, fromUserId);
      const recipient = await findUserById(trx, input.toUserId);
      // A locked account receives nothing, and is answered like one that does not exist — unless
      // this is a retry of a transfer already made under this key (its record forgotten after 24 h,
      // the recipient locked since): the ledger answers it with the first transfer (or 422 for
      // another body), never a 404 that says the money did not move when it did.
      if (
        recipient === undefined ||
        (recipient.locked_at !== null && (await findTransactionByOpKey(trx, opKey)) === undefined)
      ) {
        throw new AppError('NOT_FOUND', 'no such user', {
          details: { errors: [{ path: 'body.toUserId', message: 'no such user' }] },
        });
      }
      const posted = await transferIn(trx, deps, {
        opKey,
        fromUserId,
        toUserId: input.toUserId,
        amount: BigInt(input.amount),
        memo: input.note ?? null,
      });
      return {
        id: posted.transactionId,
        toUserId: input.toUserId,
        amount: input.amount,
        note: input.note ?? null,
      };
    },
    audit: async () => {
      const report = await auditLedger(deps.db);
      return {
        ranAt: new Date(deps.clock.now()).toISOString(),
        clean: report.findings.length === 0,
        findings: report.findings,
      };
    },
  };
}
