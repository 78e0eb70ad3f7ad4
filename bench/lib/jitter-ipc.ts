/**
 * Orchestrator ↔ worker messages of the reconnect-jitter scenario (bench/lib/scenario-jitter.ts,
 * bench/load/jitter.ts): `jitterSetup` connects this worker's publishers and receivers and joins
 * their rooms; `jitterRun` publishes, drops and reconnects the receivers, drains, and returns what
 * each receiver got.
 */
import type { HistogramData } from './histogram.js';

/** gigwire: the TypeScript SDK over `ws`; socketio: socket.io-client against the recovery server; uws: the lean client. */
export type JitterKind = 'gigwire' | 'socketio' | 'uws';

export interface JitterMember {
  /** Global credential index. */
  readonly index: number;
  readonly userId: string;
  readonly token: string;
  /** gigwire: the connect token issued with the access token (the SDK opens sockets with it). */
  readonly connectToken?: string;
  /** Room number (0-based) and its id on the target. */
  readonly room: number;
  readonly roomId: string;
}

export interface JitterSetupRequest {
  readonly kind: JitterKind;
  readonly url: string;
  readonly localAddresses: readonly string[];
  /** Stable connections, one per room: they publish and never drop. */
  readonly publishers: readonly JitterMember[];
  /** Members that receive and drop their connection from time to time. */
  readonly receivers: readonly JitterMember[];
  readonly concurrency: number;
}

export interface JitterSetupResult {
  readonly connected: number;
  readonly failed: number;
  readonly errors: readonly string[];
}

/** The timing of a run (also part of the scenario's shape). */
export interface JitterTiming {
  readonly durationMs: number;
  /** Messages per second each room's publisher sends. */
  readonly ratePerRoom: number;
  readonly bodyBytes: number;
  /** Time between a receiver's drops, uniform in [min, max]. */
  readonly dropEveryMs: readonly [number, number];
  /** How long a receiver stays away, uniform in [min, max]. */
  readonly outageMs: readonly [number, number];
  /** No outage may end later than this long before publishing ends. */
  readonly quietTailMs: number;
  /** After publishing: time for the last catch-ups before counting. */
  readonly drainMs: number;
}

export interface JitterRunRequest extends JitterTiming {
  /** Stamped into bodies: messages of an earlier run in a reused room are ignored. */
  readonly step: number;
  /** Wall ms at which publishing starts (the same in every worker). */
  readonly startAt: number;
}

export interface JitterRunResult {
  /** Per room this worker holds receivers of. */
  readonly rooms: ReadonlyArray<{
    readonly room: number;
    readonly receivers: number;
    /** Distinct messages of this run received, summed over the receivers. */
    readonly unique: number;
    readonly duplicates: number;
  }>;
  /** Per room whose publisher this worker holds. */
  readonly publishers: ReadonlyArray<{
    readonly room: number;
    readonly sent: number;
    readonly acked: number;
    readonly failed: number;
  }>;
  readonly late: number;
  readonly drops: number;
  /** Drops after which the receiver was connected again (Socket.IO: `connect`; gigwire: `hello`). */
  readonly reconnected: number;
  /** Drops whose outage missed at least one message (the gaps). */
  readonly gaps: number;
  /** Gaps of which every missed message arrived later. */
  readonly filled: number;
  /** Messages missed during outages that never arrived. */
  readonly lostInGaps: number;
  /** Open connections the server side closed (a killed server process), receivers and publishers. */
  readonly serverDrops: number;
  /** Socket.IO reconnects the server did not recover (the client joined again instead). */
  readonly notRecovered: number;
  /** From the start of the reconnect (new socket created) to the arrival of the last missed message. */
  readonly fill: HistogramData;
  /** From the start of the reconnect to connected again (gigwire: hello; Socket.IO: connect; uws: hello + join reply). */
  readonly reconnect: HistogramData;
  /** This worker's event-loop delay, p99 over the run (a lagging worker inflates every time it takes). */
  readonly loopLagP99Ms: number;
  /** Where the time of the filled gaps went (gigwire; see FillBreakdown in bench/load/jitter.ts). */
  readonly breakdown: JitterFillBreakdown;
  readonly errors: readonly string[];
}

/** Steps of a filled gap's time (bench/load/jitter.ts, FillBreakdown). */
export type JitterFillStep = 'connect' | 'hello' | 'sdk' | 'join' | 'tail' | 'sentBeforeT0' | 'latency';

export interface JitterFillBreakdown {
  readonly steps: Readonly<Record<JitterFillStep, HistogramData>>;
  /** Gaps whose last missed message arrived after the rejoin's reply (live or through history). */
  readonly afterJoinOk: number;
}
