/**
 * Public entry of the TypeScript SDK (browser + Node). Everything a client application needs:
 * `createClient` (WebSocket) and `createRestClient` (REST commands with exactly-once retries) and
 * their types, the error types, and the wire contract it speaks (re-exported from
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
  type AccessCredential,
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
  type RoomRemovedEvent,
  type SendMessageOptions,
  type SentMessage,
  type TokenReason,
  type TokenRequest,
} from './client.js';
export { ClientErrorCode, GigwireError, type GigwireErrorCode, isGigwireError } from './errors.js';
export { decodeJwtPayload, tokenExpiresAt } from './jwt.js';
export {
  type AcceptBidOptions,
  type Bid,
  type BidPage,
  type CategoryList,
  type Contract,
  type ContractDetail,
  type ContractPage,
  type CreateJobInput,
  createRestClient,
  DEFAULT_REST_RETRY,
  isRestError,
  type Job,
  type JobDetail,
  type JobPage,
  type MyContractsParams,
  type PaymentResponse,
  type PlaceBidInput,
  type RestCallOptions,
  type RestClient,
  type RestClientOptions,
  type RestCommandOptions,
  RestError,
  type RestRetryOptions,
  type RetryInfo,
  type RetryReason,
  type Review,
  type ReviewInput,
  type SearchJobsParams,
  type TopUpInput,
  type TransferInput,
  type TransferResponse,
  type TransitionInput,
  type TransitionOptions,
  type UpdateBidInput,
  type UpdateJobInput,
  type VersionedCallOptions,
  type Wallet,
  type WithdrawInput,
} from './rest.js';
export type { WebSocketConstructor, WebSocketLike } from './socket.js';
