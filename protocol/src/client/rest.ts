/**
 * The REST half of the SDK: typed marketplace and wallet commands over `fetch` (Node 20 and
 * browsers; no Node-only imports), with exactly-once retries.
 *
 * - One user action, one `Idempotency-Key`: each call of a command the server makes idempotent
 *   (postJob, closeJob, placeBid, withdrawBid, acceptBid, the contract transitions, review, topUp, transfer, withdraw) draws a fresh key
 *   (`crypto.randomUUID()`, or the caller's `idempotencyKey`) and sends that SAME key on every retry
 *   of the call, so a retry after a lost answer gets the first answer back (`idempotent-replayed`)
 *   and the bid, contract or hold exists once. The next call draws a new key.
 * - What is retried, with jittered exponential backoff (`backoffDelay`), up to `retry.attempts`:
 *   keyed commands on a network error, a timeout, 502/503/504, 409 "still in flight" (a twin with
 *   the same key is running) and 429; reads (GET) on a network error, a timeout, 500/502/503/504
 *   and 429; commands the server does not make idempotent (updateJob, updateBid)
 *   only on 429, where the server refused before doing anything — a lost answer to them may
 *   have been applied, so it is thrown, never repeated blindly. A `Retry-After` (seconds or an HTTP
 *   date; else the problem's `retryAfterS`) sets the delay; one beyond `retry.maxRetryAfterMs` is
 *   thrown instead of waited for.
 * - Every other answer ≥ 400 is final and thrown as a RestError carrying the problem+json body.
 * - The access token is asked for before every attempt (a retry may carry a refreshed one); an
 *   answer not there within `timeoutMs` fails the call with TOKEN_UNAVAILABLE.
 */
import type { z } from 'zod';
import { ErrorCode } from '../codes.js';
import { type Problem, Problem as ProblemSchema } from '../rest/common.js';
import {
  ContractDetail as ContractDetailSchema,
  type ContractListQuery,
  ContractPage as ContractPageSchema,
  Contract as ContractSchema,
  type ContractState,
  type TransitionRequest,
} from '../rest/contracts.js';
import {
  BidPage as BidPageSchema,
  Bid as BidSchema,
  CategoryList as CategoryListSchema,
  type CreateJobRequest,
  JobDetail as JobDetailSchema,
  JobPage as JobPageSchema,
  Job as JobSchema,
  type JobSearchQuery,
  type PlaceBidRequest,
  type UpdateBidRequest,
  type UpdateJobRequest,
} from '../rest/jobs.js';
import {
  PaymentResponse as PaymentResponseSchema,
  type TopUpRequest,
  type TransferRequest,
  TransferResponse as TransferResponseSchema,
  Wallet as WalletSchema,
  type WithdrawalRequest,
} from '../rest/payments.js';
import { Review as ReviewSchema, type SubmitReviewRequest } from '../rest/reviews.js';
import { backoffDelay, retryAfterHeaderMs } from './backoff.js';
import { ClientErrorCode, GigwireError, type GigwireErrorCode } from './errors.js';

// ---------------------------------------------------------------------------------------------
// Types: answers are the schemas' outputs (branded ids), inputs their inputs (plain strings)
// ---------------------------------------------------------------------------------------------

export type Job = z.output<typeof JobSchema>;
export type JobDetail = z.output<typeof JobDetailSchema>;
export type JobPage = z.output<typeof JobPageSchema>;
export type Bid = z.output<typeof BidSchema>;
export type BidPage = z.output<typeof BidPageSchema>;
export type CategoryList = z.output<typeof CategoryListSchema>;
export type Contract = z.output<typeof ContractSchema>;
export type ContractDetail = z.output<typeof ContractDetailSchema>;
export type ContractPage = z.output<typeof ContractPageSchema>;
export type Review = z.output<typeof ReviewSchema>;
export type Wallet = z.output<typeof WalletSchema>;
export type PaymentResponse = z.output<typeof PaymentResponseSchema>;
export type TransferResponse = z.output<typeof TransferResponseSchema>;

