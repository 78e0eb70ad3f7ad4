/**
 * The worker side of the reconnect-jitter scenario. Each room has one stable publisher sending
 * numbered messages open-loop; every receiver drops its connection abruptly (TCP closed, no close
 * frame) every `dropEveryMs`, stays away for `outageMs`, then reconnects the way its library does:
 *
 * - gigwire: the TypeScript SDK (protocol/src/client) over `ws`. The drop terminates the socket; the
 *   SDK reconnects by itself (its backoff), but a socket it creates while the receiver is "offline"
 *   only starts connecting when the outage ends. It rejoins with `sinceSeq` and fills gaps itself;
 *   messages are counted as the SDK emits them (`room.message`).
 * - socketio: socket.io-client against the peer's server with connection state recovery
 *   (`/recovery/`): the drop terminates the engine's socket; after the outage `socket.connect()`
 *   sends the session id and last offset, and the server replays what was missed. A reconnect the
 *   server does not recover joins the room again (counted).
 * - uws: the lean client; after the outage a new connection joins again. Nothing replays what it missed.
 *
 * Per drop: the gap = messages due before the reconnect started that the receiver did not have at
 * the drop; filled when all of them have arrived; fill time = last such arrival − reconnect start
 * (the moment the new socket is created; for gigwire the outage's end, or the moment a server drop
 * is seen, so a delay of the SDK before it creates its socket is counted too).
 *
 * A connection the server loses (the jitter-with-a-kill scenario SIGKILLs a server process) counts
 * as a drop of its own (`serverDrops`, with its gap and gap fill like any other): gigwire's SDK
 * reconnects by itself; Socket.IO and raw uWS are reconnected at once with the same retry rule as
 * after an outage, as an application would (Socket.IO's own reconnection is off here).
 */

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { unpack } from 'msgpackr';
import { io, type Socket } from 'socket.io-client';
import msgpackParser from 'socket.io-msgpack-parser';
import WebSocket from 'ws';
import { createClient, type GigwireClient } from '../../protocol/src/client/index.js';
import type { WebSocketLike } from '../../protocol/src/client/socket.js';
import { Histogram, type HistogramData } from '../lib/histogram.js';
import type {
  JitterFillBreakdown,
  JitterFillStep,
  JitterKind,
  JitterMember,
  JitterRunRequest,
  JitterRunResult,
  JitterSetupRequest,
  JitterSetupResult,
} from '../lib/jitter-ipc.js';
import { wallMs } from '../lib/stats.js';
import { type BenchClient, openClient } from './clients.js';
import { runOpenLoop } from './schedule.js';

const MAX_ERRORS = 5;
/** The load worker's loop-delay sampling interval, ms (subtracted from what the histogram records). */
const LOOP_DELAY_RESOLUTION_MS = 10;
const CONNECT_TIMEOUT_MS = 15_000;
/** One reconnect attempt of Socket.IO gives up after this (the SDK's hello timer is 10 s too). */
const ATTEMPT_TIMEOUT_MS = 10_000;
/** A failed reconnect attempt is retried after a random delay below this (the SDK's first backoff step). */
const RETRY_CEILING_MS = 250;
/** Socket.IO recovery server's path on the peer (bench/peers/socketio-peer.ts). */
export const SOCKETIO_RECOVERY_PATH = '/recovery/';

/** One connection of the scenario, whatever the library. */
interface Conn {
  /** Resolves once connected and joined (first time) / connected again (after `reconnect`). */
  whenReady(): Promise<void>;
  /** Abrupt: the TCP connection goes away without a close frame. */
  drop(): void;
  /** The outage is over: connect again (the reconnect starts when the socket is created: `onAttempt`). */
  reconnect(): void;
  send(body: string, clientMsgId: string): Promise<void>;
  close(): void;
}

