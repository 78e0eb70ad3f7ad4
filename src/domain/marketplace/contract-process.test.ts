import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isAppError } from '../../platform/errors.js';
import {
  autoApproveDue,
  availableEvents,
  CLOSED_ONCE_AUTO_APPROVE_DUE,
  CONTRACT_ACTORS,
  CONTRACT_EVENTS,
  CONTRACT_START,
  CONTRACT_STATES,
  CONTRACT_TRANSITIONS,
  type ContractActor,
  type ContractContext,
  type ContractEvent,
  type ContractState,
  DECISION_ERROR_STATUS,
  decide,
  decisionErrorToAppError,
  escrowMovesOf,
  FINAL_STATES,
  renderTransitionTable,
  type Transition,
  transitionFor,
} from './contract-process.js';

/** A context every guard accepts for `row` (the happy path of that row). */
function passingContext(row: Transition): ContractContext {
  return {
    version: 3,
    deliveries: row.guard === 'neverDelivered' ? 0 : 1,
    amount: 10_000n,
    timerVersion: 3,
    split: { toWorker: 6_000n, toHirer: 4_000n },
  };
}

describe('the transition table', () => {
  it('has one row per (from, event) and only declared states, events and actors', () => {
    const keys = CONTRACT_TRANSITIONS.map((row) => `${row.from}/${row.event}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const row of CONTRACT_TRANSITIONS) {
      expect(CONTRACT_STATES).toContain(row.from);
      expect(CONTRACT_STATES).toContain(row.to);
      expect(CONTRACT_EVENTS).toContain(row.event);
      expect(row.actors.length).toBeGreaterThan(0);
      for (const actor of row.actors) expect(CONTRACT_ACTORS).toContain(actor);
    }
  });

  it('uses every event and reaches every state', () => {
    expect(new Set(CONTRACT_TRANSITIONS.map((row) => row.event))).toEqual(new Set(CONTRACT_EVENTS));
    const reached = new Set<ContractState>([CONTRACT_START.to, ...CONTRACT_TRANSITIONS.map((row) => row.to)]);
    expect(reached).toEqual(new Set(CONTRACT_STATES));
  });

  it('has completed, cancelled and resolved as its final states', () => {
    expect([...FINAL_STATES].sort()).toEqual(['cancelled', 'completed', 'resolved']);
  });

  it('moves escrow exactly as issue 12 says: hold on accept, release on (auto-)approve, refund on cancel, split on resolve', () => {
    expect(CONTRACT_START.effects.escrow).toBe('hold');
    const escrowOf = (event: ContractEvent) =>
      CONTRACT_TRANSITIONS.filter((row) => row.event === event).map((row) => row.effects.escrow);
    expect(escrowOf('approve')).toEqual(['release']);
    expect(escrowOf('auto_approve')).toEqual(['release']);
    expect(escrowOf('cancel')).toEqual(['refund']);
    expect(escrowOf('resolve')).toEqual(['split']);
    for (const event of ['deliver', 'request_changes', 'dispute'] as const) {
      expect(escrowOf(event).every((escrow) => escrow === undefined)).toBe(true);
    }
  });

  it('moves money only into final states, and every final state sets the job status', () => {
    for (const row of CONTRACT_TRANSITIONS) {
      if (row.effects.escrow !== undefined) expect(FINAL_STATES).toContain(row.to);
      if (FINAL_STATES.includes(row.to)) expect(row.effects.job).toBeDefined();
    }
  });

  it('opens reviews exactly on reaching completed or resolved', () => {
    for (const row of CONTRACT_TRANSITIONS) {
      expect(row.effects.openReviews === true).toBe(row.to === 'completed' || row.to === 'resolved');
    }
  });

  it('schedules auto-approve on every delivery, and only the timer fires it', () => {
    const deliver = transitionFor('active', 'deliver');
    expect(deliver?.effects.schedule).toBe('auto_approve');
    expect(transitionFor('delivered', 'auto_approve')?.actors).toEqual(['timer']);
    for (const row of CONTRACT_TRANSITIONS) {
      if (row.event !== 'auto_approve') expect(row.actors).not.toContain('timer');
    }
  });

  it('writes an outbox event contract.<event> for every transition', () => {
    for (const row of CONTRACT_TRANSITIONS) expect(row.effects.outbox).toBe(`contract.${row.event}`);
    expect(CONTRACT_START.effects.outbox).toBe('contract.accept');
  });

  it('is rendered in src/domain/marketplace/README.md exactly as it is', () => {
    const readme = readFileSync(new URL('./README.md', import.meta.url), 'utf8');
    expect(readme).toContain(renderTransitionTable());
  });
});

describe('escrowMovesOf', () => {
  it('allows each final state only the move its transitions decided, and a running contract none', () => {
    const moves = (state: Parameters<typeof escrowMovesOf>[0]) => [...escrowMovesOf(state)];
    expect(moves('completed')).toEqual(['release']);
    expect(moves('cancelled')).toEqual(['refund']);
    expect(moves('resolved')).toEqual(['split']);
    for (const running of ['active', 'delivered', 'disputed'] as const) expect(moves(running)).toEqual([]);
  });
});

describe('decide: every row', () => {
  for (const row of CONTRACT_TRANSITIONS) {
    for (const actor of row.actors) {
      it(`${row.from} --${row.event}--> ${row.to} by ${actor}`, () => {
        const context = passingContext(row);
        const decision = decide(row.from, row.event, actor, context);
        expect(decision).toEqual({
          ok: true,
          from: row.from,
          to: row.to,
          event: row.event,
          version: context.version + 1,
          effects: row.effects,
        });
      });
    }
  }
});

describe('decide: every wrong actor → 403', () => {
  for (const row of CONTRACT_TRANSITIONS) {
    for (const actor of CONTRACT_ACTORS.filter((a) => !row.actors.includes(a))) {
      it(`${row.event} in ${row.from} by ${actor}`, () => {
        const decision = decide(row.from, row.event, actor, passingContext(row));
        expect(decision.ok).toBe(false);
        if (decision.ok) return;
        expect(decision.error).toMatchObject({
          kind: 'FORBIDDEN_ACTOR',
          state: row.from,
          actor,
          allowed: row.actors,
        });
        expect(DECISION_ERROR_STATUS[decision.error.kind]).toBe(403);
        const appError = decisionErrorToAppError(decision.error);
        expect(appError.code).toBe('FORBIDDEN');
      });
    }
  }
});

describe('decide: every invalid event → 409 naming the current state', () => {
  for (const state of CONTRACT_STATES) {
    for (const event of CONTRACT_EVENTS.filter((e) => transitionFor(state, e) === undefined)) {
      it(`${event} in ${state}`, () => {
        // Whoever fires it, even an admin or a timer: no row means 409, not 403.
        for (const actor of CONTRACT_ACTORS) {
          const decision = decide(state, event, actor, {
            version: 1,
            deliveries: 1,
            amount: 100n,
            timerVersion: 1,
            split: { toWorker: 50n, toHirer: 50n },
          });
          expect(decision).toEqual({
            ok: false,
            error: {
              kind: 'INVALID_TRANSITION',
              state,
              event,
              message: `cannot ${event} a contract that is ${state}`,
            },
          });
          if (decision.ok) return;
          expect(DECISION_ERROR_STATUS[decision.error.kind]).toBe(409);
          const appError = decisionErrorToAppError(decision.error);
          expect(isAppError(appError)).toBe(true);
          expect(appError.code).toBe('INVALID_TRANSITION');
          expect(appError.details).toMatchObject({ reason: 'INVALID_TRANSITION', state, event });
        }
      });
    }
  }
});

describe('decide: guards', () => {
  const base: ContractContext = { version: 2, deliveries: 0, amount: 10_000n };

  it('cancel is refused (409) once the worker has delivered, even after changes were requested', () => {
    for (const actor of ['hirer', 'worker'] as const) {
      expect(decide('active', 'cancel', actor, base).ok).toBe(true);
      const decision = decide('active', 'cancel', actor, { ...base, deliveries: 1 });
      expect(decision).toMatchObject({
        ok: false,
        error: { kind: 'INVALID_TRANSITION', state: 'active', event: 'cancel', guard: 'neverDelivered' },
      });
    }
  });

  it('resolve needs a split that sums to the escrow, with no negative part (400)', () => {
    const resolve = (split?: { toWorker: bigint; toHirer: bigint }) =>
      decide('disputed', 'resolve', 'admin', split === undefined ? base : { ...base, split });
    expect(resolve({ toWorker: 10_000n, toHirer: 0n }).ok).toBe(true);
    expect(resolve({ toWorker: 0n, toHirer: 10_000n }).ok).toBe(true);
    expect(resolve({ toWorker: 3_333n, toHirer: 6_667n }).ok).toBe(true);
    for (const bad of [
      undefined,
      { toWorker: 5_000n, toHirer: 4_999n },
      { toWorker: 10_001n, toHirer: -1n },
    ]) {
      const decision = resolve(bad);
      expect(decision).toMatchObject({ ok: false, error: { kind: 'INVALID_INPUT', event: 'resolve' } });
      if (!decision.ok) {
        expect(DECISION_ERROR_STATUS[decision.error.kind]).toBe(400);
        const appError = decisionErrorToAppError(decision.error);
        expect(appError.code).toBe('VALIDATION_FAILED');
        // The fields, as every other field error names them (a form marks both amounts).
        expect(appError.details?.errors).toEqual([
          { path: 'body.toWorker', message: decision.error.message },
          { path: 'body.toHirer', message: decision.error.message },
        ]);
      }
    }
  });

  it('auto_approve set at an earlier version is stale: a redelivery after changes is not approved by the first timer', () => {
    // deliver (v1, timer@1) → request_changes (v2) → deliver (v3, timer@3): the timer@1 fires in delivered.
    const decision = decide('delivered', 'auto_approve', 'timer', {
      ...base,
      deliveries: 2,
      version: 3,
      timerVersion: 1,
    });
    expect(decision).toMatchObject({ ok: false, error: { kind: 'STALE_TIMER' } });
    expect(decide('delivered', 'auto_approve', 'timer', { ...base, version: 3, timerVersion: 3 }).ok).toBe(
      true,
    );
    expect(decide('delivered', 'auto_approve', 'timer', { ...base, version: 3 }).ok).toBe(false);
  });

  it('once now ≥ autoApproveAt while delivered, request_changes and dispute are refused (409 beforeAutoApprove); approve and the timer are not', () => {
    const autoApproveAt = new Date('2026-12-06T06:00:00.000Z');
    const at = (ms: number): ContractContext => ({
      ...base,
      deliveries: 1,
      version: 3,
      timerVersion: 3,
      autoApproveAt,
      now: new Date(autoApproveAt.getTime() + ms),
    });
    expect(CLOSED_ONCE_AUTO_APPROVE_DUE).toEqual(['request_changes', 'dispute']);
    // One millisecond before: the hirer's review period is still open.
    expect(decide('delivered', 'request_changes', 'hirer', at(-1)).ok).toBe(true);
    for (const actor of ['hirer', 'worker'] as const)
      expect(decide('delivered', 'dispute', actor, at(-1)).ok).toBe(true);
    for (const ms of [0, 1, 86_400_000]) {
      for (const [event, actor] of [
        ['request_changes', 'hirer'],
        ['dispute', 'hirer'],
        ['dispute', 'worker'],
      ] as const) {
        const decision = decide('delivered', event, actor, at(ms));
        expect(decision).toMatchObject({
          ok: false,
          error: {
            kind: 'INVALID_TRANSITION',
            state: 'delivered',
            event,
            guard: 'beforeAutoApprove',
            autoApproveAt: autoApproveAt.toISOString(),
          },
        });
        if (!decision.ok) {
          expect(DECISION_ERROR_STATUS[decision.error.kind]).toBe(409);
          const appError = decisionErrorToAppError(decision.error);
          expect(appError.code).toBe('INVALID_TRANSITION');
          expect(appError.details).toMatchObject({
            state: 'delivered',
            event,
            guard: 'beforeAutoApprove',
            autoApproveAt: autoApproveAt.toISOString(),
          });
        }
      }
      // The delivery is approved either way: by the hirer, or by the timer.
      expect(decide('delivered', 'approve', 'hirer', at(ms)).ok).toBe(true);
      expect(decide('delivered', 'auto_approve', 'timer', at(ms)).ok).toBe(true);
    }
    // The wrong party is still told so (403) first.
    expect(decide('delivered', 'request_changes', 'worker', at(1))).toMatchObject({
      ok: false,
      error: { kind: 'FORBIDDEN_ACTOR' },
    });
    // Only a delivered contract has a deadline: an active one (changes requested) disputes freely.
    expect(decide('active', 'dispute', 'hirer', at(1)).ok).toBe(true);
  });

  it('autoApproveDue: delivered, with a deadline, at or after it', () => {
    const deadline = new Date('2026-12-06T06:00:00.000Z');
    const after = new Date(deadline.getTime() + 1);
    expect(autoApproveDue('delivered', deadline, deadline)).toBe(true);
    expect(autoApproveDue('delivered', deadline, after)).toBe(true);
    expect(autoApproveDue('delivered', deadline, new Date(deadline.getTime() - 1))).toBe(false);
    expect(autoApproveDue('delivered', null, after)).toBe(false);
    expect(autoApproveDue('delivered', undefined, after)).toBe(false);
    for (const state of CONTRACT_STATES.filter((s) => s !== 'delivered')) {
      expect(autoApproveDue(state, deadline, after)).toBe(false);
    }
  });

  it('auto_approve after a manual approve is an invalid transition (the timer task drops it)', () => {
    expect(
      decide('completed', 'auto_approve', 'timer', { ...base, version: 2, timerVersion: 1 }),
    ).toMatchObject({
      ok: false,
      error: { kind: 'INVALID_TRANSITION', state: 'completed' },
    });
  });
});

describe('availableEvents', () => {
  it('lists what each actor may fire in each state, from the table', () => {
    expect(availableEvents('active', 'worker').sort()).toEqual(['cancel', 'deliver', 'dispute']);
    expect(availableEvents('active', 'hirer').sort()).toEqual(['cancel', 'dispute']);
    expect(availableEvents('delivered', 'hirer').sort()).toEqual(['approve', 'dispute', 'request_changes']);
    expect(availableEvents('disputed', 'admin')).toEqual(['resolve']);
    expect(availableEvents('delivered', 'timer')).toEqual(['auto_approve']);
    for (const state of FINAL_STATES) {
      for (const actor of CONTRACT_ACTORS) expect(availableEvents(state, actor)).toEqual([]);
    }
  });

  it('a delivery past its autoApproveAt offers neither request_changes nor dispute; before it, both', () => {
    const autoApproveAt = new Date('2026-12-06T06:00:00.000Z');
    const before = { autoApproveAt, now: new Date(autoApproveAt.getTime() - 1) };
    const due = { autoApproveAt, now: autoApproveAt };
    expect(availableEvents('delivered', 'hirer', before).sort()).toEqual([
      'approve',
      'dispute',
      'request_changes',
    ]);
    expect(availableEvents('delivered', 'worker', before)).toEqual(['dispute']);
    expect(availableEvents('delivered', 'hirer', due)).toEqual(['approve']);
    expect(availableEvents('delivered', 'worker', due)).toEqual([]);
    expect(availableEvents('delivered', 'timer', due)).toEqual(['auto_approve']);
    // No deadline (not delivered): nothing closed.
    expect(availableEvents('active', 'hirer', { autoApproveAt: null, now: due.now }).sort()).toEqual([
      'cancel',
      'dispute',
    ]);
  });
});

describe('property: no sequence of events leaves the declared process', () => {
  const step = fc.record({
    event: fc.constantFrom(...CONTRACT_EVENTS),
    actor: fc.constantFrom<ContractActor>(...CONTRACT_ACTORS),
    timerCurrent: fc.boolean(),
    toWorker: fc.bigInt({ min: -5n, max: 1_005n }),
  });

  it('every state reached is declared, every applied step is a table row, and money moves at most once', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        const amount = 1_000n;
        let state: ContractState = CONTRACT_START.to;
        let version = 0;
        let deliveries = 0;
        let escrowMoves = 0;
        let everDelivered = false;
        for (const s of steps) {
          const context: ContractContext = {
            version,
            deliveries,
            amount,
            timerVersion: s.timerCurrent ? version : version - 1,
            split: { toWorker: s.toWorker, toHirer: amount - s.toWorker },
          };
          const before = state;
          const decision = decide(state, s.event, s.actor, context);
          if (!decision.ok) {
            // A refusal changes nothing; it is one of the declared kinds.
            expect(Object.keys(DECISION_ERROR_STATUS)).toContain(decision.error.kind);
            continue;
          }
          const row = transitionFor(before, s.event);
          expect(row).toBeDefined();
          expect(row?.actors).toContain(s.actor);
          expect(decision.to).toBe(row?.to);
          expect(decision.version).toBe(version + 1);
          state = decision.to;
          version = decision.version;
          if (s.event === 'deliver') {
            deliveries += 1;
            everDelivered = true;
          }
          if (decision.effects.escrow !== undefined) escrowMoves += 1;
          // Completion only through a delivery or a dispute; cancel never after a delivery.
          if (state === 'completed') expect(before === 'delivered').toBe(true);
          if (state === 'cancelled') expect(everDelivered).toBe(false);
          if (state === 'resolved') expect(before).toBe('disputed');
        }
        expect(CONTRACT_STATES).toContain(state);
        expect(escrowMoves).toBeLessThanOrEqual(1);
        expect(escrowMoves === 1).toBe(FINAL_STATES.includes(state));
      }),
      { numRuns: 2_000, seed: 20_261_204 },
    );
  });
});
