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
import type { AcceptedUpgrade, GatewayCore, UpgradeInput } from './transport.js';

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

export function createUpgradeAuthenticator(
  auth: AuthService,
): Pick<GatewayCore, 'authenticateUpgrade' | 'authenticateUpgradeNow'> {
  const acceptedAs = (principal: Principal, entries: readonly string[]): AcceptedUpgrade => {
    const negotiated = negotiateEncoding(entries);
    return { principal, encoding: negotiated.encoding, protocol: negotiated.subprotocol ?? '' };
  };
  return {
    authenticateUpgrade: async (input) => {
      const entries = parseSubprotocols(input.protocols);
      const credential = credentialFromUpgrade(input, entries);
      if (credential === undefined)
        throw new AppError('UNAUTHORIZED', 'an access token is required to open a socket');
      let principal: Principal;
      try {
        principal =
          credential.kind === 'connect'
            ? await auth.authenticateConnectToken(credential.token)
            : await auth.authenticate(credential.token);
      } catch (error) {
        throw upgradeFailure(error);
      }
      return acceptedAs(principal, entries);
    },
    authenticateUpgradeNow: (input) => {
      const entries = parseSubprotocols(input.protocols);
      const credential = credentialFromUpgrade(input, entries);
      // Access tokens (an Ed25519 check) and missing credentials take the asynchronous path.
      if (credential?.kind !== 'connect') return undefined;
      let principal: Principal | undefined;
      try {
        principal = auth.authenticateConnectTokenNow(credential.token);
      } catch (error) {
        throw upgradeFailure(error);
      }
      return principal === undefined ? undefined : acceptedAs(principal, entries);
    },
  };
}