interface Hooks {
  readonly onBody: (body: unknown) => void;
  /** A new socket was created (the start of a reconnect). */
  readonly onAttempt: () => void;
  /** The server side closed an open connection (not one of our drops, not our close). */
  readonly onLost: () => void;
  readonly onError: (error: unknown) => void;
  /** A step of the reconnect reached (gigwire only; see `Phase`). */
  readonly onPhase?: (phase: Phase) => void;
}

/**
 * Steps of a gigwire reconnect, for the breakdown of the gap fill: `open` the upgrade answered
 * (TCP + HTTP upgrade + JWT check), `hello` the server's first frame, `joinSent` the SDK's first
 * frame (the room rejoin), `joinOk` the first `ok` (the rejoin's reply, after its backlog).
 */
type Phase = 'open' | 'hello' | 'joinSent' | 'joinOk';

interface DropEvent {
  readonly dropAt: number;
  /** Reconnect start; NaN until the new socket is created. */
  t0: number;
  /** Earliest due time of messages that can belong to this gap (the previous reconnect start). */
  readonly since: number;
  /** When each step of the reconnect was reached (wall ms; gigwire only). */
  phases?: Partial<Record<Phase, number>>;
}

interface Receiver {
  readonly member: JitterMember;
  readonly conn: Conn;
  /** First arrival (wall ms) per message number of the current run; NaN = not yet. */
  arrivals: Float64Array;
  /** When the publisher sent each message that arrived (a late publisher sends after the due time). */
  sentAts: Float64Array;
  duplicates: number;
  readonly events: DropEvent[];
  /** Start of the latest reconnect (the next gap's `since`). */
  since: number;
}

interface State {
  kind: JitterKind;
  publishers: Map<number, Conn>;
  receivers: Receiver[];
  /** Current run, for attributing bodies. */
  step: number;
  errors: string[];
  notRecovered: number;
  /** Open connections the server side closed during the run (receivers and publishers). */
  serverDrops: number;
}

let state: State | undefined;

function noteError(errors: string[], error: unknown): void {
  const text = error instanceof Error ? error.message : String(error);
  if (errors.length < MAX_ERRORS && !errors.includes(text)) errors.push(text);
}

const random = (range: readonly [number, number]) => range[0] + Math.random() * (range[1] - range[0]);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** `j<step>.<n>|<wall ms when sent>|<padding>`. */
function jitterBody(step: number, n: number, sentAt: number, bytes: number): string {
  const stamp = `j${step}.${n}|${sentAt.toFixed(3)}|`;
  return stamp.length >= bytes ? stamp : stamp + 'x'.repeat(bytes - stamp.length);
}

function readBody(body: unknown): { step: number; n: number; sentAt: number } | null {
  if (typeof body !== 'string' || body[0] !== 'j') return null;
  const dot = body.indexOf('.');
  const bar = body.indexOf('|');
  const bar2 = bar < 0 ? -1 : body.indexOf('|', bar + 1);
  if (dot < 0 || bar < dot || bar2 < 0) return null;
  const step = Number(body.slice(1, dot));
  const n = Number(body.slice(dot + 1, bar));
  const sentAt = Number(body.slice(bar + 1, bar2));
  return Number.isInteger(step) && Number.isInteger(n) && Number.isFinite(sentAt)
    ? { step, n, sentAt }
    : null;
}

// --- gigwire: the SDK ------------------------------------------------------------------------

