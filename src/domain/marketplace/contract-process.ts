/**
 * The contract process of issue 12 as ONE declarative transition table, and `decide`, the pure
 * function that reads it. Nothing else may change a contract's state: the service (next step) loads
 * the contract, calls `decide`, and applies the returned effects in one DB transaction with an
 * optimistic version check. Anchor: Sharetribe's negotiation process (transitions as data, an actor
 * per transition, timers such as auto-accept after 14 days).
 *
 * Order of checks in `decide` (each answers a different question, so each has its own error):
 * 1. no row for (state, event)          → INVALID_TRANSITION (409, names the current state)
 * 2. a row, but not for this actor      → FORBIDDEN_ACTOR (403)
 * 3. the delivery's review period is over (`now` ≥ `autoApproveAt` while delivered) and the event
 *    is one it closes (`CLOSED_ONCE_AUTO_APPROVE_DUE`) → INVALID_TRANSITION (409), guard
 *    `beforeAutoApprove`: the delivery counts as approved at `autoApproveAt`, whenever the timer runs
 * 4. the row's guard refuses             → INVALID_TRANSITION (409) with the guard's reason, or
 *    INVALID_INPUT (400) for a payload that cannot be right (a split that does not sum), or
 *    STALE_TIMER (the worker treats it as a no-op: the state moved on since the timer was set)
 * Strangers (neither party nor admin) never reach `decide`: the service answers 404 before it.
 */
import type { ErrorCode } from '../../../protocol/src/codes.js';
import { AppError } from '../../platform/errors.js';

/** Where a contract can be. `completed`, `cancelled` and `resolved` are final. */
export const ContractState = {
  active: 'active',
  delivered: 'delivered',
  completed: 'completed',
  cancelled: 'cancelled',
  disputed: 'disputed',
  resolved: 'resolved',
} as const;
export type ContractState = (typeof ContractState)[keyof typeof ContractState];
export const CONTRACT_STATES: readonly ContractState[] = Object.values(ContractState);

/** What can happen to a contract. `auto_approve` is fired only by the timer. */
export const ContractEvent = {
  deliver: 'deliver',
  request_changes: 'request_changes',
  approve: 'approve',
  auto_approve: 'auto_approve',
  cancel: 'cancel',
  dispute: 'dispute',
  resolve: 'resolve',
} as const;
export type ContractEvent = (typeof ContractEvent)[keyof typeof ContractEvent];
export const CONTRACT_EVENTS: readonly ContractEvent[] = Object.values(ContractEvent);

/** Who fires an event: one of the parties, an administrator, or a timer task. */
export const ContractActor = { hirer: 'hirer', worker: 'worker', admin: 'admin', timer: 'timer' } as const;
export type ContractActor = (typeof ContractActor)[keyof typeof ContractActor];
export const CONTRACT_ACTORS: readonly ContractActor[] = Object.values(ContractActor);

/** The two parties; who is notified of a transition. */
export type ContractParty = 'hirer' | 'worker';

/** Timers a transition schedules. Each is a delayed task keyed by `contract:timer:version`. */
export const ContractTimer = {
  /** Fires `auto_approve` after `CONTRACT_AUTO_APPROVE_S` (default 14 days) in `delivered`. */
  auto_approve: 'auto_approve',
} as const;
export type ContractTimer = (typeof ContractTimer)[keyof typeof ContractTimer];

/** Escrow operations (src/domain/payments/escrow.ts), run through the payments queue. */
export type EscrowEffect = 'hold' | 'release' | 'refund' | 'split';

/** Job status a transition moves the contract's job to. */
export type JobStatusEffect = 'in_progress' | 'completed' | 'cancelled';

/**
 * What a transition causes, as data. The service turns each into a write in the same DB transaction
 * (the outbox event, the job row, the room message, the timer's task through the outbox) — so the
 * table, not scattered code, says what each transition does.
 */
export interface TransitionEffects {
  readonly escrow?: EscrowEffect;
  /** Parties pushed a live update (through their user actor) and notified. */
  readonly notify: readonly ContractParty[];
  /** Key of the system message appended to the job room (texts live with the room code). */
  readonly roomMessage: string;
  /** Outbox event type written in the transition's transaction. */
  readonly outbox: `contract.${string}`;
  readonly job?: JobStatusEffect;
  /** Timer to schedule, keyed by the version this transition produces. */
  readonly schedule?: ContractTimer;
  /** The review window opens (`REVIEW_WINDOW_S`, default 14 days): both parties may review. */
  readonly openReviews?: true;
  /** Timestamp column the service sets to now (the timers' and profiles' reference points). */
  readonly stamp: 'delivered_at' | 'completed_at' | 'cancelled_at' | 'disputed_at' | 'resolved_at' | null;
}

