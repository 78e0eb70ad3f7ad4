/**
 * Room resume for the SDK: keeps, per joined room, the last seq handed to the application, and
 * turns whatever arrives (backlog after a join with sinceSeq, live pushes, duplicates after a
 * reconnect) into one gap-free, duplicate-free, in-order stream. A seq jump is filled through
 * `room.history` before any later message is emitted. After every reconnect each room is joined
 * again with its last seq, so the server pushes exactly the missed messages. A rejoin refused for a
 * passing reason (UNAVAILABLE while the room moves to another node after a crash, RATE_LIMITED,
 * INTERNAL, a TIMEOUT) is tried again after the server's `retryAfterMs`, else with backoff, until it
 * succeeds, the room is left or the next reconnect takes over: given up, the room would stay joined
 * in the app and silent on the wire. A gap fill's history read refused so is tried again likewise.
 * A first join refused RATE_LIMITED with retryAfterMs is sent again after it; one that fails
 * for good forgets the room again (the app was told it failed, so nothing may be
 * rejoined behind its back); after a TIMEOUT, which may have joined on the server all the same, a
 * best-effort `room.leave` follows. A rejoin refused for good (FORBIDDEN, NOT_FOUND: the user was
 * removed from the room, or it is gone) untracks the room and tells the client through `onRemoved`.
 * Room ids are lower-cased on the way in, as the RoomId schema does to what goes on the wire: the
 * server's pushes name rooms in lower case, so an upper-case key would match none of them.
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
  /** A tracked room was untracked because the server refused it for good; `error` says why. */
  readonly onRemoved: (roomId: string, error: unknown) => void;
  /** Waits between rejoin attempts (default setTimeout); the client's rejects once it is closed, which ends the loop. */
  readonly delay?: (ms: number) => Promise<void>;
}

/** Error codes after which a rejoin is worth trying again on the same connection. */
const PASSING = new Set(['UNAVAILABLE', 'RATE_LIMITED', 'INTERNAL', 'TIMEOUT']);
const errorCode = (error: unknown) =>
  typeof error === 'object' && error !== null ? String((error as { code?: unknown }).code) : undefined;