export type CreateJobInput = z.input<typeof CreateJobRequest>;
export type UpdateJobInput = z.input<typeof UpdateJobRequest>;
export type PlaceBidInput = z.input<typeof PlaceBidRequest>;
export type UpdateBidInput = z.input<typeof UpdateBidRequest>;
export type TransitionInput = z.input<typeof TransitionRequest>;
export type ReviewInput = z.input<typeof SubmitReviewRequest>;
export type TopUpInput = z.input<typeof TopUpRequest>;
export type TransferInput = z.input<typeof TransferRequest>;
export type WithdrawInput = z.input<typeof WithdrawalRequest>;

/** GET /v1/jobs filters as values (lists as arrays, `remote` as a boolean); ids as plain strings. */
export type SearchJobsParams = Omit<Partial<z.output<typeof JobSearchQuery>>, 'categoryId' | 'hirerId'> & {
  readonly categoryId?: string;
  readonly hirerId?: string;
};

/** GET /v1/me/contracts filters. */
export type MyContractsParams = Omit<Partial<z.output<typeof ContractListQuery>>, 'state'> & {
  readonly state?: readonly z.output<typeof ContractState>[];
};

export interface RestRetryOptions {
  /** Attempts in all, the first included. Default 5; 1 never retries. */
  readonly attempts: number;
  /** Ceiling of the first backoff delay (doubling per retry, full jitter). Default 250 ms. */
  readonly baseDelayMs: number;
  /** Largest backoff ceiling. Default 5 s. */
  readonly maxDelayMs: number;
  /** A `Retry-After` longer than this is thrown (429/503) instead of waited for. Default 60 s. */
  readonly maxRetryAfterMs: number;
}

export const DEFAULT_REST_RETRY: RestRetryOptions = {
  attempts: 5,
  baseDelayMs: 250,
  maxDelayMs: 5_000,
  maxRetryAfterMs: 60_000,
};

/** Why an attempt is repeated (for `onRetry`); `server-error`: a 500 answering a read. */
export type RetryReason =
  | 'network'
  | 'timeout'
  | 'unavailable'
  | 'server-error'
  | 'in-flight'
  | 'rate-limited';

export interface RetryInfo {
  readonly method: string;
  readonly path: string;
  /** The attempt that failed (1 for the first). */
  readonly attempt: number;
  readonly reason: RetryReason;
  readonly delayMs: number;
  /** The key every attempt of this action sends; undefined for reads and unkeyed commands. */
  readonly idempotencyKey: string | undefined;
}

export interface RestClientOptions {
  /** Origin of the REST API, e.g. `http://localhost:3000` (paths start with /v1). */
  readonly baseUrl: string;
  /** The access token, asked for before every attempt; may be async (refresh it there). */
  readonly accessToken: () => Promise<string> | string;
  /** Default the global `fetch` (Node ≥ 18, browsers). */
  readonly fetch?: typeof fetch;
  readonly retry?: Partial<RestRetryOptions>;
  /**
   * One attempt (answer body included) may take this long before it counts as a timeout, and the
   * wait for `accessToken()` too (then TOKEN_UNAVAILABLE). Default 30 s.
   */
  readonly timeoutMs?: number;
  /** Called before each wait for a retry (logging, a "reconnecting…" hint). */
  readonly onRetry?: (info: RetryInfo) => void;
  /** Seams for tests: the wait between attempts, the jitter source, the clock. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly random?: () => number;
  readonly now?: () => number;
  /** Key source; default `crypto.randomUUID()` (browsers: secure contexts only). 1-255 visible ASCII. */
  readonly newIdempotencyKey?: () => string;
}

export interface RestCallOptions {
  /** Aborts the call, its retries and waits included (rejects with the signal's reason). */
  readonly signal?: AbortSignal;
}

export interface RestCommandOptions extends RestCallOptions {
  /**
   * The key of this action; default a fresh UUID per call. Pass the `idempotencyKey` of a RestError
   * to repeat an action whose outcome is unknown (it gave up after network errors) exactly once.
   */
  readonly idempotencyKey?: string;
}

export interface TransitionOptions extends RestCommandOptions {
  /** If-Match: the contract version you acted on; another one is 409 (`reason: VERSION_MISMATCH`). */
  readonly ifMatch?: number;
}

