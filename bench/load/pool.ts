/**
 * The orchestrator's side of the load generator: forks N worker processes (bench/load/worker.ts)
 * pinned to the load core, gives each its own block of loopback source addresses (127.0.0.2 and
 * up, so 20k sockets never run out of ephemeral ports), and sends them typed requests over IPC.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ReplyMessage, Requests, RequestType, WorkerMessage } from '../lib/ipc.js';
import { LOAD_CORE, NODE_TS, pinned, REPO_ROOT, stopProcess } from '../lib/spawn.js';

const WORKER_FILE = fileURLToPath(new URL('./worker.ts', import.meta.url));
/** Source addresses per worker: 10 × ~28k ephemeral ports, far above what a worker holds. */
const ADDRESSES_PER_WORKER = 10;

interface Waiter {
  readonly resolve: (body: unknown) => void;
  readonly reject: (error: Error) => void;
}

class LoadWorker {
  readonly #child: ChildProcess;
  readonly #waiters = new Map<number, Waiter>();
  #nextReqId = 1;
  readonly localAddresses: readonly string[];
  readonly ready: Promise<void>;

  constructor(index: number, profileDir: string | undefined) {
    // A profiled worker (--profile-dir with BENCH_PROFILE_WORKERS=1) writes its V8 CPU profile
    // there when it exits. Opt-in: profiling slows the workers by a third, which the server feels.
    // biome-ignore lint/style/noProcessEnv: a profiling knob of the bench, not gigwire's configuration
    const profiled = profileDir !== undefined && process.env.BENCH_PROFILE_WORKERS === '1';
    const profile = profiled ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    const { command, args } = pinned(LOAD_CORE, [...NODE_TS, ...profile, WORKER_FILE]);
    this.#child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const first = 2 + index * ADDRESSES_PER_WORKER;
    this.localAddresses = Array.from({ length: ADDRESSES_PER_WORKER }, (_, i) => `127.0.0.${first + i}`);
    this.ready = new Promise((resolve, reject) => {
      this.#child.once('exit', (code, signal) => {
        const error = new Error(`load worker ${index} exited (${code ?? signal})`);
        reject(error);
        for (const waiter of this.#waiters.values()) waiter.reject(error);
        this.#waiters.clear();
      });
      this.#child.on('message', (message: WorkerMessage) => {
        if (message.type === 'ready') {
          resolve();
          return;
        }
        this.#settle(message);
      });
    });
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  call<K extends RequestType>(type: K, body: Requests[K]['req']): Promise<Requests[K]['res']> {
    const reqId = this.#nextReqId;
    this.#nextReqId += 1;
    return new Promise((resolve, reject) => {
      this.#waiters.set(reqId, { resolve: resolve as (body: unknown) => void, reject });
      this.#child.send({ reqId, type, body });
    });
  }

  #settle(reply: ReplyMessage): void {
    const waiter = this.#waiters.get(reply.reqId);
    if (waiter === undefined) return;
    this.#waiters.delete(reply.reqId);
    if (reply.ok) waiter.resolve(reply.body);
    else waiter.reject(new Error(reply.error));
  }

  stop(): Promise<void> {
    this.#child.disconnect();
    return stopProcess(this.#child, 3_000);
  }
}

export class WorkerPool {
  readonly #workers: LoadWorker[];

  private constructor(workers: LoadWorker[]) {
    this.#workers = workers;
  }

  static async start(count: number, profileDir?: string): Promise<WorkerPool> {
    const workers = Array.from({ length: count }, (_, i) => new LoadWorker(i, profileDir));
    await Promise.all(workers.map((worker) => worker.ready));
    return new WorkerPool(workers);
  }

  get size(): number {
    return this.#workers.length;
  }

  get pids(): number[] {
    return this.#workers.map((worker) => worker.pid);
  }

  localAddresses(worker: number): readonly string[] {
    return this.#workers[worker]?.localAddresses ?? ['127.0.0.1'];
  }

  /** Sends one request to every worker, `bodyFor(w)` building worker w's body. */
  all<K extends RequestType>(
    type: K,
    bodyFor: (worker: number) => Requests[K]['req'],
  ): Promise<Array<Requests[K]['res']>> {
    return Promise.all(this.#workers.map((worker, w) => worker.call(type, bodyFor(w))));
  }

  async stop(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.stop()));
  }
}