/** Whether a receiver may connect; sockets created while offline wait for `open()`. */
class Gate {
  online = true;
  #waiting: (() => void)[] = [];
  wait(start: () => void): void {
    if (this.online) start();
    else this.#waiting.push(start);
  }
  open(): void {
    this.online = true;
    for (const start of this.#waiting.splice(0)) start();
  }
}

type Handler = ((event: unknown) => void) | null;

/** Whether a msgpack frame from the server is an `ok` reply (read only until the rejoin's reply). */
function isOkFrame(data: unknown): boolean {
  if (!(data instanceof ArrayBuffer)) return false;
  try {
    return (unpack(new Uint8Array(data)) as { t?: unknown } | null)?.t === 'ok';
  } catch {
    return false;
  }
}

/**
 * The WebSocket handed to the SDK: a `ws` socket created at once, or when the outage ends. The
 * SDK's handlers are called through, so it sees exactly what `ws` reports.
 */
function deferredSocketClass(gate: Gate, localAddress: string, hooks: Hooks, current: { ws?: WebSocket }) {
  return class DeferredSocket implements WebSocketLike {
    binaryType = 'arraybuffer';
    onopen: unknown = null;
    onmessage: unknown = null;
    onclose: unknown = null;
    onerror: unknown = null;
    #inner: WebSocket | undefined;
    #closed = false;
    #awaitingSend = false;

    constructor(url: string, protocols?: string | string[]) {
      gate.wait(() => {
        if (this.#closed) {
          setImmediate(() => (this.onclose as Handler)?.({ code: 1006, reason: 'closed before connecting' }));
          return;
        }
        hooks.onAttempt();
        const ws = new WebSocket(url, protocols, { localAddress, perMessageDeflate: false });
        ws.binaryType = 'arraybuffer';
        let opened = false;
        // Steps of this attempt still to be seen (the breakdown of the gap fill).
        let awaiting: 'hello' | 'joinOk' | undefined = 'hello';
        this.#awaitingSend = true;
        ws.onopen = (event) => {
          opened = true;
          hooks.onPhase?.('open');
          (this.onopen as Handler)?.(event);
        };
        ws.onmessage = (event) => {
          if (awaiting === 'hello') {
            hooks.onPhase?.('hello');
            awaiting = 'joinOk';
          } else if (awaiting === 'joinOk' && isOkFrame(event.data)) {
            hooks.onPhase?.('joinOk');
            awaiting = undefined;
          }
          (this.onmessage as Handler)?.(event);
        };
        ws.onclose = (event) => {
          // Our drop takes the gate offline first, our close sets #closed: anything else is the server.
          // Its reconnect starts at once (the SDK's delay, if any, counts), as for the other targets.
          if (opened && gate.online && !this.#closed) {
            hooks.onLost();
            hooks.onAttempt();
          }
          (this.onclose as Handler)?.(event);
        };
        ws.onerror = (event) => (this.onerror as Handler)?.(event);
        this.#inner = ws;
        current.ws = ws;
      });
    }

    get readyState(): number {
      return this.#inner?.readyState ?? 0;
    }
    get protocol(): string {
      return this.#inner?.protocol ?? '';
    }
    send(data: string | Uint8Array): void {
      if (this.#inner === undefined) throw new Error('not connected');
      if (this.#awaitingSend) {
        this.#awaitingSend = false;
        hooks.onPhase?.('joinSent');
      }
      this.#inner.send(data);
    }
    close(code?: number, reason?: string): void {
      this.#closed = true;
      this.#inner?.close(code, reason);
    }
  };
}

function gigwireConn(url: string, member: JitterMember, localAddress: string, hooks: Hooks): Conn {
  const gate = new Gate();
  const current: { ws?: WebSocket } = {};
  const client: GigwireClient = createClient({
    url,
    WebSocket: deferredSocketClass(gate, localAddress, hooks, current),
    getAccessToken: () =>
      member.connectToken === undefined
        ? member.token
        : { accessToken: member.token, connectToken: member.connectToken },
    // Reset the backoff between drops (every 10–20 s; --quick: 1.5–3 s), as after real stable
    // connections: the SDK's first attempt after an abrupt drop then waits below 250 ms (full
    // jitter), inside the outage for our drops; after a server's drop (jitterkill) it counts.
    reconnect: { initialDelayMs: 250, maxDelayMs: 2_000, stableAfterMs: 500 },
    tokenRefresh: false,
  });
  client.on('room.message', (message) => hooks.onBody(message.body));
  client.on('error', (error) => {
    if (error.code !== 'CONNECT_FAILED') hooks.onError(error);
  });
  let joined: Promise<void> | undefined;
  return {
    whenReady: () => {
      joined ??= client.joinRoom(member.roomId).then(() => undefined);
      return joined.then(() => client.whenConnected()).then(() => undefined);
    },
    drop: () => {
      gate.online = false;
      current.ws?.terminate();
    },
    reconnect: () => {
      // The reconnect starts when the network is back, whatever the SDK does then: a socket it
      // made during the outage starts now, a later one (still in its backoff) counts its delay.
      hooks.onAttempt();
      gate.open();
    },
    send: async (body, clientMsgId) => {
      await client.sendMessage(member.roomId, body, { clientMsgId, attempts: 3 });
    },
    close: () => client.close(),
  };
}

// --- Socket.IO with connection state recovery --------------------------------------------------

function socketIoConn(
  url: string,
  member: JitterMember,
  localAddress: string,
  hooks: Hooks,
  onNotRecovered: () => void,
): Conn {
  const socket: Socket = io(url, {
    path: SOCKETIO_RECOVERY_PATH,
    transports: ['websocket'],
    parser: msgpackParser,
    forceNew: true,
    reconnection: false,
    timeout: ATTEMPT_TIMEOUT_MS,
    auth: { userId: member.userId },
    ...({ localAddress, perMessageDeflate: false } as Record<string, unknown>),
  });
  socket.on('message', (message: { body?: unknown } | undefined) => hooks.onBody(message?.body));
  let everJoined = false;
  /** Between our drop and the end of its outage; `closed` after close(). */
  let dropping = false;
  let closed = false;
  /** Bumped by every drop and reconnect: an older reconnect's retries stop. */
  let generation = 0;
  let connected: Promise<void> = new Promise((resolve) => socket.once('connect', () => resolve()));
  socket.on('connect', () => {
    if (!everJoined || socket.recovered) return;
    // Not recovered (session expired or unknown): join again, as an app would; the missed messages are gone.
    onNotRecovered();
    socket.emit('join', member.roomId, () => undefined);
  });
  const join = connected.then(
    () =>
      new Promise<void>((resolve, reject) => {
        socket.timeout(CONNECT_TIMEOUT_MS).emit('join', member.roomId, (error: Error | null) => {
          if (error !== null) reject(error);
          else {
            everJoined = true;
            resolve();
          }
        });
      }),
  );
  const conn: Conn = {
    whenReady: () => join.then(() => connected),
    drop: () => {
      dropping = true;
      generation += 1;
      if (!socket.connected) {
        // Dropped while a reconnect after a server drop is still connecting: reset the manager, or
        // the next connect() would find it "opening" and wait for an attempt that is gone.
        socket.disconnect();
        return;
      }
      // The engine's `ws` socket, terminated like a network drop; null while it is between sockets.
      const transport = socket.io.engine?.transport as unknown as { ws?: WebSocket | null } | undefined;
      if (transport?.ws) transport.ws.terminate();
      else socket.io.engine?.close();
    },
    reconnect: () => {
      dropping = false;
      generation += 1;
      const mine = generation;
      // The start, before `connect()` creates the socket (as for the other targets).
      hooks.onAttempt();
      // Retried until connected, as Socket.IO's own reconnection would (with the SDK's first backoff step).
      connected = new Promise((resolve) => {
        const attempt = () => {
          // Already connected (an earlier reconnect's attempt got through): nothing to wait for.
          if (socket.connected) {
            resolve();
            return;
          }
          if (mine !== generation) return;
          const onConnect = () => {
            socket.off('connect_error', onError);
            resolve();
          };
          const onError = () => {
            socket.off('connect', onConnect);
            setTimeout(attempt, Math.random() * RETRY_CEILING_MS);
          };
          socket.once('connect', onConnect);
          socket.once('connect_error', onError);
          socket.connect();
        };
        attempt();
      });
    },
    send: (body, clientMsgId) =>
      new Promise<void>((resolve, reject) => {
        socket
          .timeout(CONNECT_TIMEOUT_MS)
          .emit(
            'send',
            { roomId: member.roomId, clientMsgId, body },
            (error: Error | null, ack?: { error?: string }) => {
              if (error !== null) reject(error);
              else if (ack?.error !== undefined) reject(new Error(ack.error));
              else resolve();
            },
          );
      }),
    close: () => {
      closed = true;
      socket.removeAllListeners();
      socket.close();
    },
  };
  socket.on('disconnect', () => {
    if (dropping || closed || !everJoined) return;
    hooks.onLost();
    conn.reconnect();
  });
  return conn;
}

// --- raw uWS: the lean client, no recovery ------------------------------------------------------

function uwsConn(url: string, member: JitterMember, localAddress: string, hooks: Hooks): Conn {
  let client: BenchClient | undefined;
  /** Bumped by every reconnect: a connection opened for an older one is closed, never kept. */
  let generation = 0;
  let closed = false;
  const open = async (mine: number) => {
    const opened = await openClient({
      kind: 'ws',
      url,
      spec: {
        index: member.index,
        userId: member.userId,
        token: member.token,
        ...(member.connectToken === undefined ? {} : { connectToken: member.connectToken }),
      },
      localAddress,
      onRoomMessage: hooks.onBody,
      // Called only for a close we did not make: the server went away.
      onDrop: () => {
        if (closed || mine !== generation) return;
        hooks.onLost();
        conn.reconnect();
      },
    });
    if (mine !== generation || closed) {
      opened.close();
      return;
    }
    client = opened;
    await opened.join(member.roomId);
  };
  let ready = open(generation);
  const conn: Conn = {
    whenReady: () => ready,
    drop: () => {
      // A reconnect still retrying (after a server drop) must not bring it back during the outage.
      generation += 1;
      client?.close();
    },
    reconnect: () => {
      generation += 1;
      const mine = generation;
      client?.close();
      hooks.onAttempt();
      ready = (async () => {
        // Retried as a client library would, each attempt after a short random delay, for as long
        // as one reconnect may take (a restarting server refuses connections meanwhile).
        const deadline = wallMs() + CONNECT_TIMEOUT_MS;
        for (;;) {
          try {
            await open(mine);
            return;
          } catch (error) {
            if (mine !== generation) return;
            if (wallMs() > deadline) throw error;
            await sleep(Math.random() * RETRY_CEILING_MS);
          }
        }
      })();
      ready.catch(hooks.onError);
    },
    send: (body, clientMsgId) => {
      if (client === undefined) return Promise.reject(new Error('not connected'));
      return client.send(member.roomId, clientMsgId, body);
    },
    close: () => {
      closed = true;
      client?.close();
    },
  };
  return conn;
}

// --- requests ---------------------------------------------------------------------------------

export async function jitterSetup(req: JitterSetupRequest): Promise<JitterSetupResult> {
  const errors: string[] = [];
  const st: State = {
    kind: req.kind,
    publishers: new Map(),
    receivers: [],
    step: -1,
    errors: [],
    notRecovered: 0,
    serverDrops: 0,
  };
  state = st;
  let counter = 0;
  const make = (member: JitterMember, hooks: Hooks): Conn => {
    const localAddress = req.localAddresses[counter % req.localAddresses.length] ?? '127.0.0.1';
    counter += 1;
    switch (req.kind) {
      case 'gigwire':
        return gigwireConn(req.url, member, localAddress, hooks);
      case 'socketio':
        return socketIoConn(req.url, member, localAddress, hooks, () => {
          st.notRecovered += 1;
        });
      case 'uws':
        return uwsConn(req.url, member, localAddress, hooks);
    }
  };
  const ignore: Hooks = {
    onBody: () => undefined,
    onAttempt: () => undefined,
    onLost: () => {
      st.serverDrops += 1;
    },
    onError: () => undefined,
  };
  const all: Array<{ conn: Conn }> = [];
  for (const member of req.publishers) {
    const conn = make(member, { ...ignore, onError: (error) => noteError(st.errors, error) });
    st.publishers.set(member.room, conn);
    all.push({ conn });
  }
  for (const member of req.receivers) {
    const receiver: Receiver = {
      member,
      conn: undefined as unknown as Conn,
      arrivals: new Float64Array(0),
      sentAts: new Float64Array(0),
      duplicates: 0,
      events: [],
      since: 0,
    };
    const hooks: Hooks = {
      onBody: (body) => {
        const read = readBody(body);
        if (read === null || read.step !== st.step) return;
        if (read.n < 0 || read.n >= receiver.arrivals.length) return;
        if (Number.isNaN(receiver.arrivals[read.n])) {
          receiver.arrivals[read.n] = wallMs();
          receiver.sentAts[read.n] = read.sentAt;
        } else receiver.duplicates += 1;
      },
      onAttempt: () => {
        const event = receiver.events.at(-1);
        if (event !== undefined && Number.isNaN(event.t0)) {
          event.t0 = wallMs();
          receiver.since = event.t0;
        }
      },
      onPhase: (phase) => {
        const event = receiver.events.at(-1);
        if (event === undefined || Number.isNaN(event.t0)) return;
        event.phases ??= {};
        event.phases[phase] ??= wallMs();
      },
      onLost: () => {
        st.serverDrops += 1;
        if (st.step < 0) return;
        // A drop of its own, unless one is already waiting for its reconnect.
        const event = receiver.events.at(-1);
        if (event !== undefined && Number.isNaN(event.t0)) return;
        receiver.events.push({ dropAt: wallMs(), t0: Number.NaN, since: receiver.since });
      },
      onError: (error) => noteError(st.errors, error),
    };
    (receiver as { conn: Conn }).conn = make(member, hooks);
    st.receivers.push(receiver);
    all.push(receiver);
  }
  let connected = 0;
  let failed = 0;
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(req.concurrency, all.length)) }, async () => {
    while (next < all.length) {
      const item = all[next] as { conn: Conn };
      next += 1;
      try {
        await withTimeout(item.conn.whenReady(), CONNECT_TIMEOUT_MS, 'connect and join');
        connected += 1;
      } catch (error) {
        failed += 1;
        noteError(errors, error);
      }
    }
  });
  await Promise.all(lanes);
  return { connected, failed, errors };
}

