/**
 * Access tokens: EdDSA (Ed25519) JWTs with a `kid`, `typ: at+jwt`, 15 minutes by default, carrying
 * sub, sid (the session), roles and sv (the user's session version). Any standard JWT library can
 * verify them from /.well-known/jwks.json alone.
 *
 * Keys: from JWT_PRIVATE_KEY when set (production), otherwise generated on first start and kept in
 * `signing_keys` so every process signs with the same key. Rotation adds a key and retires the old
 * ones; a retired key stays in the JWKS (and verifies) until every token it signed has expired.
 * Every process reloads the key set each minute, and at once on an unknown kid (tokens with unknown
 * kids share the reload in flight, and one starts at most every 5 s).
 *
 * Connect tokens (issue 15): issued next to every access token, with the same claims and expiry,
 * and accepted only when a WebSocket opens (`connect.<token>`). They are HMAC-SHA256, not Ed25519:
 * checking one costs about 3 µs where an Ed25519 signature costs about 77 µs on the reference
 * machine, and a token is new to a node on every first connect (and after every node restart: a
 * reconnect storm). The MAC key of each signing key is derived from its private key (HKDF), so
 * only processes that can sign access tokens can make or check them, and rotation retires them
 * together. Format: `<payload>.<mac>`, both base64url; payload JSON {v: 1, kid, sub, sid, roles,
 * sv, exp}; mac = HMAC(key of kid, "gigwire.ct1." + payload). A connect token is no access token:
 * REST and `auth.refresh` refuse it (two segments, not a JWS).
 */
import {
  createHmac,
  createPublicKey,
  hkdfSync,
  type KeyObject,
  randomUUID,
  hash as sha256Of,
  timingSafeEqual,
  verify as verifySignature,
} from 'node:crypto';
import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  SignJWT,
} from 'jose';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { SessionId, UserId } from '../../../protocol/src/ids.js';
import { Role } from '../../../protocol/src/rest/users.js';
import type { Database } from '../../db/database.js';
import {
  hasActiveSigningKey,
  insertSigningKey,
  lockSigningKeyCreation,
  publishedSigningKeys,
  retireActiveSigningKeys,
} from '../../db/repositories/signing-keys.repo.js';
import type { Clock } from '../../platform/clock.js';
import { AppError } from '../../platform/errors.js';
import { RecencyMap } from '../../platform/recency-map.js';

const ALG = 'EdDSA';
const TYP = 'at+jwt';
const RELOAD_EVERY_MS = 60_000;
const UNKNOWN_KID_RELOAD_MIN_MS = 5_000;
/** Leeway for clocks of other verifiers; small, so expiry means expiry. */
const CLOCK_TOLERANCE_S = 5;
/** Most verified tokens remembered (each until it expires); the least recently used goes first. */
const VERIFIED_CACHE_MAX = 10_000;

export interface TokenSettings {
  readonly issuer: string;
  readonly audience: string;
  readonly accessTtlS: number;
  /** Private JWK JSON; undefined = keys in the database. */
  readonly privateKey: string | undefined;
}

export const AccessClaims = z.object({
  sub: UserId,
  sid: SessionId,
  roles: z.array(Role),
  sv: z.number().int().min(0),
  exp: z.number(),
});
export type AccessClaims = z.infer<typeof AccessClaims>;

interface LoadedKeys {
  /** When the load finished, ms on the service's clock (what RELOAD_EVERY_MS is measured on). */
  readonly loadedAt: number;
  readonly signer: { readonly kid: string; readonly key: CryptoKey };
  /** Public keys by kid, as node:crypto KeyObjects: verification is synchronous. */
  readonly verifiers: ReadonlyMap<string, KeyObject>;
  /** Connect-token MAC keys by kid (derived from each private key). */
  readonly connectKeys: ReadonlyMap<string, Buffer>;
  readonly jwks: readonly JWK[];
}

const publicPart = (jwk: JWK, kid: string): JWK => ({
  kty: jwk.kty,
  crv: jwk.crv,
  x: jwk.x,
  kid,
  alg: ALG,
  use: 'sig',
});

const publicKeyOf = (jwk: JWK): KeyObject =>
  createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: String(jwk.x) }, format: 'jwk' });

const invalidToken = () => new AppError('UNAUTHORIZED', 'invalid access token');
const invalidConnectToken = () => new AppError('UNAUTHORIZED', 'invalid connect token');

const CONNECT_TOKEN_VERSION = 1;
const CONNECT_MAC_CONTEXT = 'gigwire.ct1.';
/** Longer than any connect token we issue (about 250 characters); refused before any parsing. */
const MAX_CONNECT_TOKEN_CHARS = 2048;

