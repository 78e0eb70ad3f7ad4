/**
 * The runtime side of `ask`: a promise plus the Reply handed to the actor, a timeout, and membership
 * in the system's set of open requests so that shutdown can answer every one of them.
 */
import { AppError } from '../../platform/errors.js';
import type { CancelTimer, Timers } from '../../platform/timers.js';
import type { Reply } from './types.js';

/** What the runtime needs from an open request whatever its reply type: a way to fail it. */
export interface OpenRequest {
  readonly fail: (error: AppError) => void;
}

export class PendingRequest<R> implements Reply<R>, OpenRequest {
  readonly promise: Promise<R>;
  private resolvePromise: (value: R) => void = () => undefined;
  private rejectPromise: (error: AppError) => void = () => undefined;
  private cancelTimeout: CancelTimer | undefined;
  private done = false;

  constructor(private readonly openRequests: Set<OpenRequest>) {
    this.promise = new Promise<R>((resolve, reject) => {
      this.resolvePromise = resolve;
      this.rejectPromise = reject;
    });
  }

  get settled(): boolean {
    return this.done;
  }

  // Arrow properties: handlers may pass `reply.ok` around as a plain callback.
  readonly ok = (value: R): void => {
    if (this.finish()) this.resolvePromise(value);
  };

  readonly fail = (error: AppError): void => {
    if (this.finish()) this.rejectPromise(error);
  };

  /**
   * Call once the message is queued: joins the open requests (answered UNAVAILABLE at shutdown) and
   * fails the request with UNAVAILABLE unless it is answered within `timeoutMs`.
   */
  open(timers: Timers, timeoutMs: number, target: string): void {
    if (this.done) return;
    this.openRequests.add(this);
    this.cancelTimeout = timers.schedule(timeoutMs, () => {
      this.cancelTimeout = undefined;
      this.fail(new AppError('UNAVAILABLE', `${target} did not answer within ${timeoutMs} ms`));
    });
  }

  /** True for the first settlement only. */
  private finish(): boolean {
    if (this.done) return false;
    this.done = true;
    this.openRequests.delete(this);
    this.cancelTimeout?.();
    this.cancelTimeout = undefined;
    return true;
  }
}