const isPassing = (error: unknown) => PASSING.has(errorCode(error) ?? '');
/** Error codes of a rejoin that mean the user is no longer in the room (or it is gone): never retried. */
const REFUSED_FOR_GOOD = new Set(['FORBIDDEN', 'NOT_FOUND']);
const isRefusedForGood = (error: unknown) => REFUSED_FOR_GOOD.has(errorCode(error) ?? '');
/** As the RoomId and UserId schemas do: UUIDs are compared as lower-case strings. */
export const canonicalId = (id: string) => id.toLowerCase();
const REJOIN_FIRST_DELAY_MS = 250;
const REJOIN_MAX_DELAY_MS = 5_000;
const defaultDelay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** Full jitter over the upper half: the clients of a crashed node all rejoin at once. */
const jittered = (attempt: number) => {
  const ceiling = Math.min(REJOIN_MAX_DELAY_MS, REJOIN_FIRST_DELAY_MS * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + Math.random() * (ceiling / 2);
};
/** The error's `details.retryAfterMs` when it names one. */
const namedRetryAfter = (error: unknown): number | undefined => {
  const details =
    typeof error === 'object' && error !== null ? (error as { details?: unknown }).details : undefined;
  const after =
    typeof details === 'object' && details !== null
      ? (details as { retryAfterMs?: unknown }).retryAfterMs
      : undefined;
  return typeof after === 'number' && Number.isFinite(after) && after >= 0 ? after : undefined;
};
/** The server's `details.retryAfterMs` when it names one (at most the largest backoff), else the backoff. */
const retryDelay = (error: unknown, attempt: number) => {
  const after = namedRetryAfter(error);
  return after !== undefined ? Math.min(after, REJOIN_MAX_DELAY_MS) : jittered(attempt);
};
/** Attempts of a first join refused RATE_LIMITED with `retryAfterMs` (see RoomTracker.firstJoin). */
const FIRST_JOIN_ATTEMPTS = 10;

interface TrackedRoom {
  /** Highest seq emitted; undefined until the first join replied. */
  lastSeq: number | undefined;
  /** Arrived but not yet emitted (ahead of a gap, or before the first join replied). */
  readonly pending: Map<number, RoomMessage>;
  filling: boolean;
  /** The first join while it waits for its answer: a second joinRoom meanwhile shares it. */
  firstJoin: Promise<RoomJoinReply> | undefined;
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
  async join(anyCaseRoomId: string): Promise<RoomJoinReply> {
    const roomId = canonicalId(anyCaseRoomId);
    const known = this.rooms.get(roomId);
    if (known !== undefined) return known.firstJoin ?? this.joinTracked(roomId, known, false);
    // Tracked before the answer: pushes that overtake the reply are held, not lost.
    const room: TrackedRoom = {
      lastSeq: undefined,
      pending: new Map(),
      filling: false,
      firstJoin: undefined,
    };
    this.rooms.set(roomId, room);
    const first = this.firstJoin(roomId, room).catch((error: unknown) =>
      this.forgetFailedJoin(roomId, room, error),
    );
    room.firstJoin = first;
    try {
      return await first;
    } finally {
      room.firstJoin = undefined;
    }
  }

  /**
   * The first join of a room. One refused RATE_LIMITED with `retryAfterMs` was not processed (the
   * node serves at most a few room reads of one user at a time, and every join reads what was
   * stored while it subscribed): it is sent again after that time, up to FIRST_JOIN_ATTEMPTS in
   * all. Before (review 27), an app joining five rooms at once had one of them fail RATE_LIMITED
   * and the room forgotten, though it kept to every announced limit.
   */
  private async firstJoin(roomId: string, room: TrackedRoom): Promise<RoomJoinReply> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.joinTracked(roomId, room, false);
      } catch (error) {
        const wait = namedRetryAfter(error);
        if (
          errorCode(error) !== 'RATE_LIMITED' ||
          wait === undefined ||
          attempt >= FIRST_JOIN_ATTEMPTS ||
          this.rooms.get(roomId) !== room
        )
          throw error;
        // The client's delay rejects once it is closed, which ends the join as CLOSED.
        await (this.ports.delay ?? defaultDelay)(Math.min(wait, REJOIN_MAX_DELAY_MS));
        // Left meanwhile: nothing to join any more.
        if (this.rooms.get(roomId) !== room) throw error;
      }
    }
  }

  /**
   * A first join failed: untrack the room unless a rejoin answered meanwhile (it has a seq then).
   * Kept, a FORBIDDEN or NOT_FOUND room would be joined again at every reconnect and could later
   * succeed behind the app's back; after a TIMEOUT its pushes would be held forever, undelivered.
   */
  private forgetFailedJoin(roomId: string, room: TrackedRoom, error: unknown): never {
    if (this.rooms.get(roomId) === room && room.lastSeq === undefined) {
      this.rooms.delete(roomId);
      // The server may have joined all the same (the ok was late or lost): stop its pushes.
      if (errorCode(error) === 'TIMEOUT') this.ports.leave(roomId).catch(() => undefined);
    }
    throw error;
  }

  async leave(anyCaseRoomId: string): Promise<void> {
    const roomId = canonicalId(anyCaseRoomId);
    this.rooms.delete(roomId);
    await this.ports.leave(roomId);
  }

  /**
   * The server took the user out of the room (a `room.member` removal naming them): untrack it
   * without a `room.leave`. Returns whether it was tracked.
   */
  forget(anyCaseRoomId: string): boolean {
    return this.rooms.delete(canonicalId(anyCaseRoomId));
  }

  /**
   * After a reconnect: join every room again from its last seq. A room whose first join is still
   * unanswered is left to that join (queued offline, it goes out on this connection; one sent
   * before failed DISCONNECTED): rejoined too, it went out twice (review 29).
   */
  resume(): void {
    this.generation += 1;
    for (const [roomId, room] of this.rooms) {
      if (room.firstJoin !== undefined && room.lastSeq === undefined) continue;
      void this.rejoin(roomId, room, this.generation);
    }
  }

  private async rejoin(roomId: string, room: TrackedRoom, generation: number): Promise<void> {
    const delay = this.ports.delay ?? defaultDelay;
    const current = () => generation === this.generation && this.rooms.get(roomId) === room;
    for (let attempt = 0; ; attempt += 1) {
      let refusal: unknown;
      try {
        await this.joinTracked(roomId, room, true);
        return;
      } catch (error) {
        refusal = error;
        if (current() && isRefusedForGood(error)) {
          // Rejoined at every reconnect it would be refused every time, and the app would show a
          // room that stays silent: untrack it and say so.
          this.rooms.delete(roomId);
          this.ports.onRemoved(roomId, error);
          return;
        }
        if (!current() || !isPassing(error)) {
          this.ports.onError(error);
          return;
        }
      }
      try {
        // The server's retryAfterMs when it names one (the user's backlog budget on the node).
        await delay(retryDelay(refusal, attempt));
      } catch {
        return; // the client was closed
      }
      if (!current()) return;
    }
  }

  /** A `room.message` push. Returns false when the room is not tracked (the caller emits it raw). */
  onMessage(message: RoomMessage): boolean {
    const roomId = canonicalId(message.roomId);
    const room = this.rooms.get(roomId);
    if (room === undefined) return false;
    if (room.lastSeq !== undefined && message.seq <= room.lastSeq) return true;
    room.pending.set(message.seq, message);
    this.drain(roomId, room);
    return true;
  }

  private async joinTracked(roomId: string, room: TrackedRoom, resume: boolean): Promise<RoomJoinReply> {
    const reply = await this.ports.join(roomId, room.lastSeq, resume);
    // Left (or removed) while the join was on the way: the messages held for it are no longer
    // the app's, and nothing is fetched for a room it left.
    if (this.rooms.get(roomId) !== room) return reply;
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
      // A handler may have left the room (or closed the client): the rest of the run is no longer
      // the app's (review 27).
      if (this.rooms.get(roomId) !== room) return;
      next = room.pending.get(room.lastSeq + 1);
    }
    if (startFill && room.pending.size > 0 && !room.filling) {
      void this.fill(roomId, room, Math.min(...room.pending.keys()) - 1);
    }
  }

  /**
   * Fetches seqs lastSeq+1..upTo through history, then drains. Stops when a page brings nothing
   * new (the next push or reconnect tries again), so a hole the server cannot fill never spins.
   * A page may hold fewer messages than asked (the server cuts pages of large messages at a byte
   * budget, keeping the newest): the next request then ends at the smallest seq received, until
   * the window is filled from below.
   * A history read refused for a passing reason (RATE_LIMITED: the user's reads or backlog budget
   * on the node; UNAVAILABLE, INTERNAL, TIMEOUT) is tried again after the server's `retryAfterMs`
   * or a jittered backoff, until answered, the room is left or a reconnect's rejoin takes over:
   * given up, the messages held behind the hole stayed hidden in a room that went quiet.
   */
  private async fill(roomId: string, room: TrackedRoom, upTo: number, attempt = 0): Promise<void> {
    if (room.lastSeq === undefined || room.filling) return;
    room.filling = true;
    const generation = this.generation;
    let failed: { error: unknown } | undefined;
    let progressed = false;
    /** Where the next page ends (exclusive) while a window is filled from its top down. */
    let end: number | undefined;
    try {
      while (this.rooms.get(roomId) === room && room.lastSeq !== undefined && room.lastSeq < upTo) {
        const before: number = room.lastSeq;
        const beforeSeq =
          end !== undefined && end > before + 1 ? end : Math.min(upTo, before + HISTORY_PAGE) + 1;
        const want = beforeSeq - before - 1;
        const page = await this.ports.history(roomId, beforeSeq, want);
        // Left while the page was on the way: emit nothing more of it.
        if (this.rooms.get(roomId) !== room) break;
        let added = false;
        let lowest = beforeSeq;
        for (const message of page.messages) {
          if (message.seq <= before || message.seq >= beforeSeq) continue;
          if (!room.pending.has(message.seq)) added = true;
          room.pending.set(message.seq, message);
          lowest = Math.min(lowest, message.seq);
        }
        this.drain(roomId, room, false);
        if (room.lastSeq === before && !added) break;
        progressed = true;
        // A short page: the rest of the window lies below the smallest seq it brought.
        end = lowest;
      }
    } catch (error) {
      failed = { error };
    } finally {
      room.filling = false;
    }
    const current = () =>
      generation === this.generation && this.rooms.get(roomId) === room && room.lastSeq !== undefined;
    if (failed !== undefined) {
      if (!current() || !isPassing(failed.error)) {
        this.ports.onError(failed.error);
        return;
      }
      try {
        await (this.ports.delay ?? defaultDelay)(retryDelay(failed.error, attempt));
      } catch {
        return; // the client was closed
      }
      if (current() && room.lastSeq < upTo) void this.fill(roomId, room, upTo, attempt + 1);
      else if (current() && room.pending.size > 0) this.drain(roomId, room);
      return;
    }
    // Messages that arrived during the fill may sit behind a newer gap.
    if (progressed && this.rooms.get(roomId) === room && room.pending.size > 0) this.drain(roomId, room);
  }
}
