/**
 * A load-generator worker process (forked by bench/load/pool.ts, pinned to the load core). It holds
 * up to a few thousand client sockets and executes the orchestrator's requests over IPC: connect,
 * join rooms, publish at a fixed rate, collect the room messages received for a step, run
 * request/reply at a fixed rate, close. Latencies go into mergeable histograms sent back as data.
 */
import { Histogram } from '../lib/histogram.js';
import type {
  CloseResult,
  CollectRequest,
  CollectResult,
  ConnectRequest,
  ConnectResult,
  JoinRequest,
  JoinResult,
  PublishRequest,
  PublishResult,
  RequestMessage,
  RequestReplyRequest,
  RequestReplyResult,
  Requests,
  RequestType,
  WorkerMessage,
} from '../lib/ipc.js';
import { wallMs } from '../lib/stats.js';
import { readStamp, stampBody } from '../lib/wire.js';
import { type BenchClient, type ClientOptions, openClient } from './clients.js';
import { jitterClose, jitterRun, jitterSetup } from './jitter.js';
import { runOpenLoop } from './schedule.js';

/** Replies still outstanding this long after a schedule ends are counted as failed. */
const DRAIN_TIMEOUT_MS = 5_000;
const MAX_ERRORS = 5;

const clients = new Map<number, BenchClient>();
/** How each client was opened, so one dropped before it joined can be opened again. */
const openOptions = new Map<number, ClientOptions>();
/** Room messages received per step. */
const received = new Map<number, { count: number; latency: Histogram }>();
let drops = 0;

function send(message: WorkerMessage): void {
  process.send?.(message);
}

function noteError(errors: string[], error: unknown): void {
  const text = error instanceof Error ? error.message : String(error);
  if (errors.length < MAX_ERRORS && !errors.includes(text)) errors.push(text);
}

function onRoomMessage(body: unknown): void {
  const stamp = readStamp(body);
  if (stamp === null) return;
  const now = wallMs();
  let entry = received.get(stamp.step);
  if (entry === undefined) {
    entry = { count: 0, latency: new Histogram() };
    received.set(stamp.step, entry);
  }
  entry.count += 1;
  entry.latency.recordMs(now - stamp.sentWallMs);
}

/** Runs `task` over `items` with at most `concurrency` in flight. */
async function inPool<T>(
  items: readonly T[],
  concurrency: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, async () => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await task(item);
    }
  });
  await Promise.all(lanes);
}

async function connect(req: ConnectRequest): Promise<ConnectResult> {
  const errors: string[] = [];
  let connected = 0;
  let failed = 0;
  let counter = 0;
  const startedAt = wallMs();
  await inPool(req.clients, req.concurrency, async (spec) => {
    const localAddress = req.localAddresses[counter % req.localAddresses.length] ?? '127.0.0.1';
    counter += 1;
    const options: ClientOptions = {
      kind: req.kind,
      url: req.url,
      spec,
      localAddress,
      onRoomMessage,
      onDrop: () => {
        drops += 1;
        clients.delete(spec.index);
      },
    };
    openOptions.set(spec.index, options);
    try {
      const client = await openClient(options);
      clients.set(spec.index, client);
      connected += 1;
    } catch (error) {
      failed += 1;
      noteError(errors, error);
    }
  });
  return { connected, failed, errors, startedAt, finishedAt: wallMs() };
}

async function join(req: JoinRequest): Promise<JoinResult> {
  const errors: string[] = [];
  let joined = 0;
  let failed = 0;
  let reopened = 0;
  await inPool(req.joins, req.concurrency, async ({ index, roomId }) => {
    try {
      let client = clients.get(index);
      const options = openOptions.get(index);
      if (client === undefined && options !== undefined) {
        // A real client reconnects the same way (the SDK does); the count is reported.
        client = await openClient(options);
        clients.set(index, client);
        reopened += 1;
      }
      if (client === undefined) throw new Error(`client ${index} not connected`);
      await client.join(roomId);
      joined += 1;
    } catch (error) {
      failed += 1;
      noteError(errors, error);
    }
  });
  return { joined, failed, reopened, errors };
}

