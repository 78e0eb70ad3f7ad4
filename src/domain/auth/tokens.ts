/**
 * Access tokens: EdDSA (Ed25519) JWTs with a `kid`, `typ: at+jwt`, 15 minutes by default, carrying
 * sub, sid (the session), roles and sv (the user's session version). Any standard JWT library can
 * verify them from /.well-known/jwks.json alone.
 *
 * Keys: from JWT_PRIVATE_KEY when set (production), otherwise generated on first start and kept in
 * `signing_keys` so every process signs with the same key. Rotation adds a key and retires the old
 * ones; a retired key stays in the JWKS (and verifies) until every token it signed has expired.
 * Every process reloads the key set each minute, and at once (at most every 5 s) on an unknown kid.
 */
import { randomUUID } from 'node:crypto';
import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
} from 'jose';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { SessionId, UserId } from '../../../protocol/src/ids.js';
import { Role } from '../../../protocol/src/rest/users.js';
import type { Database } from '../../db/database.js';
import type { Clock } from '../../platform/clock.js';
import { AppError } from '../../platform/errors.js';

const ALG = 'EdDSA';
const TYP = 'at+jwt';
const RELOAD_EVERY_MS = 60_000;
const UNKNOWN_KID_RELOAD_MIN_MS = 5_000;
/** Leeway for clocks of other verifiers; small, so expiry means expiry. */
const CLOCK_TOLERANCE_S = 5;

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
  readonly loadedAt: number;
  readonly signer: { readonly kid: string; readonly key: CryptoKey };
  readonly verifiers: ReadonlyMap<string, CryptoKey>;
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

export interface TokenService {
  readonly issue: (claims: Omit<AccessClaims, 'exp'>) => Promise<{ token: string; expiresIn: number }>;
  /** @throws AppError UNAUTHORIZED for anything but a valid, unexpired token of ours. */
  readonly verify: (token: string) => Promise<AccessClaims>;
  readonly jwks: () => Promise<{ keys: JWK[] }>;
  /** Adds a new signing key (database keys only); returns its kid. */
  readonly rotate: () => Promise<string>;
}

