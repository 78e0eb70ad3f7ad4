/**
 * Public entry of the TypeScript SDK (browser + Node). Everything a client application needs:
 * `createClient` and its types, the error type, and the wire contract it speaks (re-exported from
 * protocol/src so an application imports from one place).
 */

export { CloseAction, CloseCode, closeAction, ErrorCode } from '../codes.js';
export {
  type AuthRefreshResult,
  ClientFrameType,
  type HelloPayload,
  type JobPostedPayload,
  type JobsWatchPayload,
  type MarketEventPayload,
  MarketEventType,
  type NotificationPayload,
  type PresenceState,
  PresenceStatus,
  type ReplyPayload,
  type ServerPush,
  ServerPushType,
} from '../frames.js';
export { Encoding, PROTOCOL_VERSION } from '../version.js';
export { backoffDelay, DEFAULT_RECONNECT, type ReconnectOptions } from './backoff.js';
export {
  type ClientEvents,
  type ClientOptions,
  type ClientState,
  type ClosedEvent,
  type ConnectedEvent,
  createClient,
  type DisconnectedEvent,
  type GigwireClient,
  type JobsWatchFilter,
  type RequestArgs,
  type RequestOptions,
  type RequestPayload,
  type TokenReason,
  type TokenRequest,
} from './client.js';
export { ClientErrorCode, GigwireError, type GigwireErrorCode, isGigwireError } from './errors.js';
export { decodeJwtPayload, tokenExpiresAt } from './jwt.js';
export type { WebSocketConstructor, WebSocketLike } from './socket.js';
