import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../platform/errors.js';
import { decodeHistoryCursor, encodeHistoryCursor } from './history.js';
import {
  assertAmount,
  assertBalanced,
  availableOf,
  findBalanceOverflow,
  findShortfall,
  MAX_AMOUNT,
  netDeltas,
  planEscrowPayout,
  sameEffect,
  splitFee,
} from './rules.js';

const account = (id: string, posted: bigint, pendingDebits = 0n, allowNegative = false) => ({
  id,
  kind: allowNegative ? 'provider_clearing' : 'wallet',
  currency: 'USD',
  posted,
  pendingDebits,
  allowNegative,
});

describe('payments rules', () => {
  it('accept amounts from 1 to 2^53 - 1 minor units only', () => {
    expect(() => assertAmount(1n)).not.toThrow();
    expect(() => assertAmount(MAX_AMOUNT)).not.toThrow();
    for (const bad of [0n, -1n, MAX_AMOUNT + 1n]) {
      expect(() => assertAmount(bad)).toThrow(AppError);
    }
  });

  it('take the platform fee rounded half up, fee + net = amount exactly', () => {
    expect(splitFee(1000n, 1000)).toEqual({ fee: 100n, net: 900n });
    expect(splitFee(5n, 1000)).toEqual({ fee: 1n, net: 4n }); // 0.5 rounds up
    expect(splitFee(4n, 1000)).toEqual({ fee: 0n, net: 4n }); // 0.4 rounds down
    expect(splitFee(1n, 0)).toEqual({ fee: 0n, net: 1n });
    expect(splitFee(7n, 10_000)).toEqual({ fee: 7n, net: 0n });
    expect(() => splitFee(1n, 10_001)).toThrow(RangeError);
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: MAX_AMOUNT }),
        fc.integer({ min: 0, max: 10_000 }),
        (amount, bps) => {
          const { fee, net } = splitFee(amount, bps);
          return fee + net === amount && fee >= 0n && net >= 0n;
        },
      ),
      { seed: 11 },
    );
  });

  it('pay an escrow out in legs that sum to the held amount', () => {
    expect(planEscrowPayout(1000n, 1000n, 1000)).toEqual({ toWorker: 900n, fee: 100n, toHirer: 0n });
    expect(planEscrowPayout(1000n, 0n, 1000)).toEqual({ toWorker: 0n, fee: 0n, toHirer: 1000n });
    expect(planEscrowPayout(1000n, 333n, 1000)).toEqual({ toWorker: 300n, fee: 33n, toHirer: 667n });
    expect(() => planEscrowPayout(1000n, 1001n, 1000)).toThrow(AppError);
    fc.assert(
      fc.property(
        fc
          .bigInt({ min: 1n, max: MAX_AMOUNT })
          .chain((held) => fc.tuple(fc.constant(held), fc.bigInt({ min: 0n, max: held }))),
        fc.integer({ min: 0, max: 10_000 }),
        ([held, share], bps) => {
          const p = planEscrowPayout(held, share, bps);
          return p.toWorker + p.fee + p.toHirer === held;
        },
      ),
      { seed: 11 },
    );
  });

  it('compute available as posted minus pending debits and report the shortfall', () => {
    expect(availableOf({ posted: 100n, pendingDebits: 30n })).toBe(70n);
    const accounts = new Map([
      ['1', account('1', 100n, 30n)],
      ['2', account('2', 0n)],
      ['3', account('3', -500n, 0n, true)],
    ]);
    expect(
      findShortfall(
        accounts,
        new Map([
          ['1', -70n],
          ['2', 70n],
        ]),
      ),
    ).toBeUndefined();
    expect(
      findShortfall(
        accounts,
        new Map([
          ['1', -100n],
          ['2', 100n],
        ]),
      )?.shortfall,
    ).toBe(30n);
    // Provider clearing may go negative; credits never fall short.
    expect(
      findShortfall(
        accounts,
        new Map([
          ['3', -1_000n],
          ['2', 1_000n],
        ]),
      ),
    ).toBeUndefined();
    expect(() => findShortfall(accounts, new Map([['9', -1n]]))).toThrow(/not locked/);
  });

  it('cap credits to accounts that cannot go negative at 2^53 - 1 posted', () => {
    const accounts = new Map([
      ['wallet', account('wallet', MAX_AMOUNT - 10n)],
      ['clearing', account('clearing', -MAX_AMOUNT, 0n, true)],
    ]);
    const credit = (id: string, amount: bigint) => findBalanceOverflow(accounts, new Map([[id, amount]]));
    expect(credit('wallet', 10n)).toBeUndefined();
    expect(credit('wallet', 11n)?.id).toBe('wallet');
    // Debits never overflow; the platform's own clearing account is not shown and not capped.
    expect(credit('wallet', -MAX_AMOUNT)).toBeUndefined();
    expect(credit('clearing', MAX_AMOUNT * 3n)).toBeUndefined();
    expect(() => credit('nowhere', 1n)).toThrow(/not locked/);
  });

  it('refuse unbalanced, one-legged and zero entries', () => {
    expect(() =>
      assertBalanced([
        { accountId: '1', amount: -5n },
        { accountId: '2', amount: 5n },
      ]),
    ).not.toThrow();
    expect(() =>
      assertBalanced([
        { accountId: '1', amount: -5n },
        { accountId: '2', amount: 4n },
      ]),
    ).toThrow(/sum to -1/);
    expect(() =>
      assertBalanced([
        { accountId: '1', amount: 0n },
        { accountId: '2', amount: 0n },
      ]),
    ).toThrow(AppError);
    expect(() => assertBalanced([{ accountId: '1', amount: 1n }])).toThrow(AppError);
  });

  it('net entries per account and compare effects for replays', () => {
    const a = [
      { accountId: '1', amount: -5n },
      { accountId: '2', amount: 3n },
      { accountId: '2', amount: 2n },
    ];
    expect(netDeltas(a)).toEqual(
      new Map([
        ['1', -5n],
        ['2', 5n],
      ]),
    );
    expect(
      sameEffect(a, [
        { accountId: '2', amount: 5n },
        { accountId: '1', amount: -5n },
      ]),
    ).toBe(true);
    expect(
      sameEffect(a, [
        { accountId: '2', amount: 4n },
        { accountId: '1', amount: -4n },
      ]),
    ).toBe(false);
  });
});

describe('wallet history cursors', () => {
  it('round-trip entry ids and refuse anything else', () => {
    expect(decodeHistoryCursor(encodeHistoryCursor('42'))).toBe('42');
    expect(decodeHistoryCursor(undefined)).toBeUndefined();
    for (const bad of [
      '',
      'xyz',
      encodeHistoryCursor('0'),
      encodeHistoryCursor('-1'),
      encodeHistoryCursor('99999999999999999999'),
    ]) {
      expect(() => decodeHistoryCursor(bad)).toThrow(AppError);
    }
  });
});
