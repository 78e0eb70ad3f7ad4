/**
 * Every REST call of the app goes through this module.
 *
 * - Marketplace and wallet commands use the SDK's typed REST client (protocol/src/client/rest.ts):
 *   one `Idempotency-Key` per user action, reused on its retries, so a bid, an accept, a transition
 *   or a top-up happens once; answers validated against the zod schemas.
 * - The few calls it does not cover (auth, profiles, reviews list, wallet lines) use `call` below.
 * - The access token is asked of the session before each call; a 401 refreshes it once and retries.
 * - Errors are problem+json: `failureOf` (ui.tsx) shows `detail` and the field errors by field.
 */
import type { z } from 'zod';
import {
  type Bid as BidType,
  createRestClient,
  isRestError,
  type RestCommandOptions,
  type Review,
} from '../../protocol/src/client/rest.js';
import type { AuthResponse, TokenPair } from '../../protocol/src/rest/auth.js';
import type { Notification as NotificationSchema } from '../../protocol/src/rest/notifications.js';
import type { WalletLine as WalletLineSchema } from '../../protocol/src/rest/payments.js';
import type { Room as RoomSchema, RoomSummary as RoomSummarySchema } from '../../protocol/src/rest/rooms.js';
import type {
  Contact as ContactSchema,
  Me,
  UpdateMeRequest,
  UserProfile,
  WorkerListing as WorkerListingSchema,
} from '../../protocol/src/rest/users.js';
import { ApiError, answerError, fieldErrors, isApiError } from './errors.js';
import { keyedOnce401 } from './outcome.js';

export type {
  Bid,
  Contract,
  ContractDetail,
  Job,
  JobDetail,
  Review,
  Wallet,
} from '../../protocol/src/client/rest.js';
export type { Me, UserProfile };
export { ApiError, fieldErrors, isApiError };

export type WalletLine = z.output<typeof WalletLineSchema>;
export type Notification = z.output<typeof NotificationSchema>;
export type UpdateMe = z.input<typeof UpdateMeRequest>;
export type WorkerListing = z.output<typeof WorkerListingSchema>;
export type Contact = z.output<typeof ContactSchema>;
export type RoomSummary = z.output<typeof RoomSummarySchema>;
export type Room = z.output<typeof RoomSchema>;

export interface ContractReviews {
  data: Review[];
  reviewDeadlineAt: string | null;
  canReview: boolean;
}

/** The ApiError of an error answer (problem+json, or a proxy's page: errors.ts `answerError`). */
async function toError(response: Response): Promise<ApiError> {
  // A body cut off midway is no body: the status says enough.
  return answerError(
    response.status,
    await response.text().catch(() => ''),
    response.headers.get('retry-after'),
    response.headers.get('date'),
  );
}

interface CallOptions {
  readonly body?: unknown;
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly token?: string | undefined;
  /**
   * Tries again after no answer: default 2 for GET, else 0. After a timeout only when `timeoutMs`
   * is set (with the default one, the call gives up after CALL_TIMEOUT_MS in all).
   */
  readonly retries?: number;
  /** Gives up an attempt with no answer after this long (default CALL_TIMEOUT_MS). */
  readonly timeoutMs?: number;
}

/**
 * An attempt with no answer after this long counts as no answer (as the SDK's REST client does):
 * the browser itself waits on a stalled connection for many minutes, a button busy all that time.
 */
const CALL_TIMEOUT_MS = 30_000;
/** The longest Retry-After the SDK waits for by itself before a command is tried again. */
const MAX_RETRY_AFTER_MS = 5_000;
/** Rooms per page of the Messages list (the server cuts a page at 1 MiB too). */
const ROOMS_PAGE = 50;

/**
 * One HTTP exchange; JSON in and out; throws ApiError (status 0 when no answer came). Reads are
 * retried twice after a quick failure (not after waiting CALL_TIMEOUT_MS); other calls only when
 * `retries` says so.
 */
