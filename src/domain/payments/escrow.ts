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
  type AccountRow,
  type EscrowRow,
  ensureAccounts,
  findEscrow,
  findHold,
  findTransaction,
  insertEscrow,
  insertTransaction,
  lockAccounts,
  lockEscrow,
  lockHold,
  resolveEscrow,
} from '../../db/repositories/ledger.repo.js';
import type { LedgerTransactionKind } from '../../db/tables/ledger.table.js';
import { AppError, isAppError } from '../../platform/errors.js';
import {
  compareIds,
  createHoldIn,
  type PaymentsDeps,
  PaymentsEvent,
  type PostedTransaction,
  postHoldIn,
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
import { assertNotLocked } from './wallet-service.js';

export interface EscrowHoldInput {
  readonly contractId: string;
  readonly hirerId: UserId;
  readonly workerId: UserId;
  readonly amount: bigint;
  /**
   * The currency `amount` is priced in (the job's). Escrow holds the platform's (CURRENCY) from the
   * hirer's wallet of that currency: a price in another one (a job posted before CURRENCY changed,
   * or by an api configured apart) is refused, CONFLICT `reason: CURRENCY_MISMATCH`, never held as
   * the same number in CURRENCY (a silent 1:1 conversion). Absent: priced in CURRENCY.
   */
  readonly currency?: string;
}

const holdKeys = (input: EscrowHoldInput, currency: string): AccountKey[] => [
  { kind: 'wallet', userId: input.hirerId, currency },
  { kind: 'escrow', contractId: input.contractId, currency },
];

/**
 * escrow.hold inside the caller's transaction (the marketplace's accept-bid transaction): the
 * hirer's wallet pays `amount` into the contract's escrow account. Holding the same contract again
 * with the same parties and amount returns the first hold; with others it is CONFLICT.
 * INSUFFICIENT_FUNDS (with the shortfall) when the hirer's available balance does not cover it;
 * UNAUTHORIZED when the hirer's account is locked (its row read FOR SHARE: `assertNotLocked`).
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
  if (input.currency !== undefined && input.currency !== currency) {
    throw new AppError('CONFLICT', `the price is in ${input.currency}; escrow holds ${currency}`, {
      details: { reason: 'CURRENCY_MISMATCH', currency: input.currency, platformCurrency: currency },
    });
  }
  // The hirer's money moves: an accept authenticated just before an admin locked the hirer is
  // refused 401 (as a transfer is, wallet-service.ts), not left funding a contract after the lock.
  await assertNotLocked(trx, input.hirerId);
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
    contractId: input.contractId,
    hirerId: input.hirerId,
    workerId: input.workerId,
    amount: input.amount,
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
      // A replay of a resolution that parked a share recorded that share in the escrow account.
      const parkedPlan =
        previous === undefined
          ? undefined
          : await parkedPlanOf(
              trx,
              escrow,
              entries,
              new Map([
                [worker.id, escrow.workerId],
                [hirer.id, escrow.hirerId],
              ]),
            );
      if (
        escrow.status === status &&
        previous !== undefined &&
        (sameEffect(previous.entries, entries) ||
          (parkedPlan !== undefined && sameEffect(previous.entries, parkedPlan)))
      ) {
        return { transactionId: previous.id, replayed: true, ...payout };
      }
      throw new AppError('CONFLICT', `the escrow was already ${escrow.status}`, {
        details: { contractId, status: escrow.status },
      });
    }

    const accounts = await lockAccounts(trx, entries.map((entry) => entry.accountId).sort(compareIds));
    // A party's wallet with no room for its share under the balance limit (2^53 − 1) does not hold
    // the contract up: that share is parked (see `parkShares`), the rest moves now.
    const { journal, parked } = parkShares(entries, accounts, escrow, [worker.id, hirer.id]);
    if (findBalanceOverflow(accounts, netDeltas(journal)) !== undefined) throw balanceLimitReached(currency);
    const transactionId = await insertTransaction(trx, {
      opKey: `escrow:${action}:${contractId}`,
      kind,
      currency,
      contractId,
      entries: journal,
    });
    for (const share of parked) {
      const userId = share.accountId === worker.id ? escrow.workerId : escrow.hirerId;
      await createHoldIn(trx, {
        opKey: parkedEscrowKey(contractId, userId),
        reason: ESCROW_PAYOUT_PARKED_REASON,
        debitAccountId: escrow.accountId,
        creditAccountId: share.accountId,
        amount: share.amount,
        currency,
      });
    }
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
          // The parties whose share is parked (their wallet at the balance limit): credited later.
          ...(parked.length === 0
            ? {}
            : {
                parkedUserIds: parked.map((share) =>
                  share.accountId === worker.id ? escrow.workerId : escrow.hirerId,
                ),
              }),
        },
      },
    ]);
    return { transactionId, replayed: false, ...payout };
  });
}

/** `reason` of the pending hold that parks a party's escrow share its wallet had no room for. */
export const ESCROW_PAYOUT_PARKED_REASON = 'escrow_payout_parked';

const PARKED_ESCROW_PREFIX = 'escrow:parked:';

const parkedEscrowKey = (contractId: string, userId: string) =>
  `${PARKED_ESCROW_PREFIX}${contractId}:${userId}`;

/** The contract a parked escrow share's hold belongs to (from its operation key), or undefined. */
export function contractOfParkedEscrowKey(opKey: string): string | undefined {
  if (!opKey.startsWith(PARKED_ESCROW_PREFIX)) return undefined;
  const contractId = opKey.slice(PARKED_ESCROW_PREFIX.length).split(':')[0];
  return contractId === undefined || contractId === '' ? undefined : contractId;
}

type Entry = { readonly accountId: string; readonly amount: bigint };

/** The resolution's journal with the `parked` shares kept in the escrow account (one entry). */
function journalParking(entries: readonly Entry[], parked: readonly Entry[], escrowAccountId: string) {
  if (parked.length === 0) return [...entries];
  const total = parked.reduce((sum, share) => sum + share.amount, 0n);
  return [
    ...entries.filter((entry) => !parked.includes(entry)),
    { accountId: escrowAccountId, amount: total },
  ];
}

/**
 * The wallet shares of an escrow resolution whose wallet has no room for them under the balance
 * limit, and the journal that moves the rest. A parked share stays in the contract's escrow account,
 * reserved for its wallet by a pending hold (reason `escrow_payout_parked`: the wallet's pending
 * credits), so the escrow is resolved and its contract settled now, and the reconciler posts the
 * hold into the wallet once it has room (`postParkedEscrowShare`). Refusing instead left the escrow
 * held and its task failing on every reconcile pass for good.
 */
function parkShares(
  entries: readonly Entry[],
  accounts: ReadonlyMap<string, AccountRow>,
  escrow: EscrowRow,
  walletIds: readonly string[],
): { journal: Entry[]; parked: Entry[] } {
  const parked = entries.filter(
    (entry) =>
      walletIds.includes(entry.accountId) &&
      entry.amount > 0n &&
      findBalanceOverflow(accounts, new Map([[entry.accountId, entry.amount]])) !== undefined,
  );
  return { journal: journalParking(entries, parked, escrow.accountId), parked };
}

/** For a replay: the journal of the first resolution if it parked shares (their holds exist). */
async function parkedPlanOf(
  trx: Transaction<Database>,
  escrow: EscrowRow,
  entries: readonly Entry[],
  wallets: ReadonlyMap<string, string>,
): Promise<Entry[] | undefined> {
  const parked: Entry[] = [];
  for (const entry of entries) {
    const userId = wallets.get(entry.accountId);
    if (userId === undefined) continue;
    const hold = await findHold(trx, { opKey: parkedEscrowKey(escrow.contractId, userId) });
    if (hold !== undefined && hold.creditAccountId === entry.accountId && hold.amount === entry.amount) {
      parked.push(entry);
    }
  }
  return parked.length === 0 ? undefined : journalParking(entries, parked, escrow.accountId);
}

/**
 * Posts a parked escrow share into its wallet (the reconciler, every pass): `posted` (a journal
 * transaction of the escrow's resolution kind, naming the contract, so the wallet's history shows
 * the release or refund), `parked` while the wallet still has no room, `gone` when nothing is parked
 * under this hold (posted meanwhile). `userId` is the wallet's owner, to tell their sockets.
 */
export async function postParkedEscrowShare(
  deps: Pick<PaymentsDeps, 'db' | 'clock' | 'log'>,
  holdId: string,
): Promise<{ outcome: 'posted' | 'parked' | 'gone'; userId?: UserId }> {
  return runLedgerTransaction(deps, async (trx) => {
    const hold = await lockHold(trx, holdId);
    if (hold === undefined || hold.status !== 'pending' || hold.reason !== ESCROW_PAYOUT_PARKED_REASON) {
      return { outcome: 'gone' };
    }
    const contractId = contractOfParkedEscrowKey(hold.opKey);
    const escrow = contractId === undefined ? undefined : await findEscrow(trx, contractId);
    if (escrow === undefined || escrow.status === 'held')
      throw new Error(`parked hold ${holdId} has no resolved escrow`);
    const userId = hold.opKey.endsWith(`:${escrow.workerId}`) ? escrow.workerId : escrow.hirerId;
    const posted = await postHoldIn(trx, deps, {
      holdId,
      kind: RESOLUTIONS[ACTION_OF_STATUS[escrow.status]].kind,
      contractId: escrow.contractId,
      memo: `parked escrow share of contract ${escrow.contractId}`,
    }).catch((error: unknown) => {
      if (isAppError(error) && error.details?.reason === 'BALANCE_LIMIT') return undefined;
      throw error;
    });
    return posted === undefined ? { outcome: 'parked', userId } : { outcome: 'posted', userId };
  });
}

const ACTION_OF_STATUS = { released: 'release', refunded: 'refund', split: 'split' } as const;

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
