/**
 * Reads the claims of an access token without verifying it (the server does that): the client
 * only needs `exp` to refresh before it and to avoid connecting with a token already expired.
 * base64url by hand with atob and TextDecoder, which browsers and Node 20 both have.
 */

/** The payload (middle segment) of a JWT as an object, or undefined when it is not readable. */
export function decodeJwtPayload(token: string): Record<string, unknown> | undefined {
  const segment = token.split('.')[1];
  if (segment === undefined || segment === '' || !/^[A-Za-z0-9_-]+$/.test(segment)) return undefined;
  try {
    const base64 = segment.replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '='));
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** `exp` of a JWT in milliseconds since the epoch (server clock), or undefined. */
export function tokenExpiresAt(token: string): number | undefined {
  const exp = decodeJwtPayload(token)?.exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
}