export interface AcceptBidOptions extends RestCommandOptions {
  /**
   * If-Match, required: the `version` of the bid as the hirer saw it (its amount and days). A bid the
   * worker changed since is at another version: 409 (`reason: VERSION_MISMATCH`), nothing held.
   */
  readonly ifMatch: number;
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * A failed REST call. `code` is the problem's `code` (ErrorCode) for an HTTP answer, or a
 * ClientErrorCode: DISCONNECTED (network error; the command may have been applied), TIMEOUT,
 * BAD_REPLY (an answer that does not match the schema), TOKEN_UNAVAILABLE.
 */
export class RestError extends GigwireError {
  /** HTTP status; undefined when no answer arrived. */
  readonly status: number | undefined;
  /** The problem+json body as sent (undefined without an answer or for a body that is not one). */
  readonly problem: Problem | undefined;
  /** The server's request id (quote it when reporting a problem). */
  readonly requestId: string | undefined;
  readonly method: string;
  readonly path: string;
  /** The key every attempt sent; reuse it to repeat this very action. */
  readonly idempotencyKey: string | undefined;
  /** Attempts made. */
  readonly attempts: number;
  /**
   * The command may have been applied: its last attempt got no answer (DISCONNECTED, TIMEOUT) or a
   * 5xx, or an earlier one did and no later answer settled it (the call then gave up on a 429, a
   * 409 "still in flight", a 401 or the token source). Repeat it with `idempotencyKey`, never with
   * a new key (before review 30 only the last error spoke: a lost answer followed by a 429 or a
   * failed token refresh read as a refusal, and a new key paid twice). False for reads.
   */
  readonly maybeApplied: boolean;

