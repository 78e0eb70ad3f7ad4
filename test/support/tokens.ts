/**
 * Token fixtures: access tokens minted by a test that holds the signing key (passed to the node as
 * JWT_PRIVATE_KEY) with the claims of a real session and a lifetime of the test's choosing, and the
 * settings and claims of a token service that a test creates itself (createTokenService).
 */
import { createHash, randomBytes } from 'node:crypto';
import { type CryptoKey, SignJWT } from 'jose';
import pg from 'pg';
import type { TokenService } from '../../src/domain/auth/tokens.js';

/** Token-service settings for tests that build one over their own database (keys from signing_keys). */
export const testTokenSettings = {
  issuer: 'gigwire',
  audience: 'gigwire',
  accessTtlS: 900,
  privateKey: undefined,
} as const;

/** Claims of a made-up session: enough to issue tokens, no user row behind them. */
export const testTokenClaims = {
  sub: '00000000-0000-4000-8000-000000000001',
  sid: '00000000-0000-4000-8000-000000000002',
  roles: [],
  sv: 0,
} as unknown as Parameters<TokenService['issue']>[0];

export async function tokenWithLifetime(
  realAccessToken: string,
  signingKey: CryptoKey,
  kid: string,
  seconds: number,
): Promise<string> {
  const claims = JSON.parse(
    Buffer.from(realAccessToken.split('.')[1] ?? '', 'base64url').toString(),
  ) as Record<string, unknown>;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sid: claims.sid, roles: claims.roles, sv: claims.sv })
    .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' })
    .setIssuer('gigwire')
    .setAudience('gigwire')
    .setSubject(String(claims.sub))
    .setIssuedAt(now - 60)
    .setExpirationTime(now + seconds)
    .setJti(crypto.randomUUID())
    .sign(signingKey);
}

/**
 * A live password-reset link of `userId`, valid 30 minutes, as the mail worker issues one (only its
 * hash is stored): its token, for POST /v1/auth/reset-password.
 */
export async function insertResetLink(databaseUrl: string, userId: string): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(
      `insert into email_tokens (user_id, purpose, token_hash, expires_at)
       values ($1, 'reset_password', $2, now() + interval '30 minutes')`,
      [userId, createHash('sha256').update(token).digest('hex')],
    );
  } finally {
    await client.end();
  }
  return token;
}
