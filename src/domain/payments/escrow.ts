/**
 * Escrow per contract: the hirer's money moves into the contract's escrow account when a bid is
 * accepted (hold), and leaves it exactly once — to the worker minus the platform fee (release), back
 * to the hirer (refund), or divided (split, for disputes). The escrow row is locked before the
 * accounts by every operation, so a release and a refund racing on one contract serialize: the first
 * wins, the second finds the escrow resolved (a no-op if it asked for the same outcome, CONFLICT
 * otherwise). The database refuses a second resolution as well (ledger_escrows_guard).
 */
import type { Transaction } from 'kysely';
import type { UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import {
  type AccountKey,
  type EscrowRow,
  ensureAccounts,
  findEscrow,
  findTransaction,
  insertEscrow,
  insertTransaction,
  lockAccounts,
  lockEscrow,
  resolveEscrow,
} from '../../db/repositories/ledger.repo.js';
import type { LedgerTransactionKind } from '../../db/tables/ledger.table.js';
import { AppError } from '../../platform/errors.js';
import {
  compareIds,
  type PaymentsDeps,
  PaymentsEvent,
  type PostedTransaction,
  runLedgerTransaction,
  writeEvents,
} from './ledger.js';
import {
  assertAmount,
  balanceLimitReached,
  findBalanceOverflow,
  findShortfall,
  insufficientFunds,
  netDeltas,
  planEscrowPayout,
  sameEffect,
} from './rules.js';

export interface EscrowHoldInput {
  readonly contractId: string;
  readonly hirerId: UserId;
  readonly workerId: UserId;
  readonly amount: bigint;
}

const holdKeys = (input: EscrowHoldInput, currency: string): AccountKey[] => [
  { kind: 'wallet', userId: input.hirerId, currency },
  { kind: 'escrow', contractId: input.contractId, currency },
];

/**
 * escrow.hold inside the caller's transaction (the marketplace's accept-bid transaction): the
 * hirer's wallet pays `amount` into the contract's escrow account. Holding the same contract again
 * with the same parties and amount returns the first hold; with others it is CONFLICT.
 * INSUFFICIENT_FUNDS (with the shortfall) when the hirer's available balance does not cover it.
 */
export async function holdEscrowIn(
  trx: Transaction<Database>,
  deps: Pick<PaymentsDeps, 'settings'>,
  input: EscrowHoldInput,
): Promise<PostedTransaction> {
  assertAmount(input.amount);
  if (input.hirerId === input.workerId)
    throw new AppError('VALIDATION_FAILED', 'the hirer cannot be the worker');
  const currency = deps.settings.currency;
  const [wallet, escrowAccount] = await ensureAccounts(trx, holdKeys(input, currency));
  if (wallet === undefined || escrowAccount === undefined) throw new Error('accounts missing');
  const accounts = await lockAccounts(trx, [wallet.id, escrowAccount.id].sort(compareIds));
  const existing = await findEscrow(trx, input.contractId);
  if (existing !== undefined) return replayHold(existing, input);
  const short = findShortfall(accounts, new Map([[wallet.id, -input.amount]]));
  if (short !== undefined) throw insufficientFunds(short.shortfall, currency);
  const transactionId = await insertTransaction(trx, {
    opKey: `escrow:hold:${input.contractId}`,
    kind: 'escrow_hold',
    currency,
    contractId: input.contractId,
    initiatorId: input.hirerId,
    entries: [
      { accountId: wallet.id, amount: -input.amount },
      { accountId: escrowAccount.id, amount: input.amount },
    ],
  });
  await insertEscrow(trx, {
    ...input,
    accountId: escrowAccount.id,
    currency,
    holdTransactionId: transactionId,
  });
  return { transactionId, replayed: false };
}

function replayHold(existing: EscrowRow, input: EscrowHoldInput): PostedTransaction {
  if (
    existing.hirerId !== input.hirerId ||
    existing.workerId !== input.workerId ||
    existing.amount !== input.amount
  ) {
    throw new AppError('CONFLICT', 'this contract already holds a different escrow', {
      details: { contractId: input.contractId },
    });
  }
  return { transactionId: existing.holdTransactionId, replayed: true };
}

/** escrow.hold in its own transaction. */
export async function holdEscrow(deps: PaymentsDeps, input: EscrowHoldInput): Promise<PostedTransaction> {
  assertAmount(input.amount);
  // Create the accounts first, outside the money transaction (see ensureAccounts).
  await ensureAccounts(deps.db, holdKeys(input, deps.settings.currency));
  return runLedgerTransaction(
    deps,
    (trx) => holdEscrowIn(trx, deps, input),
    async () => {
      const existing = await findEscrow(deps.db, input.contractId);
      return existing === undefined ? undefined : replayHold(existing, input);
    },
  );
}

type Resolution = { status: 'released' | 'refunded' | 'split'; kind: LedgerTransactionKind };

const RESOLUTIONS = {
  release: { status: 'released', kind: 'escrow_release' },
  refund: { status: 'refunded', kind: 'escrow_refund' },
  split: { status: 'split', kind: 'escrow_split' },
} as const satisfies Record<string, Resolution>;

const EVENT_BY_ACTION = {
  release: PaymentsEvent.escrowReleased,
  refund: PaymentsEvent.escrowRefunded,
  split: PaymentsEvent.escrowSplit,
} as const satisfies Record<keyof typeof RESOLUTIONS, PaymentsEvent>;

export interface EscrowResolution extends PostedTransaction {
  readonly toWorker: bigint;
  readonly fee: bigint;
  readonly toHirer: bigint;
}

async function resolve(
  deps: PaymentsDeps,
  contractId: string,
  action: keyof typeof RESOLUTIONS,
  workerShareOf: (escrow: EscrowRow) => bigint,
): Promise<EscrowResolution> {
  const { status, kind } = RESOLUTIONS[action];
  const first = await findEscrow(deps.db, contractId);
  if (first === undefined)
    throw new AppError('NOT_FOUND', 'no escrow for this contract', { details: { contractId } });
  const currency = first.currency;
  const [worker, hirer, fees] = await ensureAccounts(deps.db, [
    { kind: 'wallet', userId: first.workerId, currency },
    { kind: 'wallet', userId: first.hirerId, currency },
    { kind: 'platform_fees', currency },
  ]);
  if (worker === undefined || hirer === undefined || fees === undefined) throw new Error('accounts missing');

  return runLedgerTransaction(deps, async (trx) => {
    const escrow = await lockEscrow(trx, contractId);
    if (escrow === undefined) throw new Error(`escrow of ${contractId} vanished`);
    const payout = planEscrowPayout(escrow.amount, workerShareOf(escrow), deps.settings.platformFeeBps);
    const entries = [
      { accountId: escrow.accountId, amount: -escrow.amount },
      { accountId: worker.id, amount: payout.toWorker },
      { accountId: fees.id, amount: payout.fee },
      { accountId: hirer.id, amount: payout.toHirer },
    ].filter((entry) => entry.amount !== 0n);

    if (escrow.status !== 'held') {
      // Resolved before: the same outcome again is a no-op; any other outcome lost the race.
      const previous =
        escrow.resolutionTransactionId === null
          ? undefined
          : await findTransaction(trx, escrow.resolutionTransactionId);
      if (escrow.status === status && previous !== undefined && sameEffect(previous.entries, entries)) {
        return { transactionId: previous.id, replayed: true, ...payout };
      }
      throw new AppError('CONFLICT', `the escrow was already ${escrow.status}`, {
        details: { contractId, status: escrow.status },
      });
    }

    const accounts = await lockAccounts(trx, entries.map((entry) => entry.accountId).sort(compareIds));
    if (findBalanceOverflow(accounts, netDeltas(entries)) !== undefined) throw balanceLimitReached(currency);
    const transactionId = await insertTransaction(trx, {
      opKey: `escrow:${action}:${contractId}`,
      kind,
      currency,
      contractId,
      entries,
    });
    await resolveEscrow(trx, contractId, { status, transactionId, at: deps.clock.now() });
    await writeEvents(trx, transactionId, [
      {
        type: EVENT_BY_ACTION[action],
        payload: {
          contractId,
          hirerId: escrow.hirerId,
          workerId: escrow.workerId,
          toWorker: Number(payout.toWorker),
          fee: Number(payout.fee),
          toHirer: Number(payout.toHirer),
        },
      },
    ]);
    return { transactionId, replayed: false, ...payout };
  });
}

/** escrow.release: the whole escrow to the worker, minus PLATFORM_FEE_BPS to the fee account. */
export const releaseEscrow = (deps: PaymentsDeps, contractId: string) =>
  resolve(deps, contractId, 'release', (escrow) => escrow.amount);

/** escrow.refund: the whole escrow back to the hirer's wallet, no fee. */
export const refundEscrow = (deps: PaymentsDeps, contractId: string) =>
  resolve(deps, contractId, 'refund', () => 0n);

/**
 * escrow.split (dispute resolution): `toWorker` (before the fee) to the worker, `toHirer` back to the
 * hirer; the two must add up to the held amount exactly.
 */
export async function splitEscrow(
  deps: PaymentsDeps,
  input: { contractId: string; toWorker: bigint; toHirer: bigint },
): Promise<EscrowResolution> {
  if (input.toWorker < 0n || input.toHirer < 0n) {
    throw new AppError('VALIDATION_FAILED', 'split amounts must not be negative');
  }
  return resolve(deps, input.contractId, 'split', (escrow) => {
    if (input.toWorker + input.toHirer !== escrow.amount) {
      throw new AppError('VALIDATION_FAILED', 'the split must add up to the held amount', {
        details: { held: Number(escrow.amount) },
      });
    }
    return input.toWorker;
  });
}