  constructor(
    code: GigwireErrorCode,
    message: string,
    init: {
      readonly method: string;
      readonly path: string;
      readonly attempts: number;
      readonly idempotencyKey: string | undefined;
      readonly maybeApplied?: boolean;
      readonly status?: number;
      readonly problem?: Problem;
      readonly requestId?: string;
      readonly details?: Readonly<Record<string, unknown>>;
      readonly cause?: unknown;
    },
  ) {
    super(code, message, {
      ...(init.details === undefined ? {} : { details: init.details }),
      ...(init.cause === undefined ? {} : { cause: init.cause }),
    });
    this.status = init.status;
    this.problem = init.problem;
    this.requestId = init.requestId;
    this.method = init.method;
    this.path = init.path;
    this.idempotencyKey = init.idempotencyKey;
    this.attempts = init.attempts;
    this.maybeApplied = init.maybeApplied ?? false;
  }
}

export const isRestError = (value: unknown): value is RestError => value instanceof RestError;

const PROBLEM_FIELDS = new Set(['type', 'title', 'status', 'code', 'detail', 'instance', 'requestId']);
const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

/** For an answer without a readable problem (a proxy's HTML 502, a code newer than this SDK). */
function codeForStatus(status: number): ErrorCode {
  const byStatus: Record<number, ErrorCode> = {
    400: 'VALIDATION_FAILED',
    401: 'UNAUTHORIZED',
    403: 'FORBIDDEN',
    404: 'NOT_FOUND',
    405: 'METHOD_NOT_ALLOWED',
    409: 'CONFLICT',
    413: 'PAYLOAD_TOO_LARGE',
    415: 'UNSUPPORTED_MEDIA_TYPE',
    422: 'VALIDATION_FAILED',
    429: 'RATE_LIMITED',
    502: 'UNAVAILABLE',
    503: 'UNAVAILABLE',
    504: 'UNAVAILABLE',
  };
  return byStatus[status] ?? (status >= 500 ? 'INTERNAL' : 'VALIDATION_FAILED');
}

// ---------------------------------------------------------------------------------------------
// One call: attempts, classification, waits
// ---------------------------------------------------------------------------------------------

/** read: GET; keyed: idempotent on the server; once: neither (only a refused 429 is repeated). */
type Policy = 'read' | 'keyed' | 'once';

interface Call<S extends z.ZodType> {
  readonly method: 'GET' | 'POST' | 'PATCH';
  readonly path: string;
  readonly query?: URLSearchParams;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  readonly policy: Policy;
  readonly schema: S;
  readonly options: RestCommandOptions;
}

type Attempt =
  | { readonly kind: 'answer'; readonly status: number; readonly headers: Headers; readonly text: string }
  | { readonly kind: 'network'; readonly timedOut: boolean; readonly error: unknown };

type Verdict =
  | { readonly retry: false; readonly error: RestError }
  | {
      readonly retry: true;
      readonly reason: RetryReason;
      readonly delayMs: number;
      readonly error: RestError;
    };

const TIMEOUT_REASON = Symbol('gigwire.rest.timeout');

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `work()`'s answer, or the signal's reason as soon as it aborts (the work itself goes on). */
function abortable<T>(work: () => Promise<T> | T, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return Promise.resolve().then(work);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    Promise.resolve()
      .then(work)
      .then(resolve, reject)
      .finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function defaultKey(): string {
  const crypto = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  // MUST: browsers expose randomUUID only in secure contexts (https, localhost).
  if (typeof crypto?.randomUUID !== 'function') {
    throw new Error('crypto.randomUUID is unavailable: pass newIdempotencyKey (or use https)');
  }
  return crypto.randomUUID();
}

class RestTransport {
  private readonly baseUrl: string;
  private readonly retry: RestRetryOptions;
  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly newKey: () => string;

  constructor(private readonly options: RestClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.retry = { ...DEFAULT_REST_RETRY, ...options.retry };
    // Called unbound: window.fetch throws "Illegal invocation" when called as a method of another object.
    const chosen = options.fetch ?? globalThis.fetch;
    this.fetch = (input, init) => chosen(input, init);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.sleep = options.sleep ?? defaultSleep;
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.newKey = options.newIdempotencyKey ?? defaultKey;
  }

  async perform<S extends z.ZodType>(call: Call<S>): Promise<z.output<S>> {
    const { signal } = call.options;
    // Drawn once per call, before the first attempt: every retry of this action sends it.
    const key = call.policy === 'keyed' ? (call.options.idempotencyKey ?? this.newKey()) : undefined;
    const query = call.query?.toString() ?? '';
    const url = `${this.baseUrl}${call.path}${query === '' ? '' : `?${query}`}`;
    const body = call.body === undefined ? undefined : JSON.stringify(call.body);
    /** An attempt so far got no answer or a 5xx, and no answer since settled it (RestError.maybeApplied). */
    let maybeApplied = false;
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      const context = {
        method: call.method,
        path: call.path,
        attempts: attempt,
        idempotencyKey: key,
        maybeApplied,
      };
      const headers: Record<string, string> = {
        accept: 'application/json',
        authorization: `Bearer ${await this.token(context, signal)}`,
        ...call.headers,
      };
      if (key !== undefined) headers['idempotency-key'] = key;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const result = await this.attempt(url, { method: call.method, headers, body }, signal);
      if (result.kind === 'answer' && result.status >= 200 && result.status < 300) {
        // A command answered 2xx whose answer cannot be read was applied, as far as anyone can tell.
        return this.parse(call.schema, result, { ...context, maybeApplied: call.policy !== 'read' });
      }
      maybeApplied = mayHaveApplied(call.policy, result, maybeApplied);
      const verdict = this.judge(call.policy, result, { ...context, maybeApplied });
      if (!verdict.retry || attempt >= this.retry.attempts) throw verdict.error;
      this.options.onRetry?.({
        method: call.method,
        path: call.path,
        attempt,
        reason: verdict.reason,
        delayMs: verdict.delayMs,
        idempotencyKey: key,
      });
      await this.sleep(verdict.delayMs, signal);
    }
  }

  private async token(context: RestErrorContext, signal: AbortSignal | undefined): Promise<string> {
    let token: unknown;
    // The caller's abort ends the wait too, and so does `timeoutMs`: a token source refreshing over
    // a dead network would otherwise hold the call (and a busy button) until it gave up by itself,
    // if ever (the WebSocket client bounds its getAccessToken the same way).
    const wait = new AbortController();
    const timer = setTimeout(() => wait.abort(TIMEOUT_REASON), this.timeoutMs);
    const forward = () => wait.abort(signal?.reason);
    if (signal?.aborted) forward();
    else signal?.addEventListener('abort', forward, { once: true });
    try {
      token = await abortable(() => this.options.accessToken(), wait.signal);
    } catch (cause) {
      if (signal?.aborted) throw signal.reason;
      if (wait.signal.reason === TIMEOUT_REASON) {
        throw new RestError(
          ClientErrorCode.TOKEN_UNAVAILABLE,
          `accessToken did not answer within ${this.timeoutMs} ms`,
          context,
        );
      }
      throw new RestError(ClientErrorCode.TOKEN_UNAVAILABLE, 'accessToken threw', { ...context, cause });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', forward);
    }
    if (typeof token !== 'string' || token === '') {
      throw new RestError(ClientErrorCode.TOKEN_UNAVAILABLE, 'accessToken returned no token', context);
    }
    return token;
  }

  /** One request, answer body read in full (a body cut off midway is a network error too). */
  private async attempt(
    url: string,
    init: { method: string; headers: Record<string, string>; body: string | undefined },
    signal: AbortSignal | undefined,
  ): Promise<Attempt> {
    // The caller may have aborted while the token was awaited: an abort listener added to an
    // already-aborted signal never fires, so the command would go out all the same.
    signal?.throwIfAborted();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(TIMEOUT_REASON), this.timeoutMs);
    const forward = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', forward, { once: true });
    try {
      const response = await this.fetch(url, {
        method: init.method,
        headers: init.headers,
        ...(init.body === undefined ? {} : { body: init.body }),
        signal: controller.signal,
      });
      const text = await response.text();
      return { kind: 'answer', status: response.status, headers: response.headers, text };
    } catch (error) {
      // The caller's abort ends the call; anything else is the network's doing.
      if (signal?.aborted) throw signal.reason;
      const timedOut =
        controller.signal.reason === TIMEOUT_REASON || (error as { name?: unknown })?.name === 'TimeoutError';
      return { kind: 'network', timedOut, error };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', forward);
    }
  }