async function publishRoom(
  conn: Conn,
  room: number,
  req: JitterRunRequest,
): Promise<{ room: number; sent: number; acked: number; failed: number; late: number }> {
  let acked = 0;
  let failed = 0;
  const inFlight = new Set<Promise<void>>();
  const stats = await runOpenLoop({
    startAt: req.startAt,
    durationMs: req.durationMs,
    rate: req.ratePerRoom,
    fire: (n) => {
      const sending = conn
        .send(jitterBody(req.step, n, wallMs(), req.bodyBytes), `j${req.step}-${room}-${n}`)
        .then(
          () => {
            acked += 1;
          },
          (error: unknown) => {
            failed += 1;
            if (state !== undefined) noteError(state.errors, error);
          },
        );
      inFlight.add(sending);
      void sending.finally(() => inFlight.delete(sending));
    },
  });
  await Promise.all([...inFlight]);
  return { room, sent: stats.sent, acked, failed, late: stats.late };
}

/**
 * Where the time of each filled gap went (gigwire; the others only have `sent`/`latency`):
 * connect = t0 → upgrade answered, hello = → first frame, sdk = → rejoin sent, join = → its reply,
 * tail = reply → last missed message (0 when the backlog brought it; > 0: it came live or
 * through history), sentBeforeT0 = how long before the reconnect's start the last missed message
 * was sent, latency = its send → arrival.
 */