/** The connect-token MAC key of a signing key: HKDF-SHA256 of its private scalar `d`. */
const connectKeyOf = (privateJwk: JWK): Buffer => {
  if (typeof privateJwk.d !== 'string') throw new Error('signing key without its private part');
  return Buffer.from(
    hkdfSync('sha256', Buffer.from(privateJwk.d, 'base64url'), 'gigwire', 'connect-token v1', 32),
  );
};

const connectMac = (key: Buffer, payload: string): Buffer =>
  createHmac('sha256', key).update(CONNECT_MAC_CONTEXT).update(payload).digest();
const SEGMENT = /^[A-Za-z0-9_-]+$/;
/** Longer than any token we issue (about 450 characters); refused before any parsing. */
const MAX_TOKEN_CHARS = 4096;

interface ParsedConnectToken {
  readonly payload: string;
  readonly mac: Buffer;
  readonly claims: Record<string, unknown>;
  readonly kid: string;
}

/** A connect token's shape: two base64url segments, a 32-byte MAC, a JSON payload of our version. */
function parseConnectToken(token: string): ParsedConnectToken {
  if (token.length > MAX_CONNECT_TOKEN_CHARS) throw invalidConnectToken();
  const [payload, mac, extra] = token.split('.');
  if (
    payload === undefined ||
    mac === undefined ||
    extra !== undefined ||
    !SEGMENT.test(payload) ||
    !SEGMENT.test(mac)
  ) {
    throw invalidConnectToken();
  }
  const macBytes = Buffer.from(mac, 'base64url');
  if (macBytes.length !== 32) throw invalidConnectToken();
  const claims = jsonObjectOf(payload);
  if (claims === undefined || claims.v !== CONNECT_TOKEN_VERSION || typeof claims.kid !== 'string')
    throw invalidConnectToken();
  return { payload, mac: macBytes, claims, kid: claims.kid };
}