  private parse<S extends z.ZodType>(
    schema: S,
    answer: Extract<Attempt, { kind: 'answer' }>,
    context: RestErrorContext,
  ): z.output<S> {
    let json: unknown;
    try {
      json = JSON.parse(answer.text);
    } catch (cause) {
      throw new RestError(ClientErrorCode.BAD_REPLY, 'the answer is not JSON', {
        ...context,
        status: answer.status,
        cause,
      });
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new RestError(ClientErrorCode.BAD_REPLY, 'the answer does not match its schema', {
        ...context,
        status: answer.status,
        details: { issues: parsed.error.issues },
      });
    }
    return parsed.data;
  }

  /** Final or retry, and after how long. */
  private judge(policy: Policy, result: Attempt, context: RestErrorContext): Verdict {
    if (result.kind === 'network') {
      const error = new RestError(
        result.timedOut ? ClientErrorCode.TIMEOUT : ClientErrorCode.DISCONNECTED,
        result.timedOut
          ? `no answer within ${this.timeoutMs} ms (it may have been applied)`
          : 'the request failed on the network (it may have been applied)',
        { ...context, cause: result.error },
      );
      if (policy === 'once') return { retry: false, error };
      return {
        retry: true,
        reason: result.timedOut ? 'timeout' : 'network',
        delayMs: this.backoff(context),
        error,
      };
    }
    const error = this.answerError(result, context);
    const retryAfterMs = this.retryAfterMs(result.headers, error.problem);
    const wait = (reason: RetryReason): Verdict => {
      if (retryAfterMs === undefined) return { retry: true, reason, delayMs: this.backoff(context), error };
      if (retryAfterMs > this.retry.maxRetryAfterMs) return { retry: false, error };
      // Spread clients told the same Retry-After over one base delay after it.
      return {
        retry: true,
        reason,
        delayMs: retryAfterMs + Math.floor(this.random() * this.retry.baseDelayMs),
        error,
      };
    };
    // Refused before anything happened (the per-address limit runs before every route).
    if (result.status === 429) return wait('rate-limited');
    if (policy === 'once') return { retry: false, error };
    if (result.status === 502 || result.status === 503 || result.status === 504) return wait('unavailable');
    // A read changes nothing: a server fault is worth another try too (the keyed commands' 500 is final).
    if (policy === 'read' && result.status === 500) return wait('server-error');
    if (policy !== 'keyed') return { retry: false, error };
    if (result.status === 409 && isInFlight(error.problem)) {
      return { retry: true, reason: 'in-flight', delayMs: this.backoff(context), error };
    }
    return { retry: false, error };
  }

