/**
 * A received provider event is read back from its jsonb row by the payments task
 * (`applyReceivedProviderEvent`): a row that is no longer a provider event (changed by hand, or
 * written by an older build) is an error that leaves the row `received`, never an event applied
 * with missing or mistyped fields.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyReceivedProviderEvent, receiveProviderEventIn } from '../../src/domain/payments/payments.js';
import type { ProviderEvent } from '../../src/domain/payments/provider.js';
import {
  insertMalformedProviderEvent,
  openPaymentsTestDb,
  type PaymentsTestDb,
} from '../support/payments-db.js';

describe('a stored provider event read back by the payments task', () => {
  let handle: PaymentsTestDb;

  beforeAll(async () => {
    handle = await openPaymentsTestDb(2);
  });
  afterAll(async () => {
    await handle?.close();
  });

  const outcomeOf = async (id: string) =>
    (
      await handle.db
        .selectFrom('provider_events')
        .select('outcome')
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
    ).outcome;

  it('a row that matches the event schema is applied', async () => {
    const event: ProviderEvent = {
      id: `evt_${randomUUID()}`,
      type: 'charge.succeeded',
      createdAt: Math.floor(Date.now() / 1000),
      data: { paymentId: randomUUID(), providerRef: 'ch_row', amount: 500, currency: 'USD' },
    };
    await handle.db.transaction().execute((trx) => receiveProviderEventIn(trx, event));
    expect(await applyReceivedProviderEvent(handle.deps, event.id)).toBe('ignored: unknown payment');
    expect(await outcomeOf(event.id)).toBe('ignored: unknown payment');
  });

  it('a malformed row is refused and stays received', async () => {
    const id = await insertMalformedProviderEvent(handle.db);
    await expect(applyReceivedProviderEvent(handle.deps, id)).rejects.toMatchObject({
      code: 'INTERNAL',
      message: expect.stringContaining(id),
    });
    expect(await outcomeOf(id)).toBe('received');
  });
});
