/**
 * SIGTERM/SIGINT from the first line of `main.ts` on. `main.ts` loads the rest of gigwire with a
 * dynamic import that takes 1–2 s under tsx (a few hundred ms from dist/); a signal in that window
 * met Node's default action and ended the process with 143/130 although nothing had started yet.
 *
 * One listener per signal stays registered for the life of the process: a signal that arrives
 * before the program hands over is held, later ones go to its handler. (Removing the last listener
 * and adding another would stop and restart Node's signal watcher, and a signal already caught but
 * not yet dispatched to JavaScript would be lost: the process would ignore that SIGTERM.)
 */

export type StopSignal = 'SIGTERM' | 'SIGINT';

/** The part of `process` this needs (a fake in tests). */
export interface SignalSource {
  on(signal: StopSignal, listener: (signal: StopSignal) => void): unknown;
}

export interface StopSignals {
  /** The first signal that arrived before `handOver`, if any. */
  pending(): StopSignal | undefined;
  /**
   * From now on every SIGTERM/SIGINT calls `handler`; a signal held so far is passed to it at once.
   * Only the first hand-over counts.
   */
  handOver(handler: (signal: StopSignal) => void): void;
}

const STOP_SIGNALS: readonly StopSignal[] = ['SIGTERM', 'SIGINT'];

export function holdStopSignals(source: SignalSource): StopSignals {
  let held: StopSignal | undefined;
  let handler: ((signal: StopSignal) => void) | undefined;
  for (const signal of STOP_SIGNALS) {
    source.on(signal, () => {
      if (handler === undefined) held ??= signal;
      else handler(signal);
    });
  }
  return {
    pending: () => held,
    handOver(next) {
      if (handler !== undefined) return;
      handler = next;
      if (held !== undefined) next(held);
    },
  };
}