  private backoff(context: RestErrorContext): number {
    return backoffDelay(
      context.attempts - 1,
      { initialDelayMs: this.retry.baseDelayMs, maxDelayMs: this.retry.maxDelayMs },
      this.random,
    );
  }

  /**
   * Retry-After in seconds (a decimal rounded up, never read as a date) or as an HTTP date; else
   * the problem's `retryAfterS`. A date is counted
   * from the answer's own `Date` (the server's clock) when it has one: read against this device's
   * clock, one a few minutes behind made a 2 s wait a 10 min one (thrown as too long), and one
   * ahead made it none (review 31).
   */
  private retryAfterMs(headers: Headers, problem: Problem | undefined): number | undefined {
    const answeredAt = Date.parse(headers.get('date') ?? '');
    const header = retryAfterHeaderMs(
      headers.get('retry-after'),
      Number.isNaN(answeredAt) ? this.now() : answeredAt,
    );
    if (header !== undefined) return header;
    return problem?.retryAfterS === undefined ? undefined : problem.retryAfterS * 1000;
  }

  private answerError(answer: Extract<Attempt, { kind: 'answer' }>, context: RestErrorContext): RestError {
    const problem = readProblem(answer.text);
    const code =
      problem !== undefined && KNOWN_CODES.has(problem.code) ? problem.code : codeForStatus(answer.status);
    const details =
      problem === undefined
        ? undefined
        : Object.fromEntries(Object.entries(problem).filter(([name]) => !PROBLEM_FIELDS.has(name)));
    const requestId = problem?.requestId ?? answer.headers.get('x-request-id') ?? undefined;
    return new RestError(code, problem?.detail ?? `HTTP ${answer.status}`, {
      ...context,
      status: answer.status,
      ...(problem === undefined ? {} : { problem }),
      ...(requestId === undefined ? {} : { requestId }),
      ...(details === undefined ? {} : { details }),
    });
  }
}

type RestErrorContext = {
  readonly method: string;
  readonly path: string;
  readonly attempts: number;
  readonly idempotencyKey: string | undefined;
  /** Whether the action may have been applied by now (RestError.maybeApplied). */
  readonly maybeApplied: boolean;
};

/** A problem+json body, loosely: an unknown `code` (a newer server) still counts. */
function readProblem(text: string): Problem | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const strict = ProblemSchema.safeParse(json);
  if (strict.success) return strict.data;
  const loose = json as Partial<Record<string, unknown>> | null;
  return typeof loose === 'object' && loose !== null && typeof loose.code === 'string'
    ? (loose as unknown as Problem)
    : undefined;
}

/**
 * Whether a command may have been applied after this failed attempt, `before` it. No answer, a
 * 5xx, or a 409 "still in flight" (an attempt with the key is running on the server): it may. A
 * 429, a 401 or a 408 was refused before anything ran: as it was. Any other answer is the key's
 * own (an applied action would have been replayed): not applied.
 */
function mayHaveApplied(policy: Policy, result: Attempt, before: boolean): boolean {
  if (policy === 'read') return false;
  if (result.kind === 'network' || result.status >= 500) return true;
  if (result.status === 429 || result.status === 401 || result.status === 408) return before;
  return result.status === 409 && isInFlight(readProblem(result.text));
}

/** The 409 of a twin request with the same key still running on the server (it names the key). */
function isInFlight(problem: Problem | undefined): boolean {
  return (
    problem?.code === 'CONFLICT' &&
    (typeof problem.idempotencyKey === 'string' || /in flight/i.test(problem.detail ?? ''))
  );
}

// ---------------------------------------------------------------------------------------------
// The commands
// ---------------------------------------------------------------------------------------------

/**
 * A call on a versioned row (a job, a bid): with `ifMatch`, the version the user saw, a row changed
 * since rejects with 409 CONFLICT (`details.reason: VERSION_MISMATCH`, `details.version`) and
 * changes nothing.
 */
export type VersionedCallOptions = RestCallOptions & { readonly ifMatch?: number };

