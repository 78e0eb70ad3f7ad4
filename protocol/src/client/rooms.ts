/**
 * Room resume for the SDK: keeps, per joined room, the last seq handed to the application, and
 * turns whatever arrives (backlog after a join with sinceSeq, live pushes, duplicates after a
 * reconnect) into one gap-free, duplicate-free, in-order stream. A seq jump is filled through
 * `room.history` before any later message is emitted. After every reconnect each room is joined
 * again with its last seq, so the server pushes exactly the missed messages. A rejoin refused for a
 * passing reason (UNAVAILABLE while the room moves to another node after a crash, RATE_LIMITED,
 * INTERNAL, a TIMEOUT) is tried again with backoff until it succeeds, the room is left or the next
 * reconnect takes over: given up, the room would stay joined in the app and silent on the wire.
 */
import type { RoomMessage } from '../frames.js';

type RoomJoinReply = { lastSeq: number };
type RoomHistoryReply = { messages: RoomMessage[] };

export interface RoomTrackerPorts {
  readonly join: (roomId: string, sinceSeq: number | undefined, resume: boolean) => Promise<RoomJoinReply>;
  readonly leave: (roomId: string) => Promise<void>;
  readonly history: (roomId: string, beforeSeq: number, limit: number) => Promise<RoomHistoryReply>;
  readonly emit: (message: RoomMessage) => void;
  readonly onError: (error: unknown) => void;
  /** Waits between rejoin attempts (default setTimeout); tests pass their own. */
  readonly delay?: (ms: number) => Promise<void>;
}

/** Error codes after which a rejoin is worth trying again on the same connection. */
const PASSING = new Set(['UNAVAILABLE', 'RATE_LIMITED', 'INTERNAL', 'TIMEOUT']);
const isPassing = (error: unknown) =>
  typeof error === 'object' && error !== null && PASSING.has(String((error as { code?: unknown }).code));
const REJOIN_FIRST_DELAY_MS = 250;
const REJOIN_MAX_DELAY_MS = 5_000;
const defaultDelay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface TrackedRoom {
  /** Highest seq emitted; undefined until the first join replied. */
  lastSeq: number | undefined;
  /** Arrived but not yet emitted (ahead of a gap, or before the first join replied). */
  readonly pending: Map<number, RoomMessage>;
  filling: boolean;
}

const HISTORY_PAGE = 100;

export class RoomTracker {
  private readonly rooms = new Map<string, TrackedRoom>();
  /** Counts resumes: a rejoin loop of an earlier connection stops once a newer one began. */
  private generation = 0;

  constructor(private readonly ports: RoomTrackerPorts) {}

  get joined(): readonly string[] {
    return [...this.rooms.keys()];
  }

  /** Joins (or rejoins) a room; resolves with the server's lastSeq at the join. */
  async join(roomId: string): Promise<RoomJoinReply> {
    let room = this.rooms.get(roomId);
    if (room === undefined) {
      room = { lastSeq: undefined, pending: new Map(), filling: false };
      this.rooms.set(roomId, room);
    }
    return this.joinTracked(roomId, room, false);
  }

  async leave(roomId: string): Promise<void> {
    this.rooms.delete(roomId);
    await this.ports.leave(roomId);
  }

  /** After a reconnect: join every room again from its last seq. */
  resume(): void {
    this.generation += 1;
    for (const [roomId, room] of this.rooms) void this.rejoin(roomId, room, this.generation);
  }

  private async rejoin(roomId: string, room: TrackedRoom, generation: number): Promise<void> {
    const delay = this.ports.delay ?? defaultDelay;
    const current = () => generation === this.generation && this.rooms.get(roomId) === room;
    for (let attempt = 0; ; attempt += 1) {
      try {
        await this.joinTracked(roomId, room, true);
        return;
      } catch (error) {
        if (!current() || !isPassing(error)) {
          this.ports.onError(error);
          return;
        }
      }
      // Full jitter: the clients of a crashed node all rejoin at once.
      const ceiling = Math.min(REJOIN_MAX_DELAY_MS, REJOIN_FIRST_DELAY_MS * 2 ** attempt);
      await delay(ceiling / 2 + Math.random() * (ceiling / 2));
      if (!current()) return;
    }
  }

  /** A `room.message` push. Returns false when the room is not tracked (the caller emits it raw). */
  onMessage(message: RoomMessage): boolean {
    const room = this.rooms.get(message.roomId);
    if (room === undefined) return false;
    if (room.lastSeq !== undefined && message.seq <= room.lastSeq) return true;
    room.pending.set(message.seq, message);
    this.drain(message.roomId, room);
    return true;
  }

  private async joinTracked(roomId: string, room: TrackedRoom, resume: boolean): Promise<RoomJoinReply> {
    const reply = await this.ports.join(roomId, room.lastSeq, resume);
    if (room.lastSeq === undefined) {
      // First join: the stream starts at the server's lastSeq; anything pushed meanwhile is after it.
      room.lastSeq = reply.lastSeq;
      for (const seq of room.pending.keys()) if (seq <= reply.lastSeq) room.pending.delete(seq);
    }
    this.drain(roomId, room);
    // A backlog the server capped, or one still missing pieces: fetch the rest through history.
    if (room.lastSeq !== undefined && room.lastSeq < reply.lastSeq)
      void this.fill(roomId, room, reply.lastSeq);
    return reply;
  }

  private drain(roomId: string, room: TrackedRoom, startFill = true): void {
    if (room.lastSeq === undefined) return;
    let next = room.pending.get(room.lastSeq + 1);
    while (next !== undefined) {
      room.pending.delete(next.seq);
      room.lastSeq = next.seq;
      this.ports.emit(next);
      next = room.pending.get(room.lastSeq + 1);
    }
    if (startFill && room.pending.size > 0 && !room.filling) {
      void this.fill(roomId, room, Math.min(...room.pending.keys()) - 1);
    }
  }

  /**
   * Fetches seqs lastSeq+1..upTo through history, then drains. Stops when a page brings nothing
   * new (the next push or reconnect tries again), so a hole the server cannot fill never spins.
   */
  private async fill(roomId: string, room: TrackedRoom, upTo: number): Promise<void> {
    if (room.lastSeq === undefined || room.filling) return;
    room.filling = true;
    let progressed = false;
    try {
      while (this.rooms.get(roomId) === room && room.lastSeq !== undefined && room.lastSeq < upTo) {
        const want = Math.min(HISTORY_PAGE, upTo - room.lastSeq);
        const page = await this.ports.history(roomId, room.lastSeq + want + 1, want);
        const before: number = room.lastSeq;
        for (const message of page.messages) if (message.seq > before) room.pending.set(message.seq, message);
        this.drain(roomId, room, false);
        if (room.lastSeq === before) break;
        progressed = true;
      }
    } catch (error) {
      this.ports.onError(error);
    } finally {
      room.filling = false;
    }
    // Messages that arrived during the fill may sit behind a newer gap.
    if (progressed && this.rooms.get(roomId) === room && room.pending.size > 0) this.drain(roomId, room);
  }
}