export async function call<T>(method: string, path: string, options: CallOptions = {}): Promise<T> {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(options.query ?? {})) {
    if (value !== undefined && value !== '') query.set(name, String(value));
  }
  const url = query.size > 0 ? `${path}?${query}` : path;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const retries = options.retries ?? (method === 'GET' ? 2 : 0);
  for (let attempt = 0; ; attempt++) {
    // A quick failure (refused, reset, a blip) is worth another attempt; one that waited the whole
    // CALL_TIMEOUT_MS for nothing is not (two more would keep a screen loading for 90 s). A caller
    // that chose its own timeout (a refresh) retries either way.
    const retryAfter = async (error: unknown): Promise<boolean> => {
      const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
      if (attempt >= retries || (timedOut && options.timeoutMs === undefined)) return false;
      await new Promise((resolve) => setTimeout(resolve, 300 * 2 ** attempt));
      return true;
    };
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? null : JSON.stringify(options.body),
        signal: AbortSignal.timeout(options.timeoutMs ?? CALL_TIMEOUT_MS),
      });
    } catch (error) {
      if (await retryAfter(error)) continue;
      throw new ApiError(0, 'DISCONNECTED', 'The server cannot be reached. Check your connection.', {});
    }
    if (!response.ok) throw await toError(response);
    if (response.status === 204) return undefined as T;
    try {
      return (await response.json()) as T;
    } catch (error) {
      // The answer stopped halfway (the timeout, a dropped connection): no answer either, so tried
      // again as one. A refresh whose answer was cut off had spent its token: asked again at once,
      // within the server's reuse grace, it gets the same pair; asked later (before review 32,
      // at the next call) it counted as reuse and ended the session.
      if (await retryAfter(error)) continue;
      throw new ApiError(0, 'DISCONNECTED', 'The server cannot be reached. Check your connection.', {});
    }
  }
}

/** One attempt of POST /v1/auth/refresh; below the server's default reuse grace window (10 s). */
const REFRESH_TIMEOUT_MS = 7_000;

/** The public auth endpoints (no access token). */
export const auth = {
  register: (body: { username: string; email: string; password: string; roles: string[] }) =>
    call<{ status: 'accepted' }>('POST', '/v1/auth/register', { body }),
  login: (body: { login: string; password: string }) =>
    call<AuthResponse>('POST', '/v1/auth/login', { body }),
  /**
   * Spends the refresh token. No answer (it may have been spent all the same): asked again at once,
   * once, with the same token. The server answers a spent token presented again within its reuse
   * grace window (REFRESH_REUSE_GRACE_S, 10 s by default) with the same new pair; later it would
   * count as reuse and revoke the session. Hence the short timeout too: the retry of a request whose
   * answer never came still lands within the window.
   */
  refresh: (refreshToken: string) =>
    call<TokenPair>('POST', '/v1/auth/refresh', {
      body: { refreshToken },
      retries: 1,
      timeoutMs: REFRESH_TIMEOUT_MS,
    }),
  logout: (refreshToken: string) => call<void>('POST', '/v1/auth/logout', { body: { refreshToken } }),
  /** The token of the "confirm your email" mail. */
  verifyEmail: (token: string) => call<void>('POST', '/v1/auth/verify-email', { body: { token } }),
  /** Mails a reset link when the address has an account (202 either way). */
  forgotPassword: (email: string) =>
    call<{ status: 'accepted' }>('POST', '/v1/auth/forgot-password', { body: { email } }),
  /** The token of the "reset your password" mail and the new password; every session ends. */
  resetPassword: (token: string, newPassword: string) =>
    call<void>('POST', '/v1/auth/reset-password', { body: { token, newPassword } }),
};

export interface TokenSource {
  /** A valid access token (refreshed when about to expire); `force` refreshes whatever its expiry. */
  accessToken(force?: boolean): Promise<string>;
}

export type TransitionName = 'deliver' | 'request_changes' | 'approve' | 'cancel' | 'dispute';

export interface JobSearch {
  q?: string;
  categoryId?: string;
  skills?: string;
  remote?: boolean;
  budgetMin?: number;
}