export interface RestClient {
  /** GET /v1/categories. */
  categories(options?: RestCallOptions): Promise<CategoryList>;
  /** POST /v1/jobs (role hirer). Exactly once: keyed (the server takes an optional Idempotency-Key). */
  postJob(job: CreateJobInput, options?: RestCommandOptions): Promise<Job>;
  /** PATCH /v1/jobs/:id while open; `ifMatch` = the job version you edited. */
  updateJob(jobId: string, changes: UpdateJobInput, options?: VersionedCallOptions): Promise<Job>;
  /**
   * POST /v1/jobs/:id/close (hire nobody; pending bids are rejected); `ifMatch` as for updateJob.
   * Exactly once: keyed (a retry after a lost answer replays it instead of 409 INVALID_TRANSITION).
   */
  closeJob(jobId: string, options?: TransitionOptions): Promise<Job>;
  /** GET /v1/jobs: full text and filters, cursor pages. */
  searchJobs(params?: SearchJobsParams, options?: RestCallOptions): Promise<JobPage>;
  /** GET /v1/jobs/:id with `bidCount` (and `bids` for its hirer). */
  getJob(jobId: string, options?: RestCallOptions): Promise<JobDetail>;
  /** POST /v1/jobs/:id/bids (role worker). Exactly once. */
  placeBid(jobId: string, bid: PlaceBidInput, options?: RestCommandOptions): Promise<Bid>;
  /** PATCH /v1/bids/:id while pending; `ifMatch` = the bid version you edited. */
  updateBid(bidId: string, changes: UpdateBidInput, options?: VersionedCallOptions): Promise<Bid>;
  /** POST /v1/bids/:id/withdraw; `ifMatch` as for updateBid. Exactly once: keyed, as closeJob. */
  withdrawBid(bidId: string, options?: TransitionOptions): Promise<Bid>;
  /** GET /v1/me/bids. */
  myBids(params?: { cursor?: string; limit?: number }, options?: RestCallOptions): Promise<BidPage>;
  /**
   * POST /v1/bids/:id/accept (the job's hirer): the contract, escrow hold included. Exactly once.
   * `ifMatch` is required: the bid's `version` as shown to the hirer; if the worker changed the bid
   * since, it rejects with 409 CONFLICT (`details.reason: VERSION_MISMATCH`) and nothing is held:
   * read the bid again and show it before accepting.
   */
  acceptBid(bidId: string, options: AcceptBidOptions): Promise<Contract>;
  /** POST /v1/contracts/:id/deliver (worker). Exactly once. */
  deliver(contractId: string, input?: TransitionInput, options?: TransitionOptions): Promise<Contract>;
  /** POST /v1/contracts/:id/request-changes (hirer). Exactly once. */
  requestChanges(contractId: string, input?: TransitionInput, options?: TransitionOptions): Promise<Contract>;
  /** POST /v1/contracts/:id/approve (hirer): escrow released to the worker. Exactly once. */
  approve(contractId: string, input?: TransitionInput, options?: TransitionOptions): Promise<Contract>;
  /** POST /v1/contracts/:id/cancel (either party, before any delivery): escrow refunded. Exactly once. */
  cancel(contractId: string, input?: TransitionInput, options?: TransitionOptions): Promise<Contract>;
  /** POST /v1/contracts/:id/dispute (either party). Exactly once. */
  dispute(contractId: string, input?: TransitionInput, options?: TransitionOptions): Promise<Contract>;
  /** GET /v1/contracts/:id with its transitions. */
  getContract(contractId: string, options?: RestCallOptions): Promise<ContractDetail>;
  /** GET /v1/me/contracts. */
  myContracts(params?: MyContractsParams, options?: RestCallOptions): Promise<ContractPage>;
  /** POST /v1/contracts/:id/review (once per party, keyed: a retry replays; a second review is 409 `REVIEW_EXISTS`). */
  review(contractId: string, review: ReviewInput, options?: RestCommandOptions): Promise<Review>;
  /** GET /v1/wallet. */
  wallet(options?: RestCallOptions): Promise<Wallet>;
  /** POST /v1/wallet/top-ups (settled later by the provider: poll `payment`). Exactly once. */
  topUp(input: TopUpInput, options?: RestCommandOptions): Promise<PaymentResponse>;
  /** POST /v1/wallet/withdrawals. Exactly once. */
  withdraw(input: WithdrawInput, options?: RestCommandOptions): Promise<PaymentResponse>;
  /** POST /v1/wallet/transfers. Exactly once. */
  transfer(input: TransferInput, options?: RestCommandOptions): Promise<TransferResponse>;
  /** GET /v1/payments/:id. */
  payment(paymentId: string, options?: RestCallOptions): Promise<PaymentResponse>;
}