/** Facts about the contract a guard may look at, read by the service from the row it locked. */
export interface ContractContext {
  /** The contract's version now (transitions applied so far). */
  readonly version: number;
  /** Deliveries so far (a request for changes does not reset it). */
  readonly deliveries: number;
  /** The escrowed amount, minor units. */
  readonly amount: bigint;
  /** For timer events: the version the timer was scheduled at (its task key). */
  readonly timerVersion?: number;
  /** For `resolve`: how the escrow is divided, minor units. */
  readonly split?: { readonly toWorker: bigint; readonly toHirer: bigint };
  /**
   * When the delivery is approved on the hirer's behalf (the row's `auto_approve_at`; set while
   * `delivered`), and the time now: with both, `decide` applies `CLOSED_ONCE_AUTO_APPROVE_DUE`.
   */
  readonly autoApproveAt?: Date | null;
  readonly now?: Date;
}

export type GuardName = 'neverDelivered' | 'splitSumsToEscrow' | 'timerStillCurrent' | 'beforeAutoApprove';

/**
 * Events that `now` ≥ `autoApproveAt` closes on a delivered contract: the delivery counts as
 * approved at that instant, decided by the clock and not by when the auto-approve task happens to
 * run (a busy or restarting worker, a queue backlog). Asking for changes or disputing then would
 * take from the worker a payment the rules already gave them; the task (or the hirer's `approve`)
 * completes the contract. Not a guard column of the table (which renders the README copy): it holds
 * for every row from `delivered` with these events, whoever fires them.
 */
export const CLOSED_ONCE_AUTO_APPROVE_DUE: readonly ContractEvent[] = ['request_changes', 'dispute'];

/** Whether a contract in `state` with this `autoApproveAt` counts as approved at `now`. */
export function autoApproveDue(
  state: ContractState,
  autoApproveAt: Date | null | undefined,
  now: Date,
): boolean {
  return (
    state === 'delivered' &&
    autoApproveAt !== null &&
    autoApproveAt !== undefined &&
    now.getTime() >= autoApproveAt.getTime()
  );
}

/** Whether `event` is closed on this contract now by `CLOSED_ONCE_AUTO_APPROVE_DUE`. */
export const closedByAutoApprove = (
  state: ContractState,
  event: ContractEvent,
  autoApproveAt: Date | null | undefined,
  now: Date,
): boolean => CLOSED_ONCE_AUTO_APPROVE_DUE.includes(event) && autoApproveDue(state, autoApproveAt, now);

export interface Transition {
  readonly from: ContractState;
  readonly event: ContractEvent;
  readonly to: ContractState;
  readonly actors: readonly ContractActor[];
  readonly guard: GuardName | null;
  readonly effects: TransitionEffects;
}

/**
 * THE table. One row per (from, event); `decide` and the README's rendering read it, and the unit
 * tests walk it row by row. Adding a row is the only way to add behaviour.
 */