class FillBreakdown {
  readonly histograms: Record<JitterFillStep, Histogram> = {
    connect: new Histogram(),
    hello: new Histogram(),
    sdk: new Histogram(),
    join: new Histogram(),
    tail: new Histogram(),
    sentBeforeT0: new Histogram(),
    latency: new Histogram(),
  };
  /** Gaps whose last missed message arrived after the rejoin's reply. */
  afterJoinOk = 0;

  record(event: DropEvent, last: number, lastSentAt: number): void {
    const h = this.histograms;
    const p = event.phases ?? {};
    const step = (histogram: Histogram, from: number | undefined, to: number | undefined) => {
      if (from !== undefined && to !== undefined) histogram.recordMs(Math.max(0, to - from));
    };
    step(h.connect, event.t0, p.open);
    step(h.hello, p.open, p.hello);
    step(h.sdk, p.hello, p.joinSent);
    step(h.join, p.joinSent, p.joinOk);
    if (p.joinOk !== undefined) {
      h.tail.recordMs(Math.max(0, last - p.joinOk));
      if (last > p.joinOk) this.afterJoinOk += 1;
    }
    if (!Number.isNaN(lastSentAt)) {
      h.sentBeforeT0.recordMs(Math.max(0, event.t0 - lastSentAt));
      h.latency.recordMs(Math.max(0, last - lastSentAt));
    }
  }

