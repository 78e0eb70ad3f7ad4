/**
 * Access tokens minted by a test that holds the signing key (passed to the node as JWT_PRIVATE_KEY):
 * the claims of a real session, with a lifetime of the test's choosing.
 */
import { type CryptoKey, SignJWT } from 'jose';

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