export const CONTRACT_TRANSITIONS: readonly Transition[] = [
  {
    from: 'active',
    event: 'deliver',
    to: 'delivered',
    actors: ['worker'],
    guard: null,
    effects: {
      notify: ['hirer'],
      roomMessage: 'contract.delivered',
      outbox: 'contract.deliver',
      schedule: 'auto_approve',
      stamp: 'delivered_at',
    },
  },
  {
    from: 'delivered',
    event: 'request_changes',
    to: 'active',
    actors: ['hirer'],
    guard: null,
    effects: {
      notify: ['worker'],
      roomMessage: 'contract.changes_requested',
      outbox: 'contract.request_changes',
      stamp: null,
    },
  },
  {
    from: 'delivered',
    event: 'approve',
    to: 'completed',
    actors: ['hirer'],
    guard: null,
    effects: {
      escrow: 'release',
      notify: ['worker'],
      roomMessage: 'contract.approved',
      outbox: 'contract.approve',
      job: 'completed',
      openReviews: true,
      stamp: 'completed_at',
    },
  },
  {
    from: 'delivered',
    event: 'auto_approve',
    to: 'completed',
    actors: ['timer'],
    guard: 'timerStillCurrent',
    effects: {
      escrow: 'release',
      notify: ['hirer', 'worker'],
      roomMessage: 'contract.auto_approved',
      outbox: 'contract.auto_approve',
      job: 'completed',
      openReviews: true,
      stamp: 'completed_at',
    },
  },
  {
    from: 'active',
    event: 'cancel',
    to: 'cancelled',
    actors: ['hirer', 'worker'],
    guard: 'neverDelivered',
    effects: {
      escrow: 'refund',
      notify: ['hirer', 'worker'],
      roomMessage: 'contract.cancelled',
      outbox: 'contract.cancel',
      job: 'cancelled',
      stamp: 'cancelled_at',
    },
  },
  {
    from: 'active',
    event: 'dispute',
    to: 'disputed',
    actors: ['hirer', 'worker'],
    guard: null,
    effects: {
      notify: ['hirer', 'worker'],
      roomMessage: 'contract.disputed',
      outbox: 'contract.dispute',
      stamp: 'disputed_at',
    },
  },
  {
    from: 'delivered',
    event: 'dispute',
    to: 'disputed',
    actors: ['hirer', 'worker'],
    guard: null,
    effects: {
      notify: ['hirer', 'worker'],
      roomMessage: 'contract.disputed',
      outbox: 'contract.dispute',
      stamp: 'disputed_at',
    },
  },
  {
    from: 'disputed',
    event: 'resolve',
    to: 'resolved',
    actors: ['admin'],
    guard: 'splitSumsToEscrow',
    effects: {
      escrow: 'split',
      notify: ['hirer', 'worker'],
      roomMessage: 'contract.resolved',
      outbox: 'contract.resolve',
      job: 'completed',
      openReviews: true,
      stamp: 'resolved_at',
    },
  },
];

/**
 * How a contract begins: the hirer accepts a bid (POST /v1/bids/:id/accept). Not a row of the table
 * because there is no state before it; its effects are data all the same.
 */
export const CONTRACT_START = {
  event: 'accept',
  to: 'active',
  actors: ['hirer'],
  effects: {
    escrow: 'hold',
    notify: ['worker'],
    roomMessage: 'contract.started',
    outbox: 'contract.accept',
    job: 'in_progress',
    stamp: null,
  },
} as const satisfies {
  event: string;
  to: ContractState;
  actors: readonly ContractActor[];
  effects: TransitionEffects;
};

/** States no event leaves. */
export const FINAL_STATES: readonly ContractState[] = CONTRACT_STATES.filter(
  (state) => !CONTRACT_TRANSITIONS.some((row) => row.from === state),
);

export type DecisionError =
  | {
      readonly kind: 'INVALID_TRANSITION';
      readonly state: ContractState;
      readonly event: ContractEvent;
      readonly message: string;
      /** Set when a row exists but its guard refused. */
      readonly guard?: GuardName;
      /** For guard `beforeAutoApprove`: when the delivery was approved automatically (ISO 8601). */
      readonly autoApproveAt?: string;
    }
  | {
      readonly kind: 'FORBIDDEN_ACTOR';
      readonly state: ContractState;
      readonly event: ContractEvent;
      readonly actor: ContractActor;
      readonly allowed: readonly ContractActor[];
      readonly message: string;
    }
  | { readonly kind: 'INVALID_INPUT'; readonly event: ContractEvent; readonly message: string }
  | { readonly kind: 'STALE_TIMER'; readonly event: ContractEvent; readonly message: string };

export type Decision =
  | {
      readonly ok: true;
      readonly from: ContractState;
      readonly to: ContractState;
      readonly event: ContractEvent;
      /** The version the transition produces (the optimistic check expects `context.version`). */
      readonly version: number;
      readonly effects: TransitionEffects;
    }
  | { readonly ok: false; readonly error: DecisionError };

/** HTTP status of each refusal (the REST edge maps INVALID_TRANSITION to 409, wrong actor to 403). */
export const DECISION_ERROR_STATUS: { readonly [K in DecisionError['kind']]: number } = {
  INVALID_TRANSITION: 409,
  FORBIDDEN_ACTOR: 403,
  INVALID_INPUT: 400,
  // Never sent to a client: only timers are refused this way, and they drop the task.
  STALE_TIMER: 409,
};

