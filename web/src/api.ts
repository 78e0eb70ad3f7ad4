/**
 * Every REST call of the app goes through this module (one file to switch when the SDK's typed REST
 * client, protocol/src/client/rest.ts, is ready: the method names are the same).
 *
 * - The access token is asked of the session before each call; a 401 refreshes it once and retries.
 * - Commands the server makes idempotent get one `Idempotency-Key` per user action, reused when the
 *   call is retried after a network error, so a bid, an accept or a top-up happens once.
 * - Errors are problem+json: `ApiError` keeps `detail` and the field errors by field name.
 */
import type { z } from 'zod';
import type { AuthResponse, TokenPair } from '../../protocol/src/rest/auth.js';
import type * as C from '../../protocol/src/rest/contracts.js';
import type * as J from '../../protocol/src/rest/jobs.js';
import type * as P from '../../protocol/src/rest/payments.js';
import type * as R from '../../protocol/src/rest/reviews.js';
import type { Me, UserProfile } from '../../protocol/src/rest/users.js';

// Types of the answers, from the same zod schemas the server validates with.
export type Job = z.output<typeof J.Job>;
export type JobDetail = z.output<typeof J.JobDetail>;
export type Bid = z.output<typeof J.Bid>;
type JobPage = z.output<typeof J.JobPage>;
type BidPage = z.output<typeof J.BidPage>;
type CategoryList = z.output<typeof J.CategoryList>;
export type Contract = z.output<typeof C.Contract>;
export type ContractDetail = z.output<typeof C.ContractDetail>;
type ContractPage = z.output<typeof C.ContractPage>;
export type Review = z.output<typeof R.Review>;
export type Wallet = z.output<typeof P.Wallet>;
type PaymentResponse = z.output<typeof P.PaymentResponse>;

export type { Me, UserProfile };

export interface WalletLine {
  transactionId: string;
  reason: string;
  amount: number;
  balanceAfter: number;
  counterpartyId: string | null;
  contractId: string | null;
  note: string | null;
  createdAt: string;
}

export interface ContractReviews {
  data: Review[];
  reviewDeadlineAt: string | null;
  canReview: boolean;
}

/** A refused call: the server's problem+json, or status 0 when no answer arrived. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    /** Field errors by the last part of their path (`body.email` → `email`). */
    readonly fields: Readonly<Record<string, string>>,
  ) {
    super(detail);
    this.name = 'ApiError';
  }
}

export const isApiError = (value: unknown): value is ApiError => value instanceof ApiError;

interface ProblemBody {
  code?: string;
  detail?: string;
  title?: string;
  errors?: { path: string; message: string }[];
}

async function toError(response: Response): Promise<ApiError> {
  let body: ProblemBody = {};
  try {
    body = (await response.json()) as ProblemBody;
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  const fields: Record<string, string> = {};
  for (const error of body.errors ?? []) {
    const name = error.path.split('.').slice(1).join('.') || error.path;
    fields[name] ??= error.message;
  }
  return new ApiError(
    response.status,
    body.code ?? 'HTTP_ERROR',
    body.detail ?? body.title ?? `${response.status} ${response.statusText}`,
    fields,
  );
}

interface CallOptions {
  readonly body?: unknown;
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly token?: string | undefined;
  readonly idempotencyKey?: string;
  readonly ifMatch?: number;
}

/** One HTTP exchange; JSON in and out; throws ApiError. Network failures are retried twice for keyed commands and reads. */
export async function call<T>(method: string, path: string, options: CallOptions = {}): Promise<T> {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(options.query ?? {})) {
    if (value !== undefined && value !== '') query.set(name, String(value));
  }
  const url = query.size > 0 ? `${path}?${query}` : path;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey;
  if (options.ifMatch !== undefined) headers['if-match'] = `"${options.ifMatch}"`;
  const retriable = method === 'GET' || options.idempotencyKey !== undefined;
  for (let attempt = 0; ; attempt++) {
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? null : JSON.stringify(options.body),
      });
    } catch {
      if (retriable && attempt < 2) {
        await new Promise((resolve) => setTimeout(resolve, 300 * 2 ** attempt));
        continue;
      }
      throw new ApiError(0, 'DISCONNECTED', 'The server cannot be reached. Check your connection.', {});
    }
    if (!response.ok) throw await toError(response);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }
}

