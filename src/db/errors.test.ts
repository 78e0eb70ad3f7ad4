import { describe, expect, it } from 'vitest';
import {
  isCheckViolation,
  isRetryableConflict,
  isUniqueViolation,
  withSerializationRetry,
} from './errors.js';

const pgError = (code: string, constraint?: string) => Object.assign(new Error(code), { code, constraint });

describe('db errors', () => {
  it('recognise unique violations, optionally of one constraint', () => {
    expect(isUniqueViolation(pgError('23505', 'a_key'))).toBe(true);
    expect(isUniqueViolation(pgError('23505', 'a_key'), 'a_key')).toBe(true);
    expect(isUniqueViolation(pgError('23505', 'a_key'), 'b_key')).toBe(false);
    expect(isUniqueViolation(pgError('23514'))).toBe(false);
    expect(isUniqueViolation(null)).toBe(false);
    expect(isUniqueViolation('23505')).toBe(false);
    expect(isCheckViolation(pgError('23514', 'c'), 'c')).toBe(true);
  });

  it('retry serialization failures and deadlocks only', async () => {
    expect(isRetryableConflict(pgError('40001'))).toBe(true);
    expect(isRetryableConflict(pgError('40P01'))).toBe(true);
    expect(isRetryableConflict(pgError('23505'))).toBe(false);

    let calls = 0;
    const result = await withSerializationRetry(
      async () => {
        calls++;
        if (calls < 3) throw pgError(calls === 1 ? '40001' : '40P01');
        return 'done';
      },
      { baseDelayMs: 0 },
    );
    expect(result).toBe('done');
    expect(calls).toBe(3);

    calls = 0;
    await expect(
      withSerializationRetry(
        async () => {
          calls++;
          throw pgError('23505');
        },
        { baseDelayMs: 0 },
      ),
    ).rejects.toMatchObject({ code: '23505' });
    expect(calls).toBe(1);

    calls = 0;
    await expect(
      withSerializationRetry(
        async () => {
          calls++;
          throw pgError('40001');
        },
        { attempts: 4, baseDelayMs: 0 },
      ),
    ).rejects.toMatchObject({ code: '40001' });
    expect(calls).toBe(4);
  });
});
