import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../protocol/src/codes.js';
import { AppError } from '../errors.js';
import { isFinalFailure, isRetryableTaskError, retryByCode, runTask } from './retry.js';
import { parseTaskPayload } from './tasks.js';

const failWith = (error: unknown) => () => Promise.reject(error);

/** What `runTask` rethrows for `error`. */
async function thrownBy(error: unknown, options?: Parameters<typeof runTask>[1]): Promise<unknown> {
  try {
    await runTask(failWith(error), options);
  } catch (thrown) {
    return thrown;
  }
  throw new Error('runTask did not throw');
}

describe('retryByCode', () => {
  it('has a decision for every ErrorCode, retrying only "try later"', () => {
    expect(Object.keys(retryByCode).sort()).toEqual(Object.values(ErrorCode).sort());
    const retried = Object.entries(retryByCode)
      .filter(([, retry]) => retry)
      .map(([code]) => code)
      .sort();
    expect(retried).toEqual(['RATE_LIMITED', 'UNAVAILABLE']);
  });
});

describe('runTask', () => {
  it('returns what the work returns', async () => {
    await expect(runTask(async () => 42)).resolves.toBe(42);
  });

  it.each(['UNAVAILABLE', 'RATE_LIMITED'] as const)(
    'rethrows an AppError %s unchanged (retried)',
    async (code) => {
      const error = new AppError(code, 'later');
      expect(await thrownBy(error)).toBe(error);
    },
  );

  it.each([
    'VALIDATION_FAILED',
    'UNAUTHORIZED',
    'FORBIDDEN',
    'NOT_FOUND',
    'CONFLICT',
    'INVALID_TRANSITION',
    'INSUFFICIENT_FUNDS',
    'INTERNAL',
  ] as const)('fails an AppError %s for good, keeping its message and the error as cause', async (code) => {
    const error = new AppError(code, `refused: ${code}`, { details: { reason: 'X' } });
    const thrown = await thrownBy(error);
    expect(thrown).toBeInstanceOf(UnrecoverableError);
    expect((thrown as Error).message).toBe(`refused: ${code}`);
    expect((thrown as Error).cause).toBe(error);
  });

  it('fails for good a corrupt stored row (AppError INTERNAL caused by a parse failure)', async () => {
    const error = new AppError('INTERNAL', 'stored provider event evt_1 is not a provider event', {
      cause: new TypeError('amount: expected number'),
    });
    expect(await thrownBy(error)).toBeInstanceOf(UnrecoverableError);
  });

  it('retries an AppError whose cause is an outage, whatever its code', async () => {
    const outage = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const internal = new AppError('INTERNAL', 'could not read the row', { cause: outage });
    expect(await thrownBy(internal)).toBe(internal);
    const wrapped = new AppError('INTERNAL', 'the actor failed', {
      cause: new AppError('UNAVAILABLE', 'the bus is unreachable'),
    });
    expect(await thrownBy(wrapped)).toBe(wrapped);
  });

  it.each([
    ['a driver error', Object.assign(new Error('terminating connection'), { code: '57P01' })],
    ['a serialization failure', Object.assign(new Error('could not serialize'), { code: '40001' })],
    ['a timeout', new Error('call timed out after 5000 ms')],
    ['a plain bug', new TypeError('x is undefined')],
    ['a non-Error', 'boom'],
  ])('rethrows %s unchanged (retried)', async (_, error) => {
    expect(await thrownBy(error)).toBe(error);
    expect(isRetryableTaskError(error)).toBe(true);
  });

  it('rethrows an UnrecoverableError the work threw itself unchanged', async () => {
    const error = new UnrecoverableError('the contract does not exist');
    expect(await thrownBy(error)).toBe(error);
  });

  it('retries an AppError the caller names as an exception (retryAlso), and only that one', async () => {
    const early = new AppError('CONFLICT', 'too early', { details: { reason: 'TIMER_EARLY' } });
    const other = new AppError('CONFLICT', 'settled', { details: { reason: 'OTHER' } });
    const retryAlso = (error: AppError) => error.details?.reason === 'TIMER_EARLY';
    expect(await thrownBy(early, { retryAlso })).toBe(early);
    expect(await thrownBy(other, { retryAlso })).toBeInstanceOf(UnrecoverableError);
  });
});

describe('isFinalFailure', () => {
  const job = (attemptsMade: number) => ({ attemptsMade, opts: { attempts: 3 } });
  it('is the last attempt or an unrecoverable error', () => {
    expect(isFinalFailure(job(1), new Error('x'))).toBe(false);
    expect(isFinalFailure(job(3), new Error('x'))).toBe(true);
    expect(isFinalFailure(job(1), new UnrecoverableError('x'))).toBe(true);
  });
});

describe('parseTaskPayload', () => {
  it('returns a payload that fits its task', () => {
    const paymentId = '2f0d1c8e-5b7a-4c1e-9a3b-0e6f4d2c1a90';
    expect(parseTaskPayload('payments.submit', { paymentId })).toEqual({ paymentId });
  });

  it('fails a payload that does not fit for good, naming the task', () => {
    let thrown: unknown;
    try {
      parseTaskPayload('payments.submit', { paymentId: 'not-a-uuid' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(UnrecoverableError);
    expect((thrown as Error).message).toMatch(/^invalid payments\.submit payload: /);
  });
});