type GuardRefusal = Extract<DecisionError, { kind: 'INVALID_TRANSITION' | 'INVALID_INPUT' | 'STALE_TIMER' }>;

const GUARDS: {
  readonly [G in GuardName]: (
    context: ContractContext,
    state: ContractState,
    event: ContractEvent,
  ) => GuardRefusal | null;
} = {
  // Once the worker has delivered, walking away is no longer free: dispute instead.
  neverDelivered: (context, state, event) =>
    context.deliveries === 0
      ? null
      : {
          kind: 'INVALID_TRANSITION',
          state,
          event,
          guard: 'neverDelivered',
          message: `cannot cancel a contract that has been delivered (state ${state}); open a dispute instead`,
        },
  splitSumsToEscrow: (context, _state, event) => {
    const split = context.split;
    if (split === undefined)
      return { kind: 'INVALID_INPUT', event, message: 'resolve needs toWorker and toHirer' };
    if (split.toWorker < 0n || split.toHirer < 0n) {
      return { kind: 'INVALID_INPUT', event, message: 'toWorker and toHirer must not be negative' };
    }
    if (split.toWorker + split.toHirer !== context.amount) {
      return {
        kind: 'INVALID_INPUT',
        event,
        message: `toWorker + toHirer must equal the escrowed amount ${context.amount}`,
      };
    }
    return null;
  },
  // The delivery counts as approved at `autoApproveAt` (see CLOSED_ONCE_AUTO_APPROVE_DUE); applied
  // by `decide` to the events that list names, not attached to table rows.
  beforeAutoApprove: (context, state, event) =>
    context.now === undefined || !closedByAutoApprove(state, event, context.autoApproveAt, context.now)
      ? null
      : {
          kind: 'INVALID_TRANSITION',
          state,
          event,
          guard: 'beforeAutoApprove',
          ...(context.autoApproveAt == null ? {} : { autoApproveAt: context.autoApproveAt.toISOString() }),
          message: `cannot ${event} a delivery approved automatically at ${context.autoApproveAt?.toISOString()}; the contract completes with the escrow released to the worker`,
        },
  // A timer set for an earlier version (e.g. the first delivery, before changes were requested)
  // must not act on a later one: it is keyed by version and compared here.
  timerStillCurrent: (context, _state, event) =>
    context.timerVersion === context.version
      ? null
      : {
          kind: 'STALE_TIMER',
          event,
          message: `timer set at version ${context.timerVersion ?? 'none'}, contract is at ${context.version}`,
        },
};

const DECISION_ERROR_CODE: { readonly [K in DecisionError['kind']]: ErrorCode } = {
  INVALID_TRANSITION: 'INVALID_TRANSITION',
  FORBIDDEN_ACTOR: 'FORBIDDEN',
  INVALID_INPUT: 'VALIDATION_FAILED',
  STALE_TIMER: 'CONFLICT',
};

/**
 * The refusal as the one error type: INVALID_TRANSITION (409) with `details.state` naming the current
 * state and `details.event`, FORBIDDEN (403) naming who may, VALIDATION_FAILED (400). `details.reason`
 * repeats the kind (kept for clients written before the INVALID_TRANSITION code existed).
 */
export function decisionErrorToAppError(error: DecisionError): AppError {
  const details: Record<string, unknown> = { reason: error.kind, event: error.event };
  if (error.kind === 'INVALID_TRANSITION' || error.kind === 'FORBIDDEN_ACTOR') details.state = error.state;
  if (error.kind === 'INVALID_TRANSITION' && error.guard !== undefined) details.guard = error.guard;
  if (error.kind === 'INVALID_TRANSITION' && error.autoApproveAt !== undefined) {
    details.autoApproveAt = error.autoApproveAt;
  }
  if (error.kind === 'FORBIDDEN_ACTOR') details.allowed = error.allowed;
  // A split that does not add up (or is missing): the fields it names, as every other field error
  // says them, so a form can mark both amounts.
  if (error.kind === 'INVALID_INPUT' && error.event === 'resolve') {
    details.errors = ['body.toWorker', 'body.toHirer'].map((path) => ({ path, message: error.message }));
  }
  return new AppError(DECISION_ERROR_CODE[error.kind], error.message, { details });
}

/**
 * The escrow moves a contract in `state` has decided: those of the transitions into it (completed →
 * release, cancelled → refund, resolved → split), none for a contract still running. The escrow
 * task checks it, so a task that no transition enqueued (injected, or left over) moves no money.
 */
