import { describe, expect, it } from 'vitest';
import type { OutboxEventId } from '../../../protocol/src/ids.js';
import type { OutboxEventRow } from '../../db/repositories/outbox.repo.js';
import type { Logger } from '../../platform/logger.js';
import { type EnqueueOptions, type TaskQueue, tasks } from '../../platform/queues/tasks.js';
import { enqueueEventTasks } from './event-tasks.js';
import type { RelayTargets } from './targets.js';

const userId = '5d2c8f3a-9b1e-4c7d-8a6f-2e4b9c1d7a35';
const contractId = 'c7d4e2a1-5b3f-4e6a-9c8d-1f2e3a4b5c6d';
const paymentId = '3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a98';
const eventId = '9e1c4b7a-2d3f-4a8e-b5c6-7f8091a2b3c4' as OutboxEventId;
const now = new Date('2026-01-01T00:00:00.000Z');

const event = (type: string, payload: Record<string, unknown>): OutboxEventRow => ({
  id: eventId,
  type,
  payload,
  created_at: now,
  published_at: null,
  trace_id: null,
});

interface Enqueued {
  readonly name: string;
  readonly payload: unknown;
  readonly key: string;
  readonly delayMs?: number;
}

/** A task queue that records what it is asked to enqueue, checking payloads as the real one does. */
function recordingTargets(): RelayTargets & { readonly enqueued: Enqueued[] } {
  const enqueued: Enqueued[] = [];
  const taskQueue: TaskQueue = {
    enqueue: async (name, payload, key, options?: EnqueueOptions) => {
      tasks[name].payload.parse(payload);
      enqueued.push({
        name,
        payload,
        key,
        ...(options?.delayMs === undefined ? {} : { delayMs: options.delayMs }),
      });
    },
    queues: () => [],
    close: async () => undefined,
  };
  return { taskQueue, clock: { now: () => now }, log: {} as Logger, enqueued };
}

describe('enqueueEventTasks', () => {
  it('mails a new user twice, keyed by the event', async () => {
    const targets = recordingTargets();
    expect(await enqueueEventTasks(event('user.registered', { userId }), targets)).toEqual({});
    expect(targets.enqueued.map((task) => [task.name, task.key])).toEqual([
      ['emails.send', `${eventId}.welcome`],
      ['emails.send', `${eventId}.verify-email`],
    ]);
  });

  it('keys the registration notice and the reset mail by user and period, or by event without one', async () => {
    const targets = recordingTargets();
    await enqueueEventTasks(event('user.registration_attempted', { userId, period: 42 }), targets);
    await enqueueEventTasks(event('user.password_reset_requested', { userId, period: 7 }), targets);
    await enqueueEventTasks(event('user.password_reset_requested', { userId }), targets);
    expect(targets.enqueued.map((task) => task.key)).toEqual([
      `registration-attempt.${userId}.42`,
      `reset-password.${userId}.7`,
      `${eventId}.reset-password`,
    ]);
  });

  it('mails nothing for a reset request naming no account (an unknown or locked address, review 21)', async () => {
    const targets = recordingTargets();
    expect(
      await enqueueEventTasks(event('user.password_reset_requested', { userId: null, period: 7 }), targets),
    ).toEqual({});
    expect(targets.enqueued).toEqual([]);
  });

  it('submits a payment and applies a provider event once each, whatever the event id', async () => {
    const targets = recordingTargets();
    await enqueueEventTasks(event('payment.requested', { paymentId, userId }), targets);
    await enqueueEventTasks(event('provider-event.received', { eventId: 'evt_1' }), targets);
    expect(targets.enqueued).toEqual([
      { name: 'payments.submit', payload: { paymentId }, key: `payment.${paymentId}` },
      { name: 'payments.apply-event', payload: { eventId: 'evt_1' }, key: 'provider-event.evt_1' },
    ]);
  });

  it('moves escrow and sets the timers a contract event names, delayed until their instants', async () => {
    const targets = recordingTargets();
    await enqueueEventTasks(
      event('contract.deliver', {
        contractId,
        version: 3,
        autoApproveAt: '2026-01-01T00:01:00.000Z',
        notify: [userId],
      }),
      targets,
    );
    await enqueueEventTasks(
      event('contract.approve', {
        contractId,
        escrow: 'release',
        // Passed already (a relay that was down): the task runs at once.
        reviewDeadlineAt: '2025-12-31T00:00:00.000Z',
      }),
      targets,
    );
    expect(targets.enqueued).toEqual([
      {
        name: 'contracts.auto-approve',
        payload: { contractId, version: 3 },
        key: `contract.${contractId}.auto-approve.3`,
        delayMs: 60_000,
      },
      {
        name: 'payments.escrow',
        payload: { contractId, action: 'release' },
        key: `escrow.${contractId}.release`,
      },
      { name: 'reviews.publish', payload: { contractId }, key: `contract.${contractId}.reviews`, delayMs: 0 },
    ]);
  });

  it('refuses a payload its type does not allow, naming the field, and enqueues nothing', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['payment.requested', { paymentId: 'not-a-uuid' }, 'paymentId'],
      ['user.registered', { userId: 42 }, 'userId'],
      ['user.registration_attempted', { userId, period: 'soon' }, 'period'],
      ['contract.approve', { contractId, escrow: 'hold' }, 'escrow'],
      ['contract.deliver', { contractId, version: 3, autoApproveAt: 'tomorrow' }, 'autoApproveAt'],
      ['contract.deliver', { contractId, version: 0, autoApproveAt: '2026-01-02T00:00:00.000Z' }, 'version'],
      ['contract.cancel', { escrow: 'refund' }, 'contractId'],
    ];
    for (const [type, payload, field] of cases) {
      const targets = recordingTargets();
      const { refused } = await enqueueEventTasks(event(type, payload), targets);
      expect(
        refused?.map((issue) => issue.path.join('.')),
        type,
      ).toContain(field);
      expect(targets.enqueued, type).toEqual([]);
    }
  });

  it('enqueues nothing for a type without tasks (its notifications and pushes are decided elsewhere)', async () => {
    const targets = recordingTargets();
    for (const type of ['bid.placed', 'job.posted', 'constructor', '__proto__', 'toString']) {
      expect(await enqueueEventTasks(event(type, { userId }), targets)).toEqual({});
    }
    expect(targets.enqueued).toEqual([]);
  });
});