/** "a, b,,c " → ['a', 'b', 'c']: the comma-separated lists of the forms. */
export const splitList = (text: string | undefined): string[] =>
  (text ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');

const isUnauthorized = (error: unknown) =>
  (isApiError(error) && error.status === 401) || (isRestError(error) && error.status === 401);

/** `baseUrl`: this page's origin (passed in, so this module reads no DOM global: unit-tested in Node). */
export function createApi(tokens: TokenSource, baseUrl: string) {
  const rest = createRestClient({
    baseUrl,
    accessToken: () => tokens.accessToken(),
    // A 429 (or 503) asking to wait longer than this is said at once ("retry in 42 s") rather than
    // waited for behind a busy button: the SDK's default, 60 s per attempt, kept "Send money" or
    // "Post job" busy for minutes without a word. A short wait (a 503's 2 s) is still waited for.
    retry: { maxRetryAfterMs: MAX_RETRY_AFTER_MS },
  });
  /** A 401 means the token was refused (revoked, expired early): refresh once and try again. */
  const once401 = async <T>(attempt: () => Promise<T>): Promise<T> => {
    try {
      return await attempt();
    } catch (error) {
      if (!isUnauthorized(error)) throw error;
      await tokens.accessToken(true);
      return attempt();
    }
  };
  /** once401 for a keyed command: the call after the refresh sends the same key (outcome.ts). */
  const keyed401 = <T>(
    options: RestCommandOptions | undefined,
    command: (options: RestCommandOptions | undefined) => Promise<T>,
  ): Promise<T> => keyedOnce401(options, command, () => tokens.accessToken(true));
  const authed = <T>(method: string, path: string, options: CallOptions = {}): Promise<T> =>
    once401(async () => call<T>(method, path, { ...options, token: await tokens.accessToken() }));
  const id = encodeURIComponent;
  const transitions = {
    deliver: rest.deliver,
    request_changes: rest.requestChanges,
    approve: rest.approve,
    cancel: rest.cancel,
    dispute: rest.dispute,
  } satisfies Record<TransitionName, unknown>;
  return {
    me: () => authed<Me>('GET', '/v1/me'),
    user: (userId: string) => authed<UserProfile>('GET', `/v1/users/${id(userId)}`),
    categories: () => once401(() => rest.categories()),
    searchJobs: (search: JobSearch) =>
      once401(() =>
        rest.searchJobs({
          ...(search.q ? { q: search.q } : {}),
          ...(search.categoryId ? { categoryId: search.categoryId } : {}),
          ...(splitList(search.skills).length > 0 ? { skills: splitList(search.skills) } : {}),
          ...(search.remote === undefined ? {} : { remote: search.remote }),
          limit: 50,
        }),
      ),
    getJob: (jobId: string) => once401(() => rest.getJob(jobId)),
    /** `options.idempotencyKey`: the key of an earlier submit whose answer was lost (a retry replays it). */
    postJob: (job: Parameters<typeof rest.postJob>[0], options?: RestCommandOptions) =>
      keyed401(options, (o) => rest.postJob(job, o)),
    placeBid: (jobId: string, bid: Parameters<typeof rest.placeBid>[1], options?: RestCommandOptions) =>
      keyed401(options, (o) => rest.placeBid(jobId, bid, o)),
    /**
     * A page of the bids on one job, newest first: a worker's own (not read from my newest 100 bids
     * of all jobs, which leave out a bid on a job of long ago once there are more), every bid for its
     * hirer ("More bids" pages past the newest 100 the job carries); pass `nextCursor` for the next.
     */
    myBidsOn: (jobId: string, cursor?: string) =>
      authed<{ data: BidType[]; nextCursor: string | null }>('GET', `/v1/jobs/${id(jobId)}/bids`, {
        query: { limit: 100, cursor },
      }),
    /** At `version`, the bid's version as shown: a bid changed since is 409 VERSION_MISMATCH, nothing held. */
    acceptBid: (bidId: string, version: number, options?: RestCommandOptions) =>
      keyed401(options, (o) => rest.acceptBid(bidId, { ...o, ifMatch: version })),
    /** A page of my contracts, newest first; pass `nextCursor` back for the next one. */
    myContracts: (cursor?: string) =>
      once401(() => rest.myContracts({ limit: 100, ...(cursor === undefined ? {} : { cursor }) })),
    getContract: (contractId: string) => once401(() => rest.getContract(contractId)),
    transition: (
      contractId: string,
      event: TransitionName,
      version: number,
      message?: string,
      options?: RestCommandOptions,
    ) =>
      keyed401(options, (o) =>
        transitions[event](contractId, message === undefined || message === '' ? {} : { message }, {
          ...o,
          ifMatch: version,
        }),
      ),
    contractReviews: (contractId: string) =>
      authed<ContractReviews>('GET', `/v1/contracts/${id(contractId)}/reviews`),
    /** `options.idempotencyKey`: the key of an earlier submit whose answer was lost (a retry replays it). */
    review: (contractId: string, review: { rating: number; text: string }, options?: RestCommandOptions) =>
      keyed401(options, (o) => rest.review(contractId, review, o)),
    wallet: () => once401(() => rest.wallet()),
    walletLines: (cursor?: string) =>
      authed<{ data: WalletLine[]; nextCursor: string | null }>('GET', '/v1/wallet/transactions', {
        query: { limit: 20, cursor },
      }),
    topUp: (input: { amount: number; card: string }, options?: RestCommandOptions) =>
      keyed401(options, (o) => rest.topUp(input, o)),
    withdraw: (input: { amount: number; bankAccount: string }, options?: RestCommandOptions) =>
      keyed401(options, (o) => rest.withdraw(input, o)),
    transfer: (input: { toUserId: string; amount: number; note?: string }, options?: RestCommandOptions) =>
      keyed401(options, (o) => rest.transfer(input, o)),
    /** GET /v1/payments/:id: a top-up or withdrawal as the provider settled it. */
    payment: (paymentId: string) => once401(() => rest.payment(paymentId)),
    /**
     * POST /v1/auth/resend-verification: a new confirmation link to my address while it is
     * unconfirmed (always 202; at most one mail a day, however often it is asked).
     */
    resendVerification: () => authed<{ status: 'accepted' }>('POST', '/v1/auth/resend-verification'),
    /** PUT /v1/auth/password: every session ends (this one too). */
    changePassword: (currentPassword: string, newPassword: string) =>
      authed<void>('PUT', '/v1/auth/password', { body: { currentPassword, newPassword } }),
    /** POST /v1/auth/logout-all: every session of the user ends, this tab's too. */
    logoutAll: () => authed<void>('POST', '/v1/auth/logout-all'),
    updateMe: (changes: UpdateMe) => authed<Me>('PATCH', '/v1/me', { body: changes }),
    /** A page of my notifications, newest first; pass `nextCursor` back for the next one. */
    notifications: (cursor?: string) =>
      authed<{ data: Notification[]; nextCursor: string | null }>('GET', '/v1/notifications', {
        query: { limit: 30, cursor },
      }),
    unreadCount: () => authed<{ count: number }>('GET', '/v1/notifications/unread-count'),
    searchWorkers: (q: string) =>
      authed<{ data: WorkerListing[]; nextCursor: string | null }>('GET', '/v1/users', {
        query: { q, limit: 30 },
      }),
    userReviews: (userId: string) =>
      authed<{ data: Review[]; nextCursor: string | null }>('GET', `/v1/users/${id(userId)}/reviews`, {
        query: { limit: 20 },
      }),
    contacts: () => authed<{ data: Contact[] }>('GET', '/v1/me/contacts'),
    addContact: (userId: string) => authed<unknown>('POST', `/v1/me/contacts/${id(userId)}`),
    removeContact: (userId: string) => authed<unknown>('DELETE', `/v1/me/contacts/${id(userId)}`),
    /** A page of my rooms, newest membership first; pass `nextCursor` back for the next one. */
    rooms: (cursor?: string) =>
      authed<{ data: RoomSummary[]; nextCursor: string | null }>('GET', '/v1/rooms', {
        query: { limit: ROOMS_PAGE, cursor },
      }),
    room: (roomId: string) => authed<Room>('GET', `/v1/rooms/${id(roomId)}`),
    directRoom: (userId: string) =>
      authed<Room>('POST', '/v1/rooms', { body: { kind: 'direct', memberIds: [userId] } }),
  };
}

export type Api = ReturnType<typeof createApi>;
