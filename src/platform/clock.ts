/** Time as a port, so rules that depend on it (token expiry, grace periods) are testable. */
export interface Clock {
  readonly now: () => Date;
}

export const systemClock: Clock = { now: () => new Date() };