function jsonObjectOf(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** A media type as RFC 8725 compares it: case-insensitive, `application/` optional. */
const normalizeTyp = (typ: string) => typ.toLowerCase().replace(/^application\//, '');

/**
 * The claim checks jose's jwtVerify made for us (RFC 7519 §4.1, with our required claims), in its
 * order; the shape of our own claims is AccessClaims'. @throws AppError UNAUTHORIZED
 */
function checkedClaims(
  payload: Record<string, unknown>,
  settings: TokenSettings,
  nowS: number,
): AccessClaims {
  for (const claim of ['iss', 'aud', 'exp', 'iat', 'sub', 'jti'])
    if (!(claim in payload)) throw invalidToken();
  if (payload.iss !== settings.issuer) throw invalidToken();
  const aud = payload.aud;
  if (!(aud === settings.audience || (Array.isArray(aud) && aud.includes(settings.audience))))
    throw invalidToken();
  if (typeof payload.iat !== 'number') throw invalidToken();
  if (
    payload.nbf !== undefined &&
    (typeof payload.nbf !== 'number' || payload.nbf > nowS + CLOCK_TOLERANCE_S)
  )
    throw invalidToken();
  if (typeof payload.exp !== 'number') throw invalidToken();
  // Say expired when it is (clients refresh then); never echo what else was wrong.
  if (payload.exp <= nowS - CLOCK_TOLERANCE_S) throw new AppError('UNAUTHORIZED', 'access token expired');
  const claims = AccessClaims.safeParse(payload);
  if (!claims.success) throw invalidToken();
  return claims.data;
}

export interface TokenService {
  /** An access token and its connect token (same claims, same expiry). */
  readonly issue: (
    claims: Omit<AccessClaims, 'exp'>,
  ) => Promise<{ token: string; connectToken: string; expiresIn: number }>;
  /** Seconds an access token lives (how long a revocation matters to the revocation feed). */
  readonly accessTtlS: number;
  /** @throws AppError UNAUTHORIZED for anything but a valid, unexpired token of ours. */
  readonly verify: (token: string) => Promise<AccessClaims>;
  /**
   * `verify` without waiting, for a token this node verified before: its claims (or the expiry
   * error) from memory; undefined when the signature must be checked (then call `verify`).
   */
  readonly verifyKnown: (token: string) => AccessClaims | undefined;
  /** @throws AppError UNAUTHORIZED for anything but a valid, unexpired connect token of ours. */
  readonly verifyConnectToken: (token: string) => Promise<AccessClaims>;
  /**
   * `verifyConnectToken` without waiting: the same claims or the same error when the key set is
   * at hand, undefined when the check must wait for it (not loaded yet, due for its periodic
   * reload, or a kid it does not know): then call `verifyConnectToken`.
   */
  readonly verifyConnectTokenNow: (token: string) => AccessClaims | undefined;
  readonly jwks: () => Promise<{ keys: JWK[] }>;
  /**
   * Starts the periodic reload of the key set when it is due, without waiting for it. The serving
   * process calls it on every revocation-feed poll, so a node that issued and verified nothing new
   * for a while still never signs with a set older than about RELOAD_EVERY_MS: a set loaded before a
   * rotation signs with the retired key, which is published (and verifies) only until the tokens it
   * could have signed within a minute of the rotation expire.
   */
  readonly keepFresh: () => void;
  /** Adds a new signing key (database keys only); returns its kid. */
  readonly rotate: () => Promise<string>;
}

async function newDatabaseKey(db: Kysely<Database>): Promise<string> {
  const { privateKey, publicKey } = await generateKeyPair(ALG, { crv: 'Ed25519', extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  await insertSigningKey(db, {
    kid,
    alg: ALG,
    publicJwk: publicPart(publicJwk, kid) as Record<string, unknown>,
    privateJwk: { ...(await exportJWK(privateKey)), kid } as Record<string, unknown>,
  });
  return kid;
}

export function createTokenService(
  db: Kysely<Database>,
  settings: TokenSettings,
  clock: Clock,
): TokenService {
  /** The injected clock in ms: key-set ages are measured on the clock that tests move, like expiry. */
  const nowMs = () => clock.now().getTime();
  let loaded: Promise<LoadedKeys> | undefined;
  /** The newest key set that finished loading (what verification reads synchronously). */
  let settled: LoadedKeys | undefined;

  const loadFromEnvironment = async (): Promise<LoadedKeys> => {
    const jwk = JSON.parse(settings.privateKey ?? '{}') as JWK;
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string') {
      throw new Error(
        'JWT_PRIVATE_KEY must be an Ed25519 private JWK ({"kty":"OKP","crv":"Ed25519","d":…,"x":…})',
      );
    }
    const kid = jwk.kid ?? (await calculateJwkThumbprint(publicPart(jwk, '')));
    const publicJwk = publicPart(jwk, kid);
    return {
      loadedAt: nowMs(),
      signer: { kid, key: (await importJWK({ ...jwk, alg: ALG }, ALG)) as CryptoKey },
      verifiers: new Map([[kid, publicKeyOf(publicJwk)]]),
      connectKeys: new Map([[kid, connectKeyOf(jwk)]]),
      jwks: [publicJwk],
    };
  };

  const loadFromDatabase = async (): Promise<LoadedKeys> => {
    const publishedSince = new Date(nowMs() - (settings.accessTtlS + 60) * 1000);
    const select = () => publishedSigningKeys(db, publishedSince);
    let rows = await select();
    if (!rows.some((row) => row.retired_at === null)) {
      // Processes starting together on an empty table (compose, GATEWAY_PROCESSES) must agree on
      // one key: each would otherwise create its own, sign with it and refuse the others' tokens
      // until its next reload. The first under the lock creates it; the others find it.
      await db.transaction().execute(async (trx) => {
        await lockSigningKeyCreation(trx);
        if (!(await hasActiveSigningKey(trx))) await newDatabaseKey(trx);
      });
      rows = await select();
    }
    const signerRow = rows.find((row) => row.retired_at === null);
    if (signerRow === undefined) throw new Error('no signing key available');
    const verifiers = new Map<string, KeyObject>();
    const connectKeys = new Map<string, Buffer>();
    for (const row of rows) {
      verifiers.set(row.kid, publicKeyOf(row.public_jwk as JWK));
      connectKeys.set(row.kid, connectKeyOf(row.private_jwk as JWK));
    }
    return {
      loadedAt: nowMs(),
      signer: { kid: signerRow.kid, key: (await importJWK(signerRow.private_jwk as JWK, ALG)) as CryptoKey },
      verifiers,
      connectKeys,
      jwks: rows.map((row) => row.public_jwk as JWK),
    };
  };

  /** The load in flight, if any: background refreshes and unknown kids join it rather than start another. */
  let reloading: Promise<LoadedKeys> | undefined;
  /** When the last load started (not finished): what limits reloads on unknown kids. */
  let reloadStartedAt = Number.NEGATIVE_INFINITY;

  /** A new load, whatever is in flight (after a rotation only a load started since will do). */
  const reload = () => {
    reloadStartedAt = nowMs();
    const next = settings.privateKey === undefined ? loadFromDatabase() : loadFromEnvironment();
    // A failed load must not stick: the next call tries again.
    next.then(
      (keys) => {
        if (settled === undefined || keys.loadedAt >= settled.loadedAt) settled = keys;
        if (reloading === next) reloading = undefined;
      },
      () => {
        if (loaded === next) loaded = undefined;
        if (reloading === next) reloading = undefined;
      },
    );
    loaded = next;
    reloading = next;
    return next;
  };

  /**
   * The loaded keys at once; a stale set is refreshed in the background (stale-while-revalidate).
   * MUST NOT wait for the database once loaded: `issue` runs inside callers' transactions, and on
   * PGlite (one connection) a query outside that transaction would wait for it forever.
   */
  const keys = async (): Promise<LoadedKeys> => {
    // The settled set, never the reload in flight: awaiting that would make a caller inside a
    // transaction wait for a query that may need the very connection it holds.
    const current = settled ?? (await (loaded ?? reload()));
    if (nowMs() - current.loadedAt > RELOAD_EVERY_MS && reloading === undefined) {
      reload().catch(() => undefined);
    }
    return current;
  };

  /**
   * A load for a kid the set does not know: the one in flight, else a new one unless the last
   * started within UNKNOWN_KID_RELOAD_MIN_MS (then undefined). A kid is read before the MAC or
   * signature is checked, so made-up kids cost their sender nothing: however many arrive, they
   * share one load at a time and start at most one every UNKNOWN_KID_RELOAD_MIN_MS.
   */
  const reloadForUnknownKid = (): Promise<LoadedKeys> | undefined => {
    if (reloading !== undefined) return reloading;
    if (nowMs() - reloadStartedAt <= UNKNOWN_KID_RELOAD_MIN_MS) return undefined;
    return reload();
  };

  /**
   * The public key of a kid. Answers from the last loaded set without awaiting anything (the
   * verification path stays synchronous); a stale set is refreshed in the background, an unknown
   * kid waits for a reload (see reloadForUnknownKid).
   */
  const keyOfKid = async <K>(
    kid: string | undefined,
    pick: (set: LoadedKeys) => ReadonlyMap<string, K>,
    invalid: () => AppError,
  ): Promise<K> => {
    if (kid === undefined || kid.length > 128) throw invalid();
    let current = settled;
    if (current === undefined || nowMs() - current.loadedAt > RELOAD_EVERY_MS) current = await keys();
    let key = pick(current).get(kid);
    const reloaded = key === undefined ? reloadForUnknownKid() : undefined;
    if (reloaded !== undefined) key = pick(await reloaded).get(kid);
    if (key === undefined) throw invalid();
    return key;
  };
  const verificationKey = (kid: string | undefined) => keyOfKid(kid, (set) => set.verifiers, invalidToken);

  /** A connect token's MAC key when the key set is at hand and knows the kid; else undefined. */
  const connectKeyNow = (kid: string): Buffer | undefined => {
    if (kid.length > 128) throw invalidConnectToken();
    const current = settled;
    if (current === undefined || nowMs() - current.loadedAt > RELOAD_EVERY_MS) return undefined;
    return current.connectKeys.get(kid);
  };
  /** The MAC, then the claims and the expiry, of a token `parseConnectToken` accepted. */
  const checkedConnectClaims = (parsed: ParsedConnectToken, key: Buffer): AccessClaims => {
    if (!timingSafeEqual(connectMac(key, parsed.payload), parsed.mac)) throw invalidConnectToken();
    const claims = AccessClaims.safeParse(parsed.claims);
    if (!claims.success) throw invalidConnectToken();
    const nowS = Math.floor(nowMs() / 1000);
    if (claims.data.exp <= nowS - CLOCK_TOLERANCE_S)
      throw new AppError('UNAUTHORIZED', 'connect token expired');
    return claims.data;
  };

  /**
   * Claims of tokens whose signature and claims were checked, until each expires (the expiry is
   * checked again on every hit), in least-recently-used order. Keyed by the token's SHA-256, not
   * the token: about 60 bytes of key per entry instead of 450 (idle sockets' memory counts), for
   * about a microsecond per lookup. Whether the session is still alive is not cached here.
   */
  const verified = new RecencyMap<string, AccessClaims>(VERIFIED_CACHE_MAX);
  /** The claims of a token verified before (re-checking its expiry), and its cache key. */
  const knownClaims = (token: string): { claims: AccessClaims | undefined; cacheKey: string } => {
    const cacheKey = sha256Of('sha256', token, 'base64url');
    const known = verified.get(cacheKey);
    if (known !== undefined && known.exp <= Math.floor(nowMs() / 1000) - CLOCK_TOLERANCE_S) {
      verified.delete(cacheKey);
      throw new AppError('UNAUTHORIZED', 'access token expired');
    }
    return { claims: known, cacheKey };
  };

  return {
    accessTtlS: settings.accessTtlS,
    issue: async (claims) => {
      const { signer, connectKeys } = await keys();
      const nowS = Math.floor(nowMs() / 1000);
      const token = await new SignJWT({ sid: claims.sid, roles: claims.roles, sv: claims.sv })
        .setProtectedHeader({ alg: ALG, kid: signer.kid, typ: TYP })
        .setIssuer(settings.issuer)
        .setAudience(settings.audience)
        .setSubject(claims.sub)
        .setIssuedAt(nowS)
        .setExpirationTime(nowS + settings.accessTtlS)
        .setJti(randomUUID())
        .sign(signer.key);
      const connectKey = connectKeys.get(signer.kid);
      if (connectKey === undefined) throw new Error('no connect-token key for the signing key');
      const connectPayload = Buffer.from(
        JSON.stringify({
          v: CONNECT_TOKEN_VERSION,
          kid: signer.kid,
          sub: claims.sub,
          sid: claims.sid,
          roles: claims.roles,
          sv: claims.sv,
          exp: nowS + settings.accessTtlS,
        }),
      ).toString('base64url');
      const connectToken = `${connectPayload}.${connectMac(connectKey, connectPayload).toString('base64url')}`;
      return { token, connectToken, expiresIn: settings.accessTtlS };
    },
    verifyConnectTokenNow: (token) => {
      const parsed = parseConnectToken(token);
      const key = connectKeyNow(parsed.kid);
      return key === undefined ? undefined : checkedConnectClaims(parsed, key);
    },
    verifyConnectToken: async (token) => {
      const parsed = parseConnectToken(token);
      const key =
        connectKeyNow(parsed.kid) ??
        (await keyOfKid(parsed.kid, (set) => set.connectKeys, invalidConnectToken));
      return checkedConnectClaims(parsed, key);
    },
    verifyKnown: (token) => (token.length > MAX_TOKEN_CHARS ? undefined : knownClaims(token).claims),
    verify: async (token) => {
      if (token.length > MAX_TOKEN_CHARS) throw invalidToken();
      const { claims: known, cacheKey } = knownClaims(token);
      if (known !== undefined) return known;
      const nowS = Math.floor(nowMs() / 1000);
      const [head, body, signature, extra] = token.split('.');
      if (
        head === undefined ||
        body === undefined ||
        signature === undefined ||
        extra !== undefined ||
        !SEGMENT.test(head) ||
        !SEGMENT.test(body) ||
        !SEGMENT.test(signature)
      ) {
        throw invalidToken();
      }
      const header = jsonObjectOf(head);
      // Only what we issue: EdDSA, our typ, a kid; no extensions (crit) and no unencoded payload (b64).
      if (
        header === undefined ||
        header.alg !== ALG ||
        typeof header.typ !== 'string' ||
        normalizeTyp(header.typ) !== TYP ||
        'crit' in header ||
        'b64' in header ||
        (header.kid !== undefined && typeof header.kid !== 'string')
      ) {
        throw invalidToken();
      }
      const key = await verificationKey(header.kid as string | undefined);
      const signatureBytes = Buffer.from(signature, 'base64url');
      if (
        signatureBytes.length !== 64 ||
        !verifySignature(null, Buffer.from(`${head}.${body}`, 'latin1'), key, signatureBytes)
      ) {
        throw invalidToken();
      }
      const payload = jsonObjectOf(body);
      if (payload === undefined) throw invalidToken();
      const claims = checkedClaims(payload, settings, nowS);
      verified.set(cacheKey, claims);
      return claims;
    },
    jwks: async () => ({ keys: [...(await keys()).jwks] }),
    keepFresh: () => {
      if (reloading !== undefined) return;
      if (settled === undefined || nowMs() - settled.loadedAt > RELOAD_EVERY_MS)
        reload().catch(() => undefined);
    },
    rotate: async () => {
      if (settings.privateKey !== undefined) {
        throw new Error('JWT_PRIVATE_KEY is set: rotate by deploying a new key instead');
      }
      const kid = await db.transaction().execute(async (trx) => {
        await retireActiveSigningKeys(trx, clock.now());
        return newDatabaseKey(trx);
      });
      await reload();
      return kid;
    },
  };
}
