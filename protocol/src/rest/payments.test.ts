import { describe, expect, it } from 'vitest';
import { TopUpRequest, TransferRequest, WithdrawalRequest } from './payments.js';

describe('payments REST schemas', () => {
  it('accept integer amounts from 1 to 2^53 - 1 only, and no unknown fields', () => {
    const card = '4242424242424242';
    expect(TopUpRequest.safeParse({ amount: 1, card }).success).toBe(true);
    expect(TopUpRequest.safeParse({ amount: Number.MAX_SAFE_INTEGER, card }).success).toBe(true);
    for (const amount of [0, -1, 1.5, 2 ** 53, '100', Number.NaN]) {
      expect(TopUpRequest.safeParse({ amount, card }).success).toBe(false);
    }
    expect(TopUpRequest.safeParse({ amount: 1, card, extra: 1 }).success).toBe(false);
    expect(WithdrawalRequest.safeParse({ amount: 1, bankAccount: 'GB29NWBK60161331926819' }).success).toBe(
      true,
    );
    expect(WithdrawalRequest.safeParse({ amount: 1, bankAccount: 'GB29 NWBK' }).success).toBe(false);
    expect(
      TransferRequest.safeParse({ toUserId: '6f1c2a8e-0b0e-4f3c-9a57-2d7f0e1c4b21', amount: 5 }).success,
    ).toBe(true);
  });
});
