/**
 * The decision before a socket exists: find the access token (Authorization: Bearer, a
 * `bearer.<jwt>` subprotocol entry, or ?access_token=), authenticate it exactly as REST does
 * (signature, expiry, session alive, account not locked, session version current), and negotiate
 * the encoding. Any failure is UNAUTHORIZED: HTTP 401, no socket.
 */
import {
  BEARER_SUBPROTOCOL_PREFIX,
  negotiateEncoding,
  parseSubprotocols,
} from '../../protocol/src/version.js';
import type { AuthService } from '../domain/auth/service.js';
import { AppError } from '../platform/errors.js';
import type { AcceptedUpgrade, UpgradeInput } from './transport.js';

export function tokenFromUpgrade(input: UpgradeInput): string | undefined {
  const bearer = input.authorization === undefined ? null : /^Bearer +(\S+)$/i.exec(input.authorization);
  if (bearer?.[1] !== undefined) return bearer[1];
  const fromProtocol = parseSubprotocols(input.protocols).find((entry) =>
    entry.startsWith(BEARER_SUBPROTOCOL_PREFIX),
  );
  if (fromProtocol !== undefined) return fromProtocol.slice(BEARER_SUBPROTOCOL_PREFIX.length);
  const fromQuery = new URLSearchParams(input.query).get('access_token');
  return fromQuery === null || fromQuery === '' ? undefined : fromQuery;
}

export function createUpgradeAuthenticator(auth: AuthService) {
  return async (input: UpgradeInput): Promise<AcceptedUpgrade> => {
    const token = tokenFromUpgrade(input);
    if (token === undefined)
      throw new AppError('UNAUTHORIZED', 'an access token is required to open a socket');
    const principal = await auth.authenticate(token);
    const negotiated = negotiateEncoding(input.protocols);
    return { principal, encoding: negotiated.encoding, protocol: negotiated.subprotocol ?? '' };
  };
}