async function newDatabaseKey(db: Kysely<Database>): Promise<string> {
  const { privateKey, publicKey } = await generateKeyPair(ALG, { crv: 'Ed25519', extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  await db
    .insertInto('signing_keys')
    .values({
      kid,
      alg: ALG,
      public_jwk: publicPart(publicJwk, kid) as Record<string, unknown>,
      private_jwk: { ...(await exportJWK(privateKey)), kid } as Record<string, unknown>,
    })
    .execute();
  return kid;
}

export function createTokenService(
  db: Kysely<Database>,
  settings: TokenSettings,
  clock: Clock,
): TokenService {
  let loaded: Promise<LoadedKeys> | undefined;

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
      loadedAt: Date.now(),
      signer: { kid, key: (await importJWK({ ...jwk, alg: ALG }, ALG)) as CryptoKey },
      verifiers: new Map([[kid, (await importJWK(publicJwk, ALG)) as CryptoKey]]),
      jwks: [publicJwk],
    };
  };

  const loadFromDatabase = async (): Promise<LoadedKeys> => {
    const publishedSince = new Date(clock.now().getTime() - (settings.accessTtlS + 60) * 1000);
    const select = () =>
      db
        .selectFrom('signing_keys')
        .selectAll()
        .where((eb) => eb.or([eb('retired_at', 'is', null), eb('retired_at', '>', publishedSince)]))
        .orderBy('created_at', 'desc')
        .orderBy('kid', 'desc')
        .execute();
    let rows = await select();
    if (!rows.some((row) => row.retired_at === null)) {
      await newDatabaseKey(db);
      rows = await select();
    }
    const signerRow = rows.find((row) => row.retired_at === null);
    if (signerRow === undefined) throw new Error('no signing key available');
    const verifiers = new Map<string, CryptoKey>();
    for (const row of rows)
      verifiers.set(row.kid, (await importJWK(row.public_jwk as JWK, ALG)) as CryptoKey);
    return {
      loadedAt: Date.now(),
      signer: { kid: signerRow.kid, key: (await importJWK(signerRow.private_jwk as JWK, ALG)) as CryptoKey },
      verifiers,
      jwks: rows.map((row) => row.public_jwk as JWK),
    };
  };

  const reload = () => {
    const next = settings.privateKey === undefined ? loadFromDatabase() : loadFromEnvironment();
    // A failed load must not stick: the next call tries again.
    next.catch(() => {
      if (loaded === next) loaded = undefined;
    });
    loaded = next;
    return next;
  };

  let revalidating = false;
  /**
   * The loaded keys at once; a stale set is refreshed in the background (stale-while-revalidate).
   * MUST NOT wait for the database once loaded: `issue` runs inside callers' transactions, and on
   * PGlite (one connection) a query outside that transaction would wait for it forever.
   */
  const keys = async (): Promise<LoadedKeys> => {
    const current = await (loaded ?? reload());
    if (Date.now() - current.loadedAt > RELOAD_EVERY_MS && !revalidating) {
      revalidating = true;
      reload()
        .catch(() => undefined)
        .finally(() => {
          revalidating = false;
        });
    }
    return current;
  };

  const verificationKey = async (kid: string | undefined): Promise<CryptoKey> => {
    if (kid === undefined || kid.length > 128) throw new AppError('UNAUTHORIZED', 'invalid access token');
    let current = await keys();
    let key = current.verifiers.get(kid);
    if (key === undefined && Date.now() - current.loadedAt > UNKNOWN_KID_RELOAD_MIN_MS) {
      current = await reload();
      key = current.verifiers.get(kid);
    }
    if (key === undefined) throw new AppError('UNAUTHORIZED', 'invalid access token');
    return key;
  };

  return {
    issue: async (claims) => {
      const { signer } = await keys();
      const nowS = Math.floor(clock.now().getTime() / 1000);
      const token = await new SignJWT({ sid: claims.sid, roles: claims.roles, sv: claims.sv })
        .setProtectedHeader({ alg: ALG, kid: signer.kid, typ: TYP })
        .setIssuer(settings.issuer)
        .setAudience(settings.audience)
        .setSubject(claims.sub)
        .setIssuedAt(nowS)
        .setExpirationTime(nowS + settings.accessTtlS)
        .setJti(randomUUID())
        .sign(signer.key);
      return { token, expiresIn: settings.accessTtlS };
    },
    verify: async (token) => {
      try {
        const { payload } = await jwtVerify(token, (header) => verificationKey(header.kid), {
          algorithms: [ALG],
          issuer: settings.issuer,
          audience: settings.audience,
          typ: TYP,
          clockTolerance: CLOCK_TOLERANCE_S,
          currentDate: clock.now(),
          requiredClaims: ['exp', 'iat', 'sub', 'jti'],
        });
        const claims = AccessClaims.safeParse(payload);
        if (!claims.success) throw new AppError('UNAUTHORIZED', 'invalid access token');
        return claims.data;
      } catch (error) {
        if (error instanceof AppError) throw error;
        // Say expired when it is (clients refresh then); never echo what else was wrong.
        const expired = error instanceof joseErrors.JWTExpired;
        throw new AppError('UNAUTHORIZED', expired ? 'access token expired' : 'invalid access token', {
          cause: error,
        });
      }
    },
    jwks: async () => ({ keys: [...(await keys()).jwks] }),
    rotate: async () => {
      if (settings.privateKey !== undefined) {
        throw new Error('JWT_PRIVATE_KEY is set: rotate by deploying a new key instead');
      }
      const kid = await db.transaction().execute(async (trx) => {
        await trx
          .updateTable('signing_keys')
          .set({ retired_at: clock.now() })
          .where('retired_at', 'is', null)
          .execute();
        return newDatabaseKey(trx);
      });
      await reload();
      return kid;
    },
  };
}