const seg = (id: string) => encodeURIComponent(id);

function searchParams(params: Readonly<Record<string, unknown>>): URLSearchParams {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    // Lists travel comma-separated (the server's `csv` fields).
    query.set(name, Array.isArray(value) ? value.join(',') : String(value));
  }
  return query;
}

const ifMatch = (version: number | undefined) =>
  version === undefined ? undefined : { 'if-match': `"${version}"` };

export function createRestClient(options: RestClientOptions): RestClient {
  const transport = new RestTransport(options);
  const get = <S extends z.ZodType>(
    schema: S,
    path: string,
    o: RestCallOptions = {},
    query?: URLSearchParams,
  ) =>
    transport.perform({
      method: 'GET',
      path,
      schema,
      policy: 'read',
      options: o,
      ...(query ? { query } : {}),
    });
  const command = <S extends z.ZodType>(
    schema: S,
    path: string,
    policy: Exclude<Policy, 'read'>,
    body: unknown,
    o: TransitionOptions = {},
    method: 'POST' | 'PATCH' = 'POST',
  ) => {
    const headers = ifMatch(o.ifMatch);
    return transport.perform({
      method,
      path,
      schema,
      policy,
      body,
      options: o,
      ...(headers === undefined ? {} : { headers }),
    });
  };
  const transition =
    (event: string) =>
    (contractId: string, input: TransitionInput = {}, o?: TransitionOptions) =>
      command(ContractSchema, `/v1/contracts/${seg(contractId)}/${event}`, 'keyed', input, o);

  return {
    categories: (o) => get(CategoryListSchema, '/v1/categories', o),
    postJob: (job, o) => command(JobSchema, '/v1/jobs', 'keyed', job, o),
    updateJob: (jobId, changes, o) =>
      command(JobSchema, `/v1/jobs/${seg(jobId)}`, 'once', changes, o, 'PATCH'),
    closeJob: (jobId, o) => command(JobSchema, `/v1/jobs/${seg(jobId)}/close`, 'keyed', undefined, o),
    searchJobs: (params = {}, o) => get(JobPageSchema, '/v1/jobs', o, searchParams(params)),
    getJob: (jobId, o) => get(JobDetailSchema, `/v1/jobs/${seg(jobId)}`, o),
    placeBid: (jobId, bid, o) => command(BidSchema, `/v1/jobs/${seg(jobId)}/bids`, 'keyed', bid, o),
    updateBid: (bidId, changes, o) =>
      command(BidSchema, `/v1/bids/${seg(bidId)}`, 'once', changes, o, 'PATCH'),
    withdrawBid: (bidId, o) => command(BidSchema, `/v1/bids/${seg(bidId)}/withdraw`, 'keyed', undefined, o),
    myBids: (params = {}, o) => get(BidPageSchema, '/v1/me/bids', o, searchParams(params)),
    acceptBid: (bidId, o) => command(ContractSchema, `/v1/bids/${seg(bidId)}/accept`, 'keyed', undefined, o),
    deliver: transition('deliver'),
    requestChanges: transition('request-changes'),
    approve: transition('approve'),
    cancel: transition('cancel'),
    dispute: transition('dispute'),
    getContract: (contractId, o) => get(ContractDetailSchema, `/v1/contracts/${seg(contractId)}`, o),
    myContracts: (params = {}, o) => get(ContractPageSchema, '/v1/me/contracts', o, searchParams(params)),
    review: (contractId, review, o) =>
      command(ReviewSchema, `/v1/contracts/${seg(contractId)}/review`, 'keyed', review, o),
    wallet: (o) => get(WalletSchema, '/v1/wallet', o),
    topUp: (input, o) => command(PaymentResponseSchema, '/v1/wallet/top-ups', 'keyed', input, o),
    withdraw: (input, o) => command(PaymentResponseSchema, '/v1/wallet/withdrawals', 'keyed', input, o),
    transfer: (input, o) => command(TransferResponseSchema, '/v1/wallet/transfers', 'keyed', input, o),
    payment: (paymentId, o) => get(PaymentResponseSchema, `/v1/payments/${seg(paymentId)}`, o),
  };
}
