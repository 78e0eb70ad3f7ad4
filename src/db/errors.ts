/**
 * PostgreSQL failures the code above reacts to, recognised by SQLSTATE (never by message text), and
 * the one retry loop for transactions that lost a concurrency race. Every layer above uses these.
 */

/** SQLSTATEs used by gigwire. */
export const SqlState = {
  UNIQUE_VIOLATION: '23505',
  CHECK_VIOLATION: '23514',
  RESTRICT_VIOLATION: '23001',
  SERIALIZATION_FAILURE: '40001',
  DEADLOCK_DETECTED: '40P01',
} as const;

const sqlState = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
};

const constraintOf = (error: unknown): string | undefined => {
  const constraint = (error as { constraint?: unknown } | null | undefined)?.constraint;
  return typeof constraint === 'string' ? constraint : undefined;
};

/**
 * A unique (or primary key) violation; with `constraint`, only one on that constraint or index
 * (pg reports the name; PGlite too).
 */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  if (sqlState(error) !== SqlState.UNIQUE_VIOLATION) return false;
  return constraint === undefined || constraintOf(error) === constraint;
}

/** A CHECK constraint violation (or a trigger raising check_violation); optionally on one constraint. */
export function isCheckViolation(error: unknown, constraint?: string): boolean {
  if (sqlState(error) !== SqlState.CHECK_VIOLATION) return false;
  return constraint === undefined || constraintOf(error) === constraint;
}

/**
 * A failure that means "another transaction got there first; running the whole transaction again
 * may succeed": serialization failure (40001) and deadlock (40P01). Nothing of the failed attempt
 * was committed, so a retry cannot apply anything twice.
 */
export const isRetryableConflict = (error: unknown): boolean => {
  const state = sqlState(error);
  return state === SqlState.SERIALIZATION_FAILURE || state === SqlState.DEADLOCK_DETECTED;
};

export interface RetryOptions {
  /** Attempts in all, the first included (default 8). */
  readonly attempts?: number;
  /** Upper bound of the first back-off in ms; doubles per attempt, full jitter (default 5). */
  readonly baseDelayMs?: number;
  /** Called before each retry (metrics, debug logs). */
  readonly onRetry?: (error: unknown, attempt: number) => void;
}

/**
 * Runs `work` (which must open and finish its own transaction) again when it fails with a
 * serialization failure or deadlock, up to `attempts` times with jittered exponential back-off.
 * Any other error, and the last retryable one, is rethrown unchanged.
 */
export async function withSerializationRetry<T>(
  work: () => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = options.attempts ?? 8;
  const base = options.baseDelayMs ?? 5;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isRetryableConflict(error) || attempt >= attempts) throw error;
      options.onRetry?.(error, attempt);
      const delay = Math.random() * base * 2 ** (attempt - 1);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