  toData(): JitterFillBreakdown {
    const steps = Object.fromEntries(
      Object.entries(this.histograms).map(([name, histogram]) => [name, histogram.toData()]),
    ) as Record<JitterFillStep, HistogramData>;
    return { steps, afterJoinOk: this.afterJoinOk };
  }
}

/** Drops and reconnects one receiver until its last outage would end inside the quiet tail. */
async function jitterLoop(
  receiver: Receiver,
  req: JitterRunRequest,
  counts: { drops: number; reconnected: number; reconnect: Histogram },
) {
  const lastEnd = req.startAt + req.durationMs - req.quietTailMs;
  let at = req.startAt + random([req.dropEveryMs[0] / 2, req.dropEveryMs[1]]);
  receiver.since = req.startAt;
  for (;;) {
    const outage = random(req.outageMs);
    if (at + outage > lastEnd) return;
    await sleep(at - wallMs());
    const event: DropEvent = { dropAt: wallMs(), t0: Number.NaN, since: receiver.since };
    receiver.events.push(event);
    try {
      receiver.conn.drop();
    } catch (error) {
      if (state !== undefined) noteError(state.errors, error);
    }
    counts.drops += 1;
    await sleep(outage);
    receiver.conn.reconnect();
    try {
      await withTimeout(receiver.conn.whenReady(), CONNECT_TIMEOUT_MS, 'reconnect');
      counts.reconnected += 1;
      if (!Number.isNaN(event.t0)) counts.reconnect.recordMs(wallMs() - event.t0);
    } catch (error) {
      if (state !== undefined) noteError(state.errors, error);
    }
    if (Number.isNaN(event.t0)) receiver.since = event.dropAt;
    at = Math.max(wallMs() + 100, event.dropAt + random(req.dropEveryMs));
  }
}

