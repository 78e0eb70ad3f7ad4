/**
 * The task edge's error table: which failures of a task are worth another attempt (BullMQ retries
 * it with the task's backoff) and which fail it for good at once (`UnrecoverableError`: the task
 * goes to the failed set, where an operator, or the next enqueue of its id, retries it).
 *
 * A task is retried when waiting can change the outcome: a dependency that is down or busy, a time
 * that has not come yet. It is not when rerunning the same code on the same rows gives the same
 * answer: a refusal of the domain (validation, authorization, a missing row, the state refusing the
 * change) or a fault it diagnosed itself (an AppError INTERNAL). Retried, those cost 54 attempts
 * over about 3 h (DATABASE_RETRIES) and delay the one error line that matters.
 */
import { UnrecoverableError } from 'bullmq';
import type { ErrorCode } from '../../../protocol/src/codes.js';
import { type AppError, isAppError, isDependencyUnavailable } from '../errors.js';

/**
 * Whether a task that failed with an AppError of this code is tried again (true) or fails for good
 * (false). Exhaustive: a new ErrorCode does not compile until it has a line here.
 */
export const retryByCode: Readonly<Record<ErrorCode, boolean>> = {
  // "Try later", by definition.
  UNAVAILABLE: true,
  RATE_LIMITED: true,
  // The task's own input or rights, refused: the same payload is refused the same way.
  VALIDATION_FAILED: false,
  UNAUTHORIZED: false,
  FORBIDDEN: false,
  PAYLOAD_TOO_LARGE: false,
  // Every row a task names is committed before the task exists (the outbox writes the event in the
  // row's transaction, the relay enqueues after the commit): a row missing now was deleted or never
  // was, and waiting does not bring it back.
  NOT_FOUND: false,
  // The current state refuses the change: settled the other way first, a hold already posted or
  // voided, an operation key used for another operation, a balance at its limit (BALANCE_LIMIT,
  // kept for an operator on purpose). A rerun re-reads that state and is refused again. Lost races
  // between transactions are not CONFLICT: they surface as serialization failures and deadlocks
  // (driver errors), retried by `withSerializationRetry` and then by the task like any other
  // non-AppError. The one CONFLICT that means "not yet" is a timer run before its time (a clock
  // ahead on another node): TIMER_EARLY, REVIEW_WINDOW_OPEN. Those are retried by name where they
  // can happen (the marketplace processor passes `retryAlso`), not by the whole code.
  CONFLICT: false,
  INVALID_TRANSITION: false,
  // Waits on the user (a top-up, leaving a room), not on time. Money tasks reserve their funds
  // before they are enqueued (a withdrawal's hold, an escrow), so a task meeting this is a bug.
  INSUFFICIENT_FUNDS: false,
  ROOM_LIMIT_REACHED: false,
  // REST and WebSocket only; no task throws them.
  IDEMPOTENCY_KEY_REUSED: false,
  UNSUPPORTED_MEDIA_TYPE: false,
  METHOD_NOT_ALLOWED: false,
  BAD_FRAME: false,
  UNKNOWN_TYPE: false,
  // An AppError INTERNAL is our code saying it met something it cannot handle: a stored row that no
  // longer parses (a provider event edited by hand), a broken invariant. The same code on the same
  // row fails the same way on every attempt; a fix is a deploy or a data repair, after which the
  // operator retries the failed task (or the next enqueue of its id does, with a fresh budget).
  // Retrying it 3 h would only auto-heal a fix deployed within those 3 h, and holds back the error
  // line meanwhile. Transient faults are not AppError INTERNAL: driver errors and timeouts arrive
  // as plain errors (retried below), and an INTERNAL *caused by* an outage is retried by its cause.
  INTERNAL: false,
};

/** Causes looked at below an AppError, as `isDependencyUnavailable` does. */
const MAX_CAUSE_DEPTH = 4;

/**
 * Whether a task that threw `error` should be tried again. Anything that is not an AppError is
 * retried (driver errors, timeouts, a Redis hiccup, a circuit breaker open): it is the failure we
 * cannot tell apart from an outage. An AppError follows `retryByCode`, except that one caused by an
 * outage (its `cause` is a retryable AppError, or a driver error that `isDependencyUnavailable`
 * recognises) is retried whatever its code: the outage, not the code, decided it.
 */
export function isRetryableTaskError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth <= MAX_CAUSE_DEPTH; depth++) {
    if (!isAppError(current)) return depth === 0 || isDependencyUnavailable(current);
    if (retryByCode[current.code]) return true;
    if (current.cause === undefined) return false;
    current = current.cause;
  }
  return false;
}

/** `error` as BullMQ's UnrecoverableError: the same message, the original as its `cause`. */
export function unrecoverable(error: Error): UnrecoverableError {
  const permanent = new UnrecoverableError(error.message);
  permanent.cause = error;
  return permanent;
}

export interface RunTaskOptions {
  /**
   * A deliberate exception to `retryByCode`: an AppError retried although its code is not (a timer
   * refused for running early). Name the exception where it is thrown for, not here.
   */
  readonly retryAlso?: (error: AppError) => boolean;
}

/**
 * Runs a task's work and applies the table: an AppError that is not to be retried is rethrown as
 * UnrecoverableError (message and cause kept), so BullMQ fails the task at once; everything else
 * (including an UnrecoverableError the work threw itself) is rethrown unchanged. Every processor's
 * task function runs through it.
 */
export async function runTask<T>(work: () => Promise<T>, options: RunTaskOptions = {}): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isAppError(error) && !isRetryableTaskError(error) && options.retryAlso?.(error) !== true) {
      throw unrecoverable(error);
    }
    throw error;
  }
}

/**
 * Whether a failure is the task's last: out of attempts, or unrecoverable. What the workers' `failed`
 * handlers (an error line, the bookkeeping of a task that gave up) and the metrics count as final.
 */
export function isFinalFailure(
  job: { readonly attemptsMade: number; readonly opts: { readonly attempts?: number } },
  error: Error,
): boolean {
  return job.attemptsMade >= (job.opts.attempts ?? 1) || error instanceof UnrecoverableError;
}
