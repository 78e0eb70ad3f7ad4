/**
 * The contract between the benchmark orchestrator (bench/run.ts) and the servers it measures:
 * gigwire (bench/targets/gigwire.ts), a Socket.IO 4 peer and a raw uWebSockets.js peer
 * (bench/peers/*, started through bench/targets/peers.ts). Every server runs in its own process,
 * pinned to its own core, so /proc figures belong to it alone.
 */

/** `gigwire2`: gigwire with GATEWAY_PROCESSES=2 (a supervisor and two copies sharing WS_PORT). */
export type TargetName = 'gigwire' | 'gigwire2' | 'socketio' | 'uws';

/** What a load-generator client needs to open one authenticated socket. */
export interface ClientCredential {
  /** Opaque user id (the room member / message sender). */
  readonly userId: string;
  /** gigwire: an access JWT; peers: ignored (empty string). */
  readonly token: string;
  /** gigwire: the connect token issued with it (HMAC; `connect.<token>` at the upgrade). */
  readonly connectToken?: string;
}

export interface TargetServer {
  readonly name: TargetName;
  /**
   * gigwire / uws: ws://127.0.0.1:<port>/ws (gigwire's msgpack subprotocol + bearer token; the uws
   * peer accepts the same subprotocols and ignores the token). socketio: http://127.0.0.1:<port>.
   */
  readonly wsUrl: string;
  /** The server process whose CPU and RSS are the figures (the Node process serving sockets). */
  readonly pid: number;
  /**
   * Every process whose CPU is the server's, re-read at each sample (gigwire2: the supervisor and
   * its copies; a peer restarted by `crash` has a new pid). Absent: `[pid]`.
   */
  readonly serverPids?: () => number[];
  /**
   * SIGKILLs one server process mid-run (the jitter-with-a-kill scenario). gigwire2: one of the
   * two copies (its supervisor restarts it; clients reconnect to the survivor through the shared
   * port). Peers: their only process, restarted on the same port (their in-memory recovery state
   * is gone). Resolves once the killed process is replaced, with the ms from the kill to that.
   */
  readonly crash?: () => Promise<{ readonly killedPid: number; readonly replacedMs: number | null }>;
  /** Supporting processes sampled separately (gigwire: every postgres and redis-server pid). */
  readonly auxPids: () => number[];
  /** Credentials for `count` distinct users, made without the REST path (no argon2 per user). */
  readonly credentials: (count: number) => Promise<ClientCredential[]>;
  /**
   * Makes `rooms` rooms whose members are exactly `membersPerRoom` consecutive credentials each
   * (room r has credentials[r * membersPerRoom ... (r + 1) * membersPerRoom - 1]); returns room ids.
   */
  readonly prepareRooms: (
    credentials: readonly ClientCredential[],
    rooms: number,
    membersPerRoom: number,
  ) => Promise<string[]>;
  /** REST base URL (gigwire only), for the autocannon scenarios. */
  readonly httpUrl?: string;
  /**
   * Credits `amount` minor units to each user's wallet (gigwire only, for the transfer scenario),
   * without the provider flow: the ledger's own top-up, straight against the database.
   */
  readonly fundWallets?: (credentials: readonly ClientCredential[], amount: number) => Promise<void>;
  /**
   * The ledger as it stands (gigwire only): the auditor's findings, one line each (none when every
   * invariant holds), and how many journal transactions of kind `transfer` exist.
   */
  readonly checkLedger?: () => Promise<{ readonly findings: string[]; readonly transfers: number }>;
  /**
   * The server's event-loop delay since the previous call, in ms (gigwire: prom-client's
   * `nodejs_eventloop_lag_p99_seconds` / `_max_seconds` from /metrics, whose histogram restarts at
   * every scrape), and the p99 of its group commit's statements since the previous call (the
   * upper bound of the `gigwire_room_group_commit_seconds` bucket holding it; null when none ran),
   * and likewise of `gigwire_room_send_seconds` (a new message's arrival at its room actor → ack).
   * Call once at a window's start (discarding the answer) and once at its end.
   * Absent for targets that do not expose it.
   */
  readonly eventLoopLag?: () => Promise<{
    readonly p99Ms: number;
    readonly maxMs: number;
    readonly commitP99Ms: number | null;
    readonly sendP99Ms: number | null;
  } | null>;
  /** Forces a full GC in the server process and resolves when it is done (for RSS after GC). */
  readonly gc: () => Promise<void>;
  readonly stop: () => Promise<void>;
}