/** Waits until `outstanding()` is zero or the drain timeout passes. */
async function drain(outstanding: () => number): Promise<void> {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  while (outstanding() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/**
 * Fires `request(i, dueAt)` on the open-loop schedule and times each reply from its scheduled
 * time; `undefined` (no client for that slot) counts as a failure, as do replies still missing
 * after the drain timeout.
 */
async function timedRequests(
  schedule: { readonly startAt: number; readonly durationMs: number; readonly rate: number },
  request: (i: number, dueAt: number) => Promise<void> | undefined,
) {
  const errors: string[] = [];
  const latency = new Histogram();
  let answered = 0;
  let failed = 0;
  let inFlight = 0;
  const stats = await runOpenLoop({
    startAt: schedule.startAt,
    durationMs: schedule.durationMs,
    rate: schedule.rate,
    fire: (i, dueAt) => {
      const pending = request(i, dueAt);
      if (pending === undefined) {
        failed += 1;
        return;
      }
      inFlight += 1;
      pending.then(
        () => {
          inFlight -= 1;
          answered += 1;
          latency.recordMs(wallMs() - dueAt);
        },
        (error: unknown) => {
          inFlight -= 1;
          failed += 1;
          noteError(errors, error);
        },
      );
    },
  });
  await drain(() => inFlight);
  return { stats, answered, failed: failed + inFlight, errors, latency };
}

async function publish(req: PublishRequest): Promise<PublishResult> {
  const run = await timedRequests(req, (i, dueAt) => {
    const sender = req.senders[i % req.senders.length];
    const client = sender === undefined ? undefined : clients.get(sender.index);
    if (sender === undefined || client === undefined) return undefined;
    const clientMsgId = `${req.step}-${sender.index}-${i}`;
    return client.send(sender.roomId, clientMsgId, stampBody(req.step, dueAt, req.bodyBytes));
  });
  return {
    ...run.stats,
    acked: run.answered,
    failed: run.failed,
    errors: run.errors,
    ack: run.latency.toData(),
  };
}

function collect(req: CollectRequest): CollectResult {
  const entry = received.get(req.step);
  received.delete(req.step);
  return {
    received: entry?.count ?? 0,
    latency: (entry?.latency ?? new Histogram()).toData(),
  };
}

async function requestReply(req: RequestReplyRequest): Promise<RequestReplyResult> {
  const run = await timedRequests(req, (i) => {
    const index = req.indexes[i % req.indexes.length];
    return index === undefined ? undefined : clients.get(index)?.ping();
  });
  return {
    ...run.stats,
    replied: run.answered,
    failed: run.failed,
    errors: run.errors,
    latency: run.latency.toData(),
  };
}

function closeAll(): CloseResult {
  jitterClose();
  const closed = clients.size;
  for (const client of clients.values()) client.close();
  clients.clear();
  received.clear();
  const dropped = drops;
  drops = 0;
  return { closed, dropped };
}

type Handlers = {
  [K in RequestType]: (body: Requests[K]['req']) => Requests[K]['res'] | Promise<Requests[K]['res']>;
};

const handlers: Handlers = {
  connect,
  join,
  publish,
  collect,
  reqrep: requestReply,
  close: closeAll,
  jitterSetup,
  jitterRun,
};

async function handle<K extends RequestType>(message: RequestMessage<K>): Promise<void> {
  try {
    const handler = handlers[message.type] as (body: Requests[K]['req']) => Promise<Requests[K]['res']>;
    const body = await handler(message.body);
    send({ type: 'reply', reqId: message.reqId, ok: true, body });
  } catch (error) {
    send({ type: 'reply', reqId: message.reqId, ok: false, error: String(error) });
  }
}

process.on('message', (message: RequestMessage) => {
  void handle(message);
});
process.on('disconnect', () => process.exit(0));
// An orderly exit on the pool's SIGTERM, so a worker run with --cpu-prof (--profile-dir) writes its profile.
process.on('SIGTERM', () => process.exit(0));
// Keeps a stray socket error from killing the worker mid-scenario; it is counted where it surfaces.
process.on('uncaughtException', (error) => {
  process.stderr.write(`worker ${process.pid}: uncaught ${error.stack ?? String(error)}\n`);
});
send({ type: 'ready' });
