/**
 * Connect tokens (tokens.ts) without any server: a token service in env-key mode (JWT_PRIVATE_KEY,
 * so the database is never touched) on a hand-moved clock. A connect token issued with an access
 * token verifies to the same claims and carries the documented MAC (recomputed here from the
 * private key alone); everything else is refused with UNAUTHORIZED 'invalid connect token' —
 * tampered claims, tampered or truncated MACs, another key's MAC, a wrong version, an unknown kid,
 * bad claims under a valid MAC, the wrong number of segments, oversized tokens, characters outside
 * base64url, the empty string — and an expired one with 'connect token expired'. Access tokens and
 * connect tokens are not interchangeable in either direction.
 */
import { createHmac, hkdfSync } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Kysely } from 'kysely';
import { describe, expect, it, vi } from 'vitest';
import type { SessionId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import { AppError } from '../../platform/errors.js';
import { type AccessClaims, createTokenService, type TokenService } from './tokens.js';

const TTL_S = 900;
const START_MS = Date.UTC(2026, 11, 5, 12, 0, 0);
const claims = {
  sub: '00000000-0000-4000-8000-00000000a11c' as UserId,
  sid: '00000000-0000-4000-8000-000000005e55' as SessionId,
  roles: ['worker', 'hirer'] as AccessClaims['roles'],
  sv: 3,
};
/** Env-key mode never reads the database. */
const noDatabase = undefined as unknown as Kysely<Database>;

const privateJwk = async (kid?: string): Promise<JWK> => {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const jwk = await exportJWK(privateKey);
  return kid === undefined ? jwk : { ...jwk, kid };
};

/** A token service holding `jwk`, on a clock the test moves. */
function service(jwk: JWK) {
  let nowMs = START_MS;
  const tokens = createTokenService(
    noDatabase,
    { issuer: 'gigwire', audience: 'gigwire', accessTtlS: TTL_S, privateKey: JSON.stringify(jwk) },
    { now: () => new Date(nowMs) },
  );
  return {
    tokens,
    /**
     * Moves the clock. The key set ages on the same clock, so a move of more than a minute makes it
     * due for a reload, and the synchronous check defers until that reload has finished: a token
     * issued now starts it, and this waits until that token is decided without waiting.
     */
    setClock: async (ms: number) => {
      nowMs = ms;
      const probe = (await tokens.issue(claims)).connectToken;
      await vi.waitFor(() => expect(tokens.verifyConnectTokenNow(probe)).toBeDefined());
    },
  };
}

/** The MAC as documented: HMAC-SHA256(HKDF-SHA256(d), "gigwire.ct1." + payload). */
const macOf = (jwk: JWK, payload: string): string => {
  const key = Buffer.from(
    hkdfSync('sha256', Buffer.from(String(jwk.d), 'base64url'), 'gigwire', 'connect-token v1', 32),
  );
  return createHmac('sha256', key).update('gigwire.ct1.').update(payload).digest('base64url');
};
const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const decode = (segment: string) =>
  JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as Record<string, unknown>;
const split = (token: string): [string, string] => {
  const [payload, mac] = token.split('.');
  return [payload ?? '', mac ?? ''];
};
/** A token with this payload and a correct MAC of `jwk`: what only a key holder can make. */
const signed = (jwk: JWK, payload: Record<string, unknown>) => {
  const encoded = encode(payload);
  return `${encoded}.${macOf(jwk, encoded)}`;
};

/** Refused with UNAUTHORIZED and this message (the default: 'invalid connect token'). */
async function expectInvalid(
  promise: Promise<unknown>,
  message = 'invalid connect token',
  label?: string,
): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error, label).toBeInstanceOf(AppError);
  expect(error, label).toMatchObject({ code: 'UNAUTHORIZED', message });
}

/**
 * verifyConnectToken, after checking that verifyConnectTokenNow (the WebSocket edge's synchronous
 * path) decides the same without waiting: the same claims or the same error — or defers
 * (undefined), which it may only do for a kid its key set lacks (the asynchronous path reloads or
 * refuses).
 */
