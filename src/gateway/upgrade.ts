/**
 * The decision before a socket exists: find the credential (a `connect.<connectToken>` subprotocol
 * entry, or an access token: Authorization: Bearer, a `bearer.<jwt>` subprotocol entry, or
 * ?access_token=), authenticate it exactly as REST does (signature or MAC, expiry, session alive,
 * account not locked, session version current), and negotiate
 * the encoding. A credential failure is UNAUTHORIZED (HTTP 401); any other failure is UNAVAILABLE
 * (HTTP 503, neutral message, cause logged); either way no socket.
 */
import {
  BEARER_SUBPROTOCOL_PREFIX,
  CONNECT_SUBPROTOCOL_PREFIX,
  negotiateEncoding,
  parseSubprotocols,
} from '../../protocol/src/version.js';
import type { AuthService, Principal } from '../domain/auth/service.js';
import { AppError, isAppError } from '../platform/errors.js';
import type { AcceptedUpgrade, UpgradeInput } from './transport.js';

export type UpgradeCredential =
  | { readonly kind: 'access'; readonly token: string }
  | { readonly kind: 'connect'; readonly token: string };

/**
 * The credential of an upgrade: a connect token when a `connect.` entry is offered, else the
 * access token (Authorization header, `bearer.` entry, ?access_token=). The header is parsed once.
 */
function credentialFromUpgrade(
  input: UpgradeInput,
  entries: readonly string[],
): UpgradeCredential | undefined {
  const entryWith = (prefix: string) =>
    entries.find((entry) => entry.startsWith(prefix))?.slice(prefix.length);
  const connect = entryWith(CONNECT_SUBPROTOCOL_PREFIX);
  if (connect !== undefined) return { kind: 'connect', token: connect };
  const bearer = input.authorization === undefined ? null : /^Bearer +(\S+)$/i.exec(input.authorization);
  const token =
    bearer?.[1] ??
    entryWith(BEARER_SUBPROTOCOL_PREFIX) ??
    new URLSearchParams(input.query).get('access_token');
  return token === null || token === '' ? undefined : { kind: 'access', token };
}

/** The neutral message of a refused upgrade that was not the client's fault. */
export const UPGRADE_UNAVAILABLE = 'service unavailable';

/**
 * What a failed upgrade becomes: UNAUTHORIZED stays (401, its message was written for clients);
 * anything else (the database down, a bug) is UNAVAILABLE (503) with a neutral message and the
 * original as `cause`, for the log only: its text (SQL, hosts) never reaches the client.
 */
export function upgradeFailure(error: unknown): AppError {
  if (isAppError(error) && (error.code === 'UNAUTHORIZED' || error.code === 'UNAVAILABLE')) return error;
  return new AppError('UNAVAILABLE', UPGRADE_UNAVAILABLE, { cause: error });
}

/**
 * The upgrade's credential check (`GatewayCore.authenticateUpgrade`): decided at once when a
 * connect token's key and session row are in memory (`authenticateConnectTokenNow`), otherwise
 * asynchronously — the header and the credential are parsed once either way.
 */
export function createUpgradeAuthenticator(
  auth: AuthService,
): (input: UpgradeInput) => AcceptedUpgrade | Promise<AcceptedUpgrade> {
  const acceptedAs = (principal: Principal, entries: readonly string[]): AcceptedUpgrade => {
    const negotiated = negotiateEncoding(entries);
    return { principal, encoding: negotiated.encoding, protocol: negotiated.subprotocol ?? '' };
  };
  const later = async (credential: UpgradeCredential, entries: readonly string[]) => {
    try {
      return acceptedAs(
        credential.kind === 'connect'
          ? await auth.authenticateConnectToken(credential.token)
          : await auth.authenticate(credential.token),
        entries,
      );
    } catch (error) {
      throw upgradeFailure(error);
    }
  };
  return (input) => {
    const entries = parseSubprotocols(input.protocols);
    const credential = credentialFromUpgrade(input, entries);
    if (credential === undefined)
      throw new AppError('UNAUTHORIZED', 'an access token is required to open a socket');
    // Access tokens (an Ed25519 check) always take the asynchronous path.
    if (credential.kind === 'connect') {
      let principal: Principal | undefined;
      try {
        principal = auth.authenticateConnectTokenNow(credential.token);
      } catch (error) {
        throw upgradeFailure(error);
      }
      if (principal !== undefined) return acceptedAs(principal, entries);
    }
    return later(credential, entries);
  };
}