export function escrowMovesOf(state: ContractState): ReadonlySet<EscrowEffect> {
  return new Set(
    CONTRACT_TRANSITIONS.flatMap((row) =>
      row.to === state && row.effects.escrow !== undefined && row.effects.escrow !== 'hold'
        ? [row.effects.escrow]
        : [],
    ),
  );
}

/** The row for (state, event), if any. */
export function transitionFor(state: ContractState, event: ContractEvent): Transition | undefined {
  return CONTRACT_TRANSITIONS.find((row) => row.from === state && row.event === event);
}

/**
 * Decide what `event` fired by `actor` does to a contract in `state`. Pure: no clock, no I/O.
 * A timer event whose state moved on is INVALID_TRANSITION (no row) or STALE_TIMER (same state,
 * later version); the timer task treats both as "nothing to do".
 */
export function decide(
  state: ContractState,
  event: ContractEvent,
  actor: ContractActor,
  context: ContractContext,
): Decision {
  const row = transitionFor(state, event);
  if (row === undefined) {
    return {
      ok: false,
      error: {
        kind: 'INVALID_TRANSITION',
        state,
        event,
        message: `cannot ${event} a contract that is ${state}`,
      },
    };
  }
  if (!row.actors.includes(actor)) {
    return {
      ok: false,
      error: {
        kind: 'FORBIDDEN_ACTOR',
        state,
        event,
        actor,
        allowed: row.actors,
        message: `only ${row.actors.join(' or ')} may ${event} this contract`,
      },
    };
  }
  const closed = GUARDS.beforeAutoApprove(context, state, event);
  if (closed !== null) return { ok: false, error: closed };
  if (row.guard !== null) {
    const refusal = GUARDS[row.guard](context, state, event);
    if (refusal !== null) return { ok: false, error: refusal };
  }
  return { ok: true, from: row.from, to: row.to, event, version: context.version + 1, effects: row.effects };
}

/**
 * Events `actor` may fire now (for clients: which buttons to show). With `facts` (the contract
 * row's), what the row alone decides is applied: `CLOSED_ONCE_AUTO_APPROVE_DUE` (a delivery past its
 * `autoApproveAt` offers no request for changes and no dispute) and, given `deliveries`, the
 * `neverDelivered` guard (a contract delivered once, active again after a request for changes,
 * offers no cancel: `decide` refuses it whatever follows, and the web app drew a button that could
 * only answer 409). Guards that depend on the request (a resolve's split) or on a timer are not.
 */
export function availableEvents(
  state: ContractState,
  actor: ContractActor,
  facts?: { readonly autoApproveAt: Date | null; readonly now: Date; readonly deliveries?: number },
): ContractEvent[] {
  return CONTRACT_TRANSITIONS.filter(
    (row) =>
      row.from === state &&
      row.actors.includes(actor) &&
      (facts === undefined || !closedByAutoApprove(state, row.event, facts.autoApproveAt, facts.now)) &&
      !(row.guard === 'neverDelivered' && facts?.deliveries !== undefined && facts.deliveries > 0),
  ).map((row) => row.event);
}

/** The table as Markdown (the README embeds it; a unit test keeps the two equal). */
export function renderTransitionTable(): string {
  const effectText = (effects: TransitionEffects): string =>
    [
      effects.escrow === undefined ? null : `escrow ${effects.escrow}`,
      effects.job === undefined ? null : `job → ${effects.job}`,
      effects.schedule === undefined ? null : `schedule ${effects.schedule}`,
      effects.openReviews === true ? 'open reviews' : null,
      `notify ${effects.notify.join('+')}`,
      `room ${effects.roomMessage}`,
      `outbox ${effects.outbox}`,
    ]
      .filter((part) => part !== null)
      .join('; ');
  const lines = [
    '| from | event | to | who | guard | effects |',
    '| --- | --- | --- | --- | --- | --- |',
    `| (bid accepted) | ${CONTRACT_START.event} | ${CONTRACT_START.to} | ${CONTRACT_START.actors.join(', ')} | — | ${effectText(CONTRACT_START.effects)} |`,
    ...CONTRACT_TRANSITIONS.map(
      (row) =>
        `| ${row.from} | ${row.event} | ${row.to} | ${row.actors.join(', ')} | ${row.guard ?? '—'} | ${effectText(row.effects)} |`,
    ),
  ];
  return lines.join('\n');
}