async function verifyBoth(tokens: TokenService, token: string, label?: string): Promise<AccessClaims> {
  let now: { claims?: AccessClaims | undefined; error?: unknown };
  try {
    now = { claims: tokens.verifyConnectTokenNow(token) };
  } catch (error) {
    now = { error };
  }
  const later: { claims?: AccessClaims; error?: unknown } = await tokens.verifyConnectToken(token).then(
    (claims) => ({ claims }),
    (error: unknown) => ({ error }),
  );
  if (now.error === undefined && now.claims === undefined) {
    expect(later.error, `${label ?? token}: deferred, then refused`).toBeInstanceOf(AppError);
  } else {
    expect(now, label ?? token).toEqual(later);
  }
  if (later.error !== undefined) throw later.error;
  return later.claims as AccessClaims;
}

describe('connect tokens', () => {
  it('are issued with every access token: same claims and expiry, documented format and MAC', async () => {
    const jwk = await privateJwk('ct-key');
    const { tokens } = service(jwk);
    const issued = await tokens.issue(claims);
    expect(issued.expiresIn).toBe(TTL_S);
    const exp = Math.floor(START_MS / 1000) + TTL_S;

    const [payload, mac] = split(issued.connectToken);
    expect(issued.connectToken.split('.')).toHaveLength(2);
    expect(payload).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decode(payload)).toEqual({ v: 1, kid: 'ct-key', ...claims, exp });
    expect(mac).toBe(macOf(jwk, payload));
    expect(Buffer.from(mac, 'base64url')).toHaveLength(32);

    const verified = await verifyBoth(tokens, issued.connectToken);
    expect(verified).toEqual({ ...claims, exp });
    // The access token issued with it says the same.
    expect(await tokens.verify(issued.token)).toEqual(verified);
    // Any process holding the same key accepts it (it derives the same MAC key).
    expect(await service(jwk).tokens.verifyConnectToken(issued.connectToken)).toEqual(verified);
  });

  it('names the key by its thumbprint when the JWK has no kid', async () => {
    const jwk = await privateJwk();
    const { tokens } = service(jwk);
    const issued = await tokens.issue(claims);
    const kid = decode(split(issued.connectToken)[0]).kid;
    expect(kid).toEqual(expect.stringMatching(/^[A-Za-z0-9_-]{43}$/));
    expect(await verifyBoth(tokens, issued.connectToken)).toMatchObject(claims);
  });

  it('refuses a payload with any claim changed (re-encoded, MAC kept)', async () => {
    const jwk = await privateJwk('ct-key');
    const { tokens } = service(jwk);
    const [payload, mac] = split((await tokens.issue(claims)).connectToken);
    const original = decode(payload);
    const changes: Record<string, unknown>[] = [
      { sub: '00000000-0000-4000-8000-000000000b0b' },
      { sid: '00000000-0000-4000-8000-000000005e56' },
      { roles: ['worker', 'hirer', 'admin'] },
      { roles: [] },
      { sv: 4 },
      { exp: Number(original.exp) + 3600 },
      { kid: 'ct-key ' },
      { extra: true },
    ];
    for (const change of changes) {
      await expectInvalid(
        verifyBoth(tokens, `${encode({ ...original, ...change })}.${mac}`),
        undefined,
        JSON.stringify(change),
      );
    }
    // A claim dropped is refused just the same.
    const { sv: _dropped, ...withoutSv } = original;
    await expectInvalid(verifyBoth(tokens, `${encode(withoutSv)}.${mac}`));
    // The payload re-encoded unchanged is the same string: still accepted (the control).
    expect(await verifyBoth(tokens, `${encode(original)}.${mac}`)).toMatchObject(claims);
  });

  it('refuses a tampered, truncated, extended or foreign MAC', async () => {
    const jwk = await privateJwk('ct-key');
    const { tokens } = service(jwk);
    const [payload, mac] = split((await tokens.issue(claims)).connectToken);
    const bytes = Buffer.from(mac, 'base64url');
    for (const index of [0, 15, 31]) {
      const flipped = Buffer.from(bytes);
      flipped[index] = (flipped[index] ?? 0) ^ 0x01;
      await expectInvalid(verifyBoth(tokens, `${payload}.${flipped.toString('base64url')}`));
    }
    await expectInvalid(verifyBoth(tokens, `${payload}.${bytes.subarray(0, 31).toString('base64url')}`));
    await expectInvalid(verifyBoth(tokens, `${payload}.${mac.slice(0, -2)}`));
    await expectInvalid(
      verifyBoth(tokens, `${payload}.${Buffer.concat([bytes, Buffer.from([0])]).toString('base64url')}`),
    );
    await expectInvalid(verifyBoth(tokens, `${payload}.${Buffer.alloc(32).toString('base64url')}`));

    // Another key under the same kid: the kid is known, the MAC is not the key's.
    const impostor = service(await privateJwk('ct-key')).tokens;
    const forged = (await impostor.issue(claims)).connectToken;
    expect(split(forged)[0]).toBe(payload);
    await expectInvalid(verifyBoth(tokens, forged));
    // And the other way round.
    await expectInvalid(impostor.verifyConnectToken(`${payload}.${mac}`));
  });

  it('refuses a wrong version, an unknown kid and bad claims even under a correct MAC', async () => {
    const jwk = await privateJwk('ct-key');
    const { tokens } = service(jwk);
    const original = decode(split((await tokens.issue(claims)).connectToken)[0]);
    // The control: a payload MACed here exactly as the service does is accepted.
    expect(await verifyBoth(tokens, signed(jwk, original))).toMatchObject(claims);

    for (const v of [0, 2, '1', null, undefined]) {
      await expectInvalid(verifyBoth(tokens, signed(jwk, { ...original, v })), undefined, `v ${v}`);
    }
    // A kid of no key this service has (another service's key, or made up).
    const other = service(await privateJwk('other-key')).tokens;
    await expectInvalid(verifyBoth(tokens, (await other.issue(claims)).connectToken));
    for (const kid of ['unknown', '', 7, undefined, 'k'.repeat(129)]) {
      await expectInvalid(verifyBoth(tokens, signed(jwk, { ...original, kid })), undefined, `kid ${kid}`);
    }
    // The claims' shape is checked after the MAC.
    const badClaims: Record<string, unknown>[] = [
      { sub: 'not-a-uuid' },
      { sid: 42 },
      { roles: ['superuser'] },
      { roles: 'worker' },
      { sv: -1 },
      { sv: 1.5 },
      { exp: String(original.exp) },
      { exp: undefined },
    ];
    for (const change of badClaims) {
      await expectInvalid(
        verifyBoth(tokens, signed(jwk, { ...original, ...change })),
        undefined,
        JSON.stringify(change),
      );
    }
    // A payload that is JSON but no object, or no JSON at all.
    for (const payload of [[1, 2], 'text', 42, null]) {
      await expectInvalid(verifyBoth(tokens, signed(jwk, payload as unknown as Record<string, unknown>)));
    }
    const notJson = Buffer.from('{"v":1,').toString('base64url');
    await expectInvalid(verifyBoth(tokens, `${notJson}.${macOf(jwk, notJson)}`));
  });

  it('refuses malformed tokens before reading them', async () => {
    const jwk = await privateJwk('ct-key');
    const { tokens } = service(jwk);
    const token = (await tokens.issue(claims)).connectToken;
    const [payload, mac] = split(token);
    const malformed = [
      '',
      '.',
      payload,
      `${payload}.`,
      `.${mac}`,
      `${token}.${mac}`,
      `${payload}..${mac}`,
      ` ${token}`,
      `${token} `,
      `${payload}=.${mac}`,
      `${payload}.${mac}=`,
      `+${payload.slice(1)}.${mac}`,
      `${payload}.${mac.slice(0, -1)}+`,
      `${payload}.${mac.slice(0, 10)}/${mac.slice(11)}`,
      `${payload}.${mac.slice(0, 10)}*${mac.slice(11)}`,
      `${payload}é.${mac}`,
    ];
    for (const candidate of malformed)
      await expectInvalid(verifyBoth(tokens, candidate), undefined, candidate);

    // Over 2048 characters: refused even with a correct MAC over claims that would otherwise pass.
    const padded = signed(jwk, { ...decode(payload), pad: 'x'.repeat(1600) });
    expect(padded.length).toBeGreaterThan(2048);
    await expectInvalid(verifyBoth(tokens, padded));
    const justUnder = signed(jwk, { ...decode(payload), pad: 'x'.repeat(1200) });
    expect(justUnder.length).toBeLessThanOrEqual(2048);
    expect(await verifyBoth(tokens, justUnder)).toEqual(await verifyBoth(tokens, token));
  });

  it('expires with the access token, with the same 5 s tolerance', async () => {
    const jwk = await privateJwk('ct-key');
    const { tokens, setClock } = service(jwk);
    const issued = await tokens.issue(claims);
    const exp = Number(decode(split(issued.connectToken)[0]).exp);

    await setClock((exp + 4) * 1000 + 999);
    expect(await verifyBoth(tokens, issued.connectToken)).toMatchObject({ exp });
    await setClock((exp + 5) * 1000);
    await expectInvalid(verifyBoth(tokens, issued.connectToken), 'connect token expired');
    await expectInvalid(tokens.verify(issued.token), 'access token expired');
    await setClock((exp + 3600) * 1000);
    await expectInvalid(verifyBoth(tokens, issued.connectToken), 'connect token expired');
    // Expired is said only of a token whose MAC holds: a forged one is just invalid.
    const [payload] = split(issued.connectToken);
    await expectInvalid(verifyBoth(tokens, `${payload}.${Buffer.alloc(32).toString('base64url')}`));
  });

  it('is no access token, and an access token is no connect token', async () => {
    const { tokens } = service(await privateJwk('ct-key'));
    const issued = await tokens.issue(claims);
    await expectInvalid(tokens.verify(issued.connectToken), 'invalid access token');
    await expectInvalid(verifyBoth(tokens, issued.token));
    // Nor does either half of one pass as the other's part.
    const [head, body] = issued.token.split('.');
    await expectInvalid(verifyBoth(tokens, `${head}.${body}`));
    await expectInvalid(verifyBoth(tokens, `${body}.${split(issued.connectToken)[1]}`));
    // Both still work where they belong.
    expect(await tokens.verify(issued.token)).toMatchObject(claims);
    expect(await verifyBoth(tokens, issued.connectToken)).toMatchObject(claims);
  });

  it('decides without waiting once the key set is loaded, and defers before that', async () => {
    const jwk = await privateJwk('ct-key');
    const issuer = service(jwk).tokens;
    const issued = await issuer.issue(claims);
    // A process that has not loaded its keys yet (nothing issued or verified): the check waits.
    const { tokens } = service(jwk);
    expect(tokens.verifyConnectTokenNow(issued.connectToken)).toBeUndefined();
    // Malformed input is refused at once all the same: no key is needed for that.
    expect(() => tokens.verifyConnectTokenNow('not a token')).toThrowError('invalid connect token');
    const claimsLater = await tokens.verifyConnectToken(issued.connectToken);
    expect(tokens.verifyConnectTokenNow(issued.connectToken)).toEqual(claimsLater);
    // A kid this key set lacks: deferred to the asynchronous path, which refuses it.
    const foreign = (await service(await privateJwk('other-key')).tokens.issue(claims)).connectToken;
    expect(tokens.verifyConnectTokenNow(foreign)).toBeUndefined();
    await expectInvalid(tokens.verifyConnectToken(foreign));
  });
});
