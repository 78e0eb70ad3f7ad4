/**
 * Failures of the payments tasks that no retry can change fail the task for good at once
 * (UnrecoverableError, `runTask` and `retryByCode`), instead of 54 attempts over about 3 h: a
 * stored provider event row that no longer parses (AppError INTERNAL naming it; the row stays
 * `received` for an operator) and a payment that does not exist (NOT_FOUND).
 */
import { randomUUID } from 'node:crypto';
import { UnrecoverableError } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PaymentProvider } from '../../src/domain/payments/provider.js';
import { AppError } from '../../src/platform/errors.js';
import {
  applyEventTask,
  type PaymentsWorkerDeps,
  submitPaymentTask,
} from '../../src/workers/payments/processor.js';
import { captureLogs } from '../support/context.js';
import {
  insertMalformedProviderEvent,
  openPaymentsTestDb,
  type PaymentsTestDb,
} from '../support/payments-db.js';

let handle: PaymentsTestDb;
let worker: PaymentsWorkerDeps;

beforeAll(async () => {
  handle = await openPaymentsTestDb(2);
  const provider = {
    charge: () => Promise.reject(new Error('not called')),
    payout: () => Promise.reject(new Error('not called')),
  } as unknown as PaymentProvider;
  worker = { payments: handle.deps, provider, log: captureLogs().log } as unknown as PaymentsWorkerDeps;
});

afterAll(async () => {
  await handle?.close();
});

describe('payments tasks that cannot succeed by retrying', () => {
  it('apply-event of a malformed stored row fails for good, naming the row; the row stays received', async () => {
    const id = await insertMalformedProviderEvent(handle.db);
    const thrown = await applyEventTask(worker, { eventId: id }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(thrown).toBeInstanceOf(UnrecoverableError);
    expect((thrown as Error).message).toContain(id);
    expect((thrown as Error).cause).toBeInstanceOf(AppError);
    expect((thrown as Error).cause).toMatchObject({ code: 'INTERNAL' });
    const row = await handle.db
      .selectFrom('provider_events')
      .select('outcome')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.outcome).toBe('received');
  });

  it('submit of an unknown payment fails for good', async () => {
    await expect(submitPaymentTask(worker, { paymentId: randomUUID() }, 1)).rejects.toBeInstanceOf(
      UnrecoverableError,
    );
  });
});
