/**
 * The password hasher (passwords.ts) without any server: a password typed composed on one device
 * and decomposed on another (or pasted) is the same password, and a hash made before passwords were
 * normalised still verifies the password exactly as it was sent then.
 */
import { hash } from '@node-rs/argon2';
import { describe, expect, it } from 'vitest';
import { createPasswordHasher } from './passwords.js';

/** "Crème brûlée" in both Unicode forms: equal on screen, different code points. */
const COMPOSED = 'Cr\u00e8me-br\u00fbl\u00e9e-Souffl\u00e9-7';
const DECOMPOSED = COMPOSED.normalize('NFD');

describe('password hasher', () => {
  const passwords = createPasswordHasher();

  it('treats a password composed and decomposed as the same password, either way round', async () => {
    expect(DECOMPOSED).not.toBe(COMPOSED);
    const fromDecomposed = await passwords.hash(DECOMPOSED);
    expect(await passwords.verify(fromDecomposed, COMPOSED)).toBe(true);
    expect(await passwords.verify(fromDecomposed, DECOMPOSED)).toBe(true);
    const fromComposed = await passwords.hash(COMPOSED);
    expect(await passwords.verify(fromComposed, DECOMPOSED)).toBe(true);
    expect(await passwords.verify(fromComposed, 'Creme-brulee-Souffle-7')).toBe(false);
  });

  it('still verifies a hash made before normalisation from a decomposed password, and nothing else', async () => {
    const legacy = await hash(DECOMPOSED, { memoryCost: 19_456, timeCost: 2, parallelism: 1 });
    expect(await passwords.verify(legacy, DECOMPOSED)).toBe(true);
    expect(await passwords.verify(legacy, `${DECOMPOSED}x`)).toBe(false);
    expect(await passwords.verify(undefined, DECOMPOSED)).toBe(false);
    // Such a hash is worth replacing (login rehashes it); a hash of the NFC form is not.
    expect(await passwords.isUnnormalized?.(legacy, DECOMPOSED)).toBe(true);
    expect(await passwords.isUnnormalized?.(await passwords.hash(DECOMPOSED), DECOMPOSED)).toBe(false);
    expect(await passwords.isUnnormalized?.(legacy, COMPOSED)).toBe(false);
  });
});

describe('password hasher under a burst (review 20)', () => {
  it('runs at most atOnce at a time, lets waitingMax wait, and refuses the rest UNAVAILABLE', async () => {
    const passwords = createPasswordHasher({ atOnce: 1, waitingMax: 2 });
    const stored = await passwords.hash('Correct-Horse-7');
    // One runs, two wait; an unknown account's check and a known one's behind them are refused
    // alike (the refusal tells nothing about which exists).
    const outcomes = await Promise.allSettled([
      passwords.hash('Another-Horse-7'),
      passwords.verify(stored, 'Correct-Horse-7'),
      passwords.verify(stored, 'Wrong-Horse-7'),
      passwords.verify(undefined, 'Correct-Horse-7'),
      passwords.verify(stored, 'Correct-Horse-7'),
    ]);
    expect(outcomes[0]?.status).toBe('fulfilled');
    expect(outcomes.slice(1, 3)).toEqual([
      { status: 'fulfilled', value: true },
      { status: 'fulfilled', value: false },
    ]);
    for (const refused of outcomes.slice(3)) {
      expect(refused).toMatchObject({
        status: 'rejected',
        reason: { code: 'UNAVAILABLE', details: { retryAfterS: 1 } },
      });
    }
    // Nothing is left held: later requests run, an unknown account's included (its dummy hash,
    // refused above, is made again).
    expect(await passwords.verify(undefined, 'Correct-Horse-7')).toBe(false);
    expect(await passwords.verify(stored, 'Correct-Horse-7')).toBe(true);
  });
});

describe('password hasher shared between client networks (review 21)', () => {
  it('keeps one network to its share of the line and starts the waiting one network at a time', async () => {
    // One runs, four may wait; one network holds at most three of those five places.
    const passwords = createPasswordHasher({ atOnce: 1, waitingMax: 4, perSourceMax: 3 });
    const stored = await passwords.hash('Correct-Horse-7');
    const finished: string[] = [];
    const check = (source: string) =>
      passwords.verify(stored, 'Correct-Horse-7', source).then((valid) => {
        finished.push(source);
        return valid;
      });
    // A flood from one network: without shares it filled the line, and the other network's
    // sign-in behind it was refused UNAVAILABLE like the flood's own surplus.
    const flood = Array.from({ length: 10 }, () => check('198.51.100.7'));
    const other = check('203.0.113.9');
    const outcomes = await Promise.allSettled([...flood, other]);
    expect(outcomes.at(-1)).toEqual({ status: 'fulfilled', value: true });
    expect(outcomes.slice(0, 3)).toEqual(Array(3).fill({ status: 'fulfilled', value: true }));
    for (const refused of outcomes.slice(3, 10)) {
      expect(refused).toMatchObject({
        status: 'rejected',
        reason: { code: 'RATE_LIMITED', details: { retryAfterS: 1 } },
      });
    }
    // The other network waited behind one of the flood's, not behind all of them.
    expect(finished).toEqual(['198.51.100.7', '198.51.100.7', '203.0.113.9', '198.51.100.7']);
    // Its places are given back: the same network is served again.
    expect(await check('198.51.100.7')).toBe(true);
  });
});