export async function jitterRun(req: JitterRunRequest): Promise<JitterRunResult> {
  const st = state;
  if (st === undefined) throw new Error('jitterRun before jitterSetup');
  st.step = req.step;
  st.errors = [];
  st.notRecovered = 0;
  st.serverDrops = 0;
  const total = Math.floor((req.durationMs * req.ratePerRoom) / 1000);
  const interval = 1000 / req.ratePerRoom;
  for (const receiver of st.receivers) {
    receiver.arrivals = new Float64Array(total).fill(Number.NaN);
    receiver.sentAts = new Float64Array(total).fill(Number.NaN);
    receiver.duplicates = 0;
    receiver.events.length = 0;
  }
  const counts = { drops: 0, reconnected: 0, reconnect: new Histogram() };
  // A busy load worker delays every reconnect and every arrival it times: its loop lag is reported.
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  loopDelay.enable();
  const publishing = Promise.all([...st.publishers].map(([room, conn]) => publishRoom(conn, room, req)));
  const jittering = Promise.all(st.receivers.map((receiver) => jitterLoop(receiver, req, counts)));
  const publishers = await publishing;
  await jittering;
  await sleep(req.startAt + req.durationMs + req.drainMs - wallMs());
  loopDelay.disable();

  const fill = new Histogram();
  const breakdown = new FillBreakdown();
  let gaps = 0;
  let filled = 0;
  let lostInGaps = 0;
  const rooms = new Map<number, { room: number; receivers: number; unique: number; duplicates: number }>();
  for (const receiver of st.receivers) {
    const { arrivals, sentAts } = receiver;
    let unique = 0;
    for (const arrival of arrivals) if (!Number.isNaN(arrival)) unique += 1;
    const entry = rooms.get(receiver.member.room) ?? {
      room: receiver.member.room,
      receivers: 0,
      unique: 0,
      duplicates: 0,
    };
    entry.receivers += 1;
    entry.unique += unique;
    entry.duplicates += receiver.duplicates;
    rooms.set(receiver.member.room, entry);
    for (const event of receiver.events) {
      if (Number.isNaN(event.t0)) continue;
      // Missed: sent since the previous reconnect and before this one started, not held at the
      // drop. A message that never arrived counts by its due time (it was sent then or later).
      let missed = 0;
      let missing = 0;
      let last = Number.NEGATIVE_INFINITY;
      let lastSentAt = Number.NaN;
      const first = Math.max(0, Math.floor((event.since - req.startAt) / interval) - 1);
      for (let n = first; n < total; n += 1) {
        const dueAt = req.startAt + n * interval;
        if (dueAt >= event.t0) break;
        const arrival = arrivals[n] as number;
        if (arrival < event.dropAt) continue;
        const sentAt = Number.isNaN(arrival) ? dueAt : (sentAts[n] as number);
        if (sentAt >= event.t0 || sentAt < event.since) continue;
        missed += 1;
        if (Number.isNaN(arrival)) missing += 1;
        else if (arrival > last) {
          last = arrival;
          lastSentAt = sentAt;
        }
      }
      if (missed === 0) continue;
      gaps += 1;
      if (missing === 0) {
        filled += 1;
        fill.recordMs(Math.max(0, last - event.t0));
        breakdown.record(event, last, lastSentAt);
      } else lostInGaps += missing;
    }
  }
  return {
    rooms: [...rooms.values()],
    publishers: publishers.map(({ late: _late, ...rest }) => rest),
    late: publishers.reduce((sum, p) => sum + p.late, 0),
    drops: counts.drops,
    reconnected: counts.reconnected,
    gaps,
    filled,
    lostInGaps,
    notRecovered: st.notRecovered,
    serverDrops: st.serverDrops,
    fill: fill.toData(),
    reconnect: counts.reconnect.toData(),
    // The histogram records whole timer intervals (an idle loop reads ~10.2 ms): the lag is the excess.
    loopLagP99Ms: Math.max(0, loopDelay.percentile(99) / 1e6 - LOOP_DELAY_RESOLUTION_MS),
    breakdown: breakdown.toData(),
    errors: st.errors,
  };
}

/** Closes every connection of the scenario in this worker. */
export function jitterClose(): void {
  const st = state;
  state = undefined;
  if (st === undefined) return;
  for (const conn of st.publishers.values()) conn.close();
  for (const receiver of st.receivers) receiver.conn.close();
}