/** The public auth endpoints (no access token). */
export const auth = {
  register: (body: { username: string; email: string; password: string; roles: string[] }) =>
    call<{ status: 'accepted' }>('POST', '/v1/auth/register', { body }),
  login: (body: { login: string; password: string }) =>
    call<AuthResponse>('POST', '/v1/auth/login', { body }),
  refresh: (refreshToken: string) => call<TokenPair>('POST', '/v1/auth/refresh', { body: { refreshToken } }),
  logout: (refreshToken: string) => call<void>('POST', '/v1/auth/logout', { body: { refreshToken } }),
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

export function createApi(tokens: TokenSource) {
  const newKey = () => crypto.randomUUID();
  const authed = async <T>(method: string, path: string, options: CallOptions = {}): Promise<T> => {
    try {
      return await call<T>(method, path, { ...options, token: await tokens.accessToken() });
    } catch (error) {
      if (!isApiError(error) || error.status !== 401) throw error;
      return call<T>(method, path, { ...options, token: await tokens.accessToken(true) });
    }
  };
  const id = encodeURIComponent;
  return {
    me: () => authed<Me>('GET', '/v1/me'),
    user: (userId: string) => authed<UserProfile>('GET', `/v1/users/${id(userId)}`),
    categories: () => authed<CategoryList>('GET', '/v1/categories'),
    searchJobs: (search: JobSearch) =>
      authed<JobPage>('GET', '/v1/jobs', { query: { ...search, limit: 50 } }),
    getJob: (jobId: string) => authed<JobDetail>('GET', `/v1/jobs/${id(jobId)}`),
    postJob: (body: {
      title: string;
      description: string;
      categoryId: string;
      skills: string[];
      budget: { kind: 'fixed' | 'hourly'; amount: number; currency: string };
      remote: boolean;
    }) => authed<Job>('POST', '/v1/jobs', { body }),
    placeBid: (jobId: string, body: { amount: number; deliveryDays: number; coverLetter: string }) =>
      authed<Bid>('POST', `/v1/jobs/${id(jobId)}/bids`, { body, idempotencyKey: newKey() }),
    myBids: () => authed<BidPage>('GET', '/v1/me/bids', { query: { limit: 100 } }),
    acceptBid: (bidId: string) =>
      authed<Contract>('POST', `/v1/bids/${id(bidId)}/accept`, { idempotencyKey: newKey() }),
    myContracts: () => authed<ContractPage>('GET', '/v1/me/contracts', { query: { limit: 100 } }),
    getContract: (contractId: string) => authed<ContractDetail>('GET', `/v1/contracts/${id(contractId)}`),
    transition: (contractId: string, event: TransitionName, version: number, message?: string) =>
      authed<Contract>('POST', `/v1/contracts/${id(contractId)}/${event.replace('_', '-')}`, {
        body: message === undefined || message === '' ? {} : { message },
        idempotencyKey: newKey(),
        ifMatch: version,
      }),
    contractReviews: (contractId: string) =>
      authed<ContractReviews>('GET', `/v1/contracts/${id(contractId)}/reviews`),
    review: (contractId: string, body: { rating: number; text: string }) =>
      authed<Review>('POST', `/v1/contracts/${id(contractId)}/review`, { body }),
    wallet: () => authed<Wallet>('GET', '/v1/wallet'),
    walletLines: () =>
      authed<{ data: WalletLine[]; nextCursor: string | null }>('GET', '/v1/wallet/transactions', {
        query: { limit: 20 },
      }),
    topUp: (body: { amount: number; card: string }) =>
      authed<PaymentResponse>('POST', '/v1/wallet/top-ups', { body, idempotencyKey: newKey() }),
  };
}

export type Api = ReturnType<typeof createApi>;
