/**
 * Contracts (issue 12 §3): accepting a bid starts one, and `fire` moves it — the only two ways a
 * contract row changes. Both run in the caller's transaction (the REST edge's Idempotency-Key
 * transaction, or a timer task's), read the decision from the pure transition table
 * (contract-process.ts) and apply its effects as data in that one transaction:
 * the contract row (optimistic "where version = $seen" on the locked row), its transition log row,
 * the job's status, a system message in the job room, and the outbox event. What must happen after
 * the commit (escrow release / refund / split on the payments queue, the auto-approve and
 * review-window timers, live pushes) is driven by that outbox event, so a crash between the commit
 * and those steps loses nothing: the relay runs them from the event.
 */
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { BidId, ContractId, JobId, RoomId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import { withSerializationRetry } from '../../db/errors.js';
import { findBid, lockBid, rejectPendingBids, updateBidIfVersion } from '../../db/repositories/bids.repo.js';
import {
  appendRoomMessageIn,
  applyTransition,
  type ContractRow,
  type ContractTransitionRow,
  contractsOfUser,
  findContract,
  findTransition,
  insertContract,
  insertTransition,
  lockContract,
  transitionsOf,
} from '../../db/repositories/contracts.repo.js';
import { lockJob, setJobStatusIf, updateJobIfVersion } from '../../db/repositories/jobs.repo.js';
import { insertOutboxEvent } from '../../db/repositories/outbox.repo.js';
import { addRoomMembers, insertRoom } from '../../db/repositories/rooms.repo.js';
import { lockedAtShared } from '../../db/repositories/users.repo.js';
import type { ContractActorKind, ContractStateColumn } from '../../db/tables/marketplace.table.js';
import { AppError, isAppError } from '../../platform/errors.js';
import { decodeCursor, pageOf } from '../pagination.js';
import { holdEscrowIn } from '../payments/escrow.js';
import {
  availableEvents,
  CONTRACT_START,
  type ContractActor,
  type ContractEvent,
  type ContractParty,
  type ContractState,
  type Decision,
  decide,
  decisionErrorToAppError,
  type TransitionEffects,
  transitionFor,
} from './contract-process.js';
import { type ContractEventPayload, MarketplaceEvent } from './events.js';
import type { MarketplaceDeps } from './jobs.js';
import { type Actor, firstChars } from './rules.js';

export interface ContractSettings {
  readonly currency: string;
  readonly platformFeeBps: number;
  /** CONTRACT_AUTO_APPROVE_S in ms: a delivery is approved on the hirer's behalf after it. */
  readonly autoApproveMs: number;
  /** REVIEW_WINDOW_S in ms: how long after the end both parties may review. */
  readonly reviewWindowMs: number;
}

export interface ContractDeps extends Omit<MarketplaceDeps, 'settings'> {
  readonly settings: ContractSettings;
}

export interface Contract {
  readonly id: ContractId;
  readonly jobId: JobId;
  readonly bidId: BidId;
  readonly hirerId: UserId;
  readonly workerId: UserId;
  readonly title: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly deliveryDays: number;
  readonly state: ContractState;
  readonly version: number;
  readonly deliveries: number;
  readonly roomId: RoomId | null;
  readonly dueAt: Date;
  readonly deliveredAt: Date | null;
  readonly autoApproveAt: Date | null;
  readonly completedAt: Date | null;
  readonly cancelledAt: Date | null;
  readonly disputedAt: Date | null;
  readonly resolvedAt: Date | null;
  readonly reviewDeadlineAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface ContractTransition {
  readonly version: number;
  readonly event: string;
  readonly from: ContractState | null;
  readonly to: ContractState;
  readonly actor: ContractActorKind;
  readonly actorId: UserId | null;
  readonly payload: Record<string, unknown>;
  readonly at: Date;
}

export const toContract = (row: ContractRow): Contract => ({
  id: row.id,
  jobId: row.job_id,
  bidId: row.bid_id,
  hirerId: row.hirer_id,
  workerId: row.worker_id,
  title: row.title,
  amount: BigInt(row.amount),
  currency: row.currency,
  deliveryDays: row.delivery_days,
  state: row.state,
  version: row.version,
  deliveries: row.deliveries,
  roomId: row.room_id,
  dueAt: row.due_at,
  deliveredAt: row.delivered_at,
  autoApproveAt: row.auto_approve_at,
  completedAt: row.completed_at,
  cancelledAt: row.cancelled_at,
  disputedAt: row.disputed_at,
  resolvedAt: row.resolved_at,
  reviewDeadlineAt: row.review_deadline_at,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

/**
 * A transition as `viewer` may see it: who moderates is not public (profiles never show `admin`),
 * so an admin's resolve names its admin to admins only; the parties see `actor: "admin"` and no id.
 * Otherwise a dispute between two accounts of one's own would point out a moderator's account.
 */
const toTransition = (row: ContractTransitionRow, viewer: Actor): ContractTransition => ({
  version: row.version,
  event: row.event,
  from: row.from_state,
  to: row.to_state,
  actor: row.actor_kind,
  actorId: row.actor_kind === 'admin' && !isAdmin(viewer) ? null : row.actor_id,
  payload: row.payload,
  at: row.created_at,
});

/** The texts of the job room's system messages, by the table's `roomMessage` key. */
const ROOM_TEXT: Readonly<Record<string, string>> = {
  'contract.started': 'Contract started: the amount is held in escrow.',
  'contract.delivered': 'The work was delivered.',
  'contract.changes_requested': 'Changes were requested.',
  'contract.approved': 'The work was approved: the escrow goes to the worker.',
  'contract.auto_approved': 'The delivery was approved automatically: the escrow goes to the worker.',
  'contract.cancelled': 'The contract was cancelled: the escrow goes back to the hirer.',
  'contract.disputed': 'A dispute was opened: an administrator will resolve it.',
  'contract.resolved': 'The dispute was resolved by an administrator.',
};

const MAX_NOTE = 2000;

/** What the caller adds to a transition: a note (shown in the room) and, for resolve, the split. */
export interface TransitionInput {
  readonly message?: string;
  readonly split?: { readonly toWorker: bigint; readonly toHirer: bigint };
  /** If-Match: the version the caller saw; another version → 409 VERSION_MISMATCH. */
  readonly expectedVersion?: number;
}

/** Who fires an event: a signed-in user, or a timer task (which names the version it was set at). */
export type Firer =
  | { readonly kind: 'user'; readonly actor: Actor }
  | { readonly kind: 'timer'; readonly timerVersion: number };

const isAdmin = (actor: Actor) => actor.roles.includes('admin');

/**
 * The role the caller plays for this event: the first of hirer / worker / admin that they are and
 * the event allows; if none is allowed, the first they are (for the 403). Strangers: undefined (404).
 */
function roleOf(
  row: ContractRow,
  actor: Actor,
  allowed: readonly ContractActor[],
): ContractActor | undefined {
  const asParty = actingRoles(row, actor);
  return asParty.find((role) => allowed.includes(role)) ?? asParty[0];
}

/**
 * The parts the caller may act in: an admin who is a party acts as that party only, no deciding of
 * one's own dispute as its referee. (None: a stranger.)
 */
function actingRoles(row: ContractRow, actor: Actor): ContractActor[] {
  const roles = rolesOf(row, actor);
  return roles.some((role) => role !== 'admin') ? roles.filter((role) => role !== 'admin') : roles;
}

/** Every part the caller plays in this contract (none: a stranger). */
function rolesOf(row: ContractRow, actor: Actor): ContractActor[] {
  const roles: ContractActor[] = [];
  if (row.hirer_id === actor.userId) roles.push('hirer');
  if (row.worker_id === actor.userId) roles.push('worker');
  if (isAdmin(actor)) roles.push('admin');
  return roles;
}

const partyIds = (row: { hirer_id: UserId; worker_id: UserId }, parties: readonly ContractParty[]) =>
  parties.map((party) => (party === 'hirer' ? row.hirer_id : row.worker_id));

interface Applied {
  readonly row: ContractRow;
  readonly effects: TransitionEffects;
  readonly event: string;
  readonly from: ContractState | null;
  readonly actorKind: ContractActorKind;
  readonly actorId: UserId | null;
  readonly payload: Record<string, unknown>;
  readonly now: Date;
}

/** The effects every transition shares: log row, room message, outbox event. */
async function recordTransition(trx: Transaction<Database>, applied: Applied): Promise<void> {
  const { row, effects, now } = applied;
  await insertTransition(trx, {
    contractId: row.id,
    version: row.version,
    event: applied.event,
    from: applied.from,
    to: row.state,
    actorKind: applied.actorKind,
    actorId: applied.actorId,
    payload: applied.payload,
    now,
  });
  let roomSeq: number | undefined;
  if (row.room_id !== null) {
    const note = typeof applied.payload.message === 'string' ? applied.payload.message : '';
    const text = ROOM_TEXT[effects.roomMessage] ?? effects.roomMessage;
    const message = await appendRoomMessageIn(trx, {
      roomId: row.room_id,
      // messages.sender_id is a user: a timer speaks for the hirer it acts for; meta.system marks it.
      // So does an admin's resolve: the room's members (and the unread mails naming senders) must
      // not learn which account moderates (the transition log keeps the admin, shown to admins).
      senderId: applied.actorKind === 'admin' ? row.hirer_id : (applied.actorId ?? row.hirer_id),
      // Random, never derived from the contract: a party who could predict it could send a message
      // with that id first and make every attempt of the transition fail (blocking, say, the
      // auto-approve that pays the worker). The transition's own version check makes it once.
      clientMsgId: `system.${randomUUID()}`,
      body: note === '' ? text : `${text}\n\n${note}`,
      meta: {
        system: effects.roomMessage,
        contractId: row.id,
        event: applied.event,
        state: row.state,
        version: row.version,
      },
      now,
    });
    roomSeq = message.seq;
  }
  const payload: ContractEventPayload & Record<string, unknown> = {
    contractId: row.id,
    jobId: row.job_id,
    hirerId: row.hirer_id,
    workerId: row.worker_id,
    event: applied.event,
    from: applied.from,
    state: row.state,
    version: row.version,
    notify: partyIds(row, effects.notify),
    ...(row.room_id === null ? {} : { roomId: row.room_id }),
    ...(roomSeq === undefined ? {} : { roomSeq }),
    ...(effects.schedule === 'auto_approve' && row.auto_approve_at !== null
      ? { autoApproveAt: row.auto_approve_at.toISOString() }
      : {}),
    ...(effects.openReviews === true && row.review_deadline_at !== null
      ? { reviewDeadlineAt: row.review_deadline_at.toISOString() }
      : {}),
    ...(effects.escrow === 'release' || effects.escrow === 'refund' || effects.escrow === 'split'
      ? { escrow: effects.escrow }
      : {}),
  };
  await insertOutboxEvent(trx, effects.outbox, payload);
}

/**
 * POST /v1/bids/:id/accept, in the caller's transaction: the job (locked) must be open and the bid
 * pending; the hirer's wallet pays the bid's amount into escrow (INSUFFICIENT_FUNDS with the shortfall
 * otherwise, and nothing is changed), the other pending bids are rejected, the job goes in progress,
 * the job room is created with both parties, and the contract starts `active` at version 1.
 * Two accepts of one job serialize on the job row: the second finds it in progress (409).
 */
export async function acceptBidIn(
  trx: Transaction<Database>,
  deps: ContractDeps,
  actor: Actor,
  bidId: BidId,
  /**
   * If-Match, required: the bid version the hirer saw; another (the worker changed the amount or the
   * days since) → 409 VERSION_MISMATCH. Escrow holds only terms the hirer was shown.
   */
  expectedVersion: number,
): Promise<Contract> {
  const now = deps.clock.now();
  const seen = await findBid(trx, bidId);
  if (seen === undefined) throw new AppError('NOT_FOUND', 'no such bid');
  // Job first, then bid: the order every writer of both uses (bids lock their job FOR SHARE).
  const job = await lockJob(trx, seen.job_id, 'update');
  const bid = await lockBid(trx, bidId);
  if (job === undefined || bid === undefined) throw new AppError('NOT_FOUND', 'no such bid');
  const isHirer = job.hirer_id === actor.userId;
  if (!isHirer && bid.worker_id !== actor.userId && !isAdmin(actor)) {
    throw new AppError('NOT_FOUND', 'no such bid');
  }
  if (!isHirer) throw new AppError('FORBIDDEN', "only the job's hirer may accept a bid");
  // A job no longer open is the reason first, unless this very bid is the one it was given to (a
  // retried accept): the loser of two simultaneous accepts finds its bid rejected by the winner's,
  // and "the job is no longer open" is what explains that to the hirer.
  if (job.status !== 'open' && bid.status !== 'accepted') {
    throw new AppError('INVALID_TRANSITION', `cannot accept a bid on a job that is ${job.status}`, {
      details: { reason: 'JOB_NOT_OPEN', state: job.status, event: 'accept' },
    });
  }
  if (bid.status !== 'pending') {
    throw new AppError('INVALID_TRANSITION', `cannot accept a bid that is ${bid.status}`, {
      details: { reason: 'INVALID_TRANSITION', state: bid.status, event: 'accept' },
    });
  }
  // A bid no longer pending (or a job no longer open) cannot be accepted at any version: say so
  // first, as the more useful answer. A pending bid the worker changed since the hirer read it (the
  // amount or the days) is refused: escrow holds only what the hirer saw.
  if (expectedVersion !== bid.version) {
    throw new AppError('CONFLICT', `the bid is at version ${bid.version}`, {
      details: { reason: 'VERSION_MISMATCH', version: bid.version },
    });
  }
  // A locked worker (an admin ended their account's use) cannot be hired: their profile is gone
  // and nobody would deliver, while the escrow would hold the hirer's money.
  if ((await lockedAtShared(trx, bid.worker_id as UserId)) !== null) {
    throw new AppError('CONFLICT', "the worker's account is locked; this bid cannot be accepted", {
      details: { reason: 'WORKER_LOCKED' },
    });
  }
  const contractId = randomUUID() as ContractId;
  const amount = BigInt(bid.amount);
  const room = await insertRoom(trx, {
    kind: 'job',
    title: firstChars(job.title, 200),
    createdBy: job.hirer_id,
    directKey: null,
  });
  await addRoomMembers(trx, room.id, [job.hirer_id, bid.worker_id]);
  const row = await insertContract(trx, {
    id: contractId,
    jobId: job.id,
    bidId: bid.id,
    hirerId: job.hirer_id,
    workerId: bid.worker_id,
    title: job.title,
    amount,
    currency: job.currency,
    deliveryDays: bid.delivery_days,
    roomId: room.id,
    dueAt: new Date(now.getTime() + bid.delivery_days * 86_400_000),
    now,
  });
  await holdEscrowIn(trx, deps, {
    contractId,
    hirerId: job.hirer_id,
    workerId: bid.worker_id,
    amount,
    currency: job.currency,
  });
  const rejected = await rejectPendingBids(trx, job.id, now, bid.id);
  const accepted = await updateBidIfVersion(
    trx,
    bid.id,
    bid.version,
    'pending',
    { status: 'accepted', decidedAt: now },
    now,
  );
  const started = await updateJobIfVersion(trx, job.id, job.version, 'open', { status: 'in_progress' }, now);
  if (accepted === undefined || started === undefined) {
    // Both rows are locked by this transaction: only a bug can get here.
    throw new Error('bid or job changed under their locks');
  }
  await recordTransition(trx, {
    row,
    effects: CONTRACT_START.effects,
    event: CONTRACT_START.event,
    from: null,
    actorKind: 'hirer',
    actorId: actor.userId,
    payload: { bidId: bid.id, amount: amount.toString() },
    now,
  });
  await insertOutboxEvent(trx, MarketplaceEvent.bidAccepted, {
    bidId: bid.id,
    jobId: job.id,
    workerId: bid.worker_id,
    hirerId: job.hirer_id,
    contractId,
    notify: [bid.worker_id],
  });
  for (const other of rejected) {
    await insertOutboxEvent(trx, MarketplaceEvent.bidRejected, {
      bidId: other.id,
      jobId: job.id,
      workerId: other.worker_id,
      reason: 'another_bid_accepted',
      notify: [other.worker_id],
    });
  }
  return toContract(row);
}

type Outcome =
  | { readonly ok: true; readonly contract: Contract }
  | { readonly ok: false; readonly error: Extract<Decision, { ok: false }>['error'] };

/**
 * Fires `event` on a contract in the caller's transaction. Users who are neither party nor admin
 * get 404; the transition table decides the rest (409 INVALID_TRANSITION naming the state, 403 for
 * the wrong party, 400 for a split that does not add up). A refusal is returned, not thrown, so a
 * timer can treat "the state moved on" as done.
 */
async function transitionIn(
  trx: Transaction<Database>,
  deps: ContractDeps,
  firer: Firer,
  contractId: ContractId,
  event: ContractEvent,
  input: TransitionInput,
): Promise<Outcome> {
  const now = deps.clock.now();
  const row = await lockContract(trx, contractId);
  if (row === undefined) throw new AppError('NOT_FOUND', 'no such contract');
  let actorKind: ContractActor;
  let actorId: UserId | null = null;
  if (firer.kind === 'timer') {
    actorKind = 'timer';
    // A timer run before its time (a clock ahead elsewhere, a delayed task promoted by hand) must
    // not approve: the hirer's review period is the point. Thrown, so the task is tried again later.
    if (
      row.version === firer.timerVersion &&
      row.state === 'delivered' &&
      row.auto_approve_at !== null &&
      row.auto_approve_at.getTime() > now.getTime()
    ) {
      throw new AppError('CONFLICT', 'the auto-approve timer fired before its time', {
        details: { reason: 'TIMER_EARLY', dueAt: row.auto_approve_at.toISOString() },
      });
    }
  } else {
    const allowed = transitionFor(row.state, event)?.actors ?? [];
    const role = roleOf(row, firer.actor, allowed);
    if (role === undefined) throw new AppError('NOT_FOUND', 'no such contract');
    actorKind = role;
    actorId = firer.actor.userId;
  }
  if (input.expectedVersion !== undefined && input.expectedVersion !== row.version) {
    throw new AppError('CONFLICT', `the contract is at version ${row.version}`, {
      details: { reason: 'VERSION_MISMATCH', version: row.version, state: row.state },
    });
  }
  const decision = decide(row.state, event, actorKind, {
    version: row.version,
    deliveries: row.deliveries,
    amount: BigInt(row.amount),
    // By the clock, not by the timer task's timing: once now ≥ auto_approve_at the delivery counts
    // as approved, so the hirer can no longer ask for changes or dispute (409 INVALID_TRANSITION,
    // guard beforeAutoApprove); the timer task, or the hirer's approve, completes it.
    autoApproveAt: row.auto_approve_at,
    now,
    ...(firer.kind === 'timer' ? { timerVersion: firer.timerVersion } : {}),
    ...(input.split === undefined ? {} : { split: input.split }),
  });
  if (!decision.ok) return { ok: false, error: decision.error };
  const effects = decision.effects;
  const updated = await applyTransition(
    trx,
    row.id,
    row.version,
    {
      state: decision.to as ContractStateColumn,
      ...(effects.stamp === null ? {} : { stamp: effects.stamp }),
      ...(event === 'deliver' ? { addDelivery: true } : {}),
      // The timer's reference point: set by a delivery, cleared when the contract leaves `delivered`.
      autoApproveAt:
        effects.schedule === 'auto_approve' ? new Date(now.getTime() + deps.settings.autoApproveMs) : null,
      ...(effects.openReviews === true
        ? { reviewDeadlineAt: new Date(now.getTime() + deps.settings.reviewWindowMs) }
        : {}),
    },
    now,
  );
  // The row is locked: the version cannot have moved; only a bug gets here.
  if (updated === undefined) throw new Error('contract changed under its lock');
  if (effects.job !== undefined) await setJobStatusIf(trx, row.job_id, 'in_progress', effects.job, now);
  const message = input.message?.trim();
  await recordTransition(trx, {
    row: updated,
    effects,
    event,
    from: row.state,
    actorKind,
    actorId,
    payload: {
      ...(message === undefined || message === '' ? {} : { message: firstChars(message, MAX_NOTE) }),
      ...(input.split === undefined
        ? {}
        : { toWorker: input.split.toWorker.toString(), toHirer: input.split.toHirer.toString() }),
    },
    now,
  });
  return { ok: true, contract: toContract(updated) };
}

/** A user fires `event` (REST), in the caller's transaction; refusals are thrown as AppErrors. */
export async function fireIn(
  trx: Transaction<Database>,
  deps: ContractDeps,
  actor: Actor,
  contractId: ContractId,
  event: ContractEvent,
  input: TransitionInput = {},
): Promise<Contract> {
  const outcome = await transitionIn(trx, deps, { kind: 'user', actor }, contractId, event, input);
  if (!outcome.ok) throw decisionErrorToAppError(outcome.error);
  return outcome.contract;
}

/** `fireIn` in its own transaction (tests, scripts). */
export function fire(
  deps: ContractDeps,
  actor: Actor,
  contractId: ContractId,
  event: ContractEvent,
  input: TransitionInput = {},
): Promise<Contract> {
  return withSerializationRetry(() =>
    deps.db.transaction().execute((trx) => fireIn(trx, deps, actor, contractId, event, input)),
  );
}

/** `acceptBidIn` in its own transaction (tests, scripts); `expectedVersion` = the bid version seen. */
export function acceptBid(
  deps: ContractDeps,
  actor: Actor,
  bidId: BidId,
  expectedVersion: number,
): Promise<Contract> {
  return withSerializationRetry(() =>
    deps.db.transaction().execute((trx) => acceptBidIn(trx, deps, actor, bidId, expectedVersion)),
  );
}

export type TimerOutcome = 'applied' | 'stale';

/**
 * The auto-approve timer: approves the delivery it was set for, or does nothing when the contract
 * moved on (approved, changes requested, disputed, or delivered again — a later version).
 */
export async function autoApprove(
  deps: ContractDeps,
  contractId: ContractId,
  version: number,
): Promise<TimerOutcome> {
  try {
    const outcome = await withSerializationRetry(() =>
      deps.db
        .transaction()
        .execute((trx) =>
          transitionIn(trx, deps, { kind: 'timer', timerVersion: version }, contractId, 'auto_approve', {}),
        ),
    );
    return outcome.ok ? 'applied' : 'stale';
  } catch (error) {
    if (isAppError(error) && error.code === 'NOT_FOUND') return 'stale';
    throw error;
  }
}

export interface ContractDetail {
  readonly contract: Contract;
  readonly transitions: readonly ContractTransition[];
  /**
   * Events the caller may fire now (which buttons to show): the auto-approve deadline is applied
   * (none of request_changes / dispute once it passed), and so is `neverDelivered` (no cancel once
   * delivered); a resolve's split is not checked.
   */
  readonly available: readonly ContractEvent[];
}

/** GET /v1/contracts/:id: parties and admins; anyone else 404. */
export async function getContract(
  deps: Pick<ContractDeps, 'db' | 'clock'>,
  actor: Actor,
  contractId: ContractId,
): Promise<ContractDetail> {
  const row = await findContract(deps.db, contractId);
  if (row === undefined) throw new AppError('NOT_FOUND', 'no such contract');
  // The events `fireIn` would let the caller fire: an admin who is a party is not offered `resolve`.
  const roles = actingRoles(row, actor);
  if (roles.length === 0) throw new AppError('NOT_FOUND', 'no such contract');
  // A delivery past its autoApproveAt offers no request for changes and no dispute, and a contract
  // delivered once no cancel (fireIn refuses them).
  const timing = { autoApproveAt: row.auto_approve_at, now: deps.clock.now(), deliveries: row.deliveries };
  const available = [...new Set(roles.flatMap((role) => availableEvents(row.state, role, timing)))];
  return {
    contract: toContract(row),
    transitions: (await transitionsOf(deps.db, contractId)).map((transition) =>
      toTransition(transition, actor),
    ),
    available,
  };
}

export const DEFAULT_CONTRACT_PAGE = 20;
export const MAX_CONTRACT_PAGE = 100;

/** GET /v1/me/contracts: the caller's contracts (either side), newest first. */
export async function myContracts(
  deps: Pick<ContractDeps, 'db'>,
  actor: Actor,
  query: {
    readonly states?: readonly ContractState[];
    readonly cursor?: string;
    readonly limit?: number;
  } = {},
): Promise<{ data: Contract[]; nextCursor: string | null }> {
  const limit = Math.min(Math.max(query.limit ?? DEFAULT_CONTRACT_PAGE, 1), MAX_CONTRACT_PAGE);
  const after = decodeCursor('my-contracts', query.cursor);
  const rows = await contractsOfUser(deps.db, {
    userId: actor.userId,
    ...(query.states === undefined ? {} : { states: query.states }),
    ...(after === undefined ? {} : { after }),
    limit: limit + 1,
  });
  return pageOf('my-contracts', rows, limit, toContract);
}

/** The split a resolve decided (read by the payments worker's escrow task). */
export async function resolvedSplit(
  deps: Pick<ContractDeps, 'db'>,
  contractId: ContractId,
): Promise<{ toWorker: bigint; toHirer: bigint } | undefined> {
  const resolve = await findTransition(deps.db, contractId, 'resolve');
  const toWorker = resolve?.payload.toWorker;
  const toHirer = resolve?.payload.toHirer;
  if (typeof toWorker !== 'string' || typeof toHirer !== 'string') return undefined;
  return { toWorker: BigInt(toWorker), toHirer: BigInt(toHirer) };
}
