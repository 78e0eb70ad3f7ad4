/**
 * Node-wide group commit: the new-message batches of every room actor of this node go to
 * PostgreSQL together, in one statement and one commit, instead of one statement per room.
 *
 * Each room actor still has at most one write in flight and its own numbering (per-room group
 * commit, room-actor.ts); this joins those writes across rooms. A write waits for the next flush:
 * at once (the end of this event-loop turn) while fewer than `maxInFlight` statements are
 * running, otherwise until one of them commits — so batches grow with load and cost nothing extra
 * when the node is quiet. Each caller's promise settles only after the statement that carried its
 * batch committed (acks follow the commit, as before).
 *
 * Outcomes stay per room. A room whose fencing epoch moved on stores nothing and gets
 * RoomFencedError while the others are stored; one with a sender who is no member any more stores
 * nothing and gets RoomSenderNotMemberError. When the whole statement fails (one room's unique
 * violation or refused value fails all of it, atomically), the room a unique violation names is
 * written alone and the others go back, first in line, into the next statement; any other failure
 * writes every batch of it again on its own. Either way each room learns its own outcome and its
 * actor reacts exactly as before (recheck after a duplicate, split after a refusal, UNAVAILABLE
 * after a failure of the database) — and a resend the room actor no longer remembers (older than
 * its dedupe window) costs its own room one more write, not every room of the node one each.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { RoomId } from '../../../protocol/src/ids.js';
import {
  type MessageRow,
  type RoomBatch,
  RoomFencedError,
  RoomSenderNotMemberError,
  roomOfUniqueViolation,
} from '../../db/repositories/rooms.repo.js';

export interface GroupCommitOptions {
  /**
   * Writes several rooms' batches in one statement; rooms missing from the answer were fenced, rooms
   * answered with no rows had a sender who is not a member (nothing stored).
   */
  readonly writeMany: (batches: readonly RoomBatch[]) => Promise<Map<RoomId, MessageRow[]>>;
  /** Writes one room's batch alone (RoomFencedError when fenced, RoomSenderNotMemberError). */
  readonly writeOne: (batch: RoomBatch) => Promise<MessageRow[]>;
  /** Statements running at once (default 2). */
  readonly maxInFlight?: number;
  /** Most messages per statement (default 2 000, far below PostgreSQL's 65 535 parameters). */
  readonly maxMessages?: number;
  /** When a flush runs (default `setImmediate`); tests pass their own. */
  readonly schedule?: (flush: () => void) => void;
  readonly metrics?: Registry;
}

export type GroupCommit = (batch: RoomBatch) => Promise<MessageRow[]>;

/** The entry of the room a failed statement's unique violation names (`roomOfUniqueViolation`). */
function conflictingRoom(error: unknown, entries: readonly Waiting[]): Waiting | undefined {
  const roomId = roomOfUniqueViolation(error);
  return roomId === undefined ? undefined : entries.find((entry) => entry.batch.roomId === roomId);
}

interface Waiting {
  readonly batch: RoomBatch;
  readonly resolve: (rows: MessageRow[]) => void;
  readonly reject: (error: unknown) => void;
}

export function createGroupCommit(options: GroupCommitOptions): GroupCommit {
  const maxInFlight = options.maxInFlight ?? 2;
  const maxMessages = options.maxMessages ?? 2_000;
  const schedule = options.schedule ?? ((flush: () => void) => void setImmediate(flush));
  const registers = options.metrics === undefined ? [] : [options.metrics];
  const roomsPerStatement = new Histogram({
    name: 'gigwire_room_group_commit_rooms',
    help: 'Rooms whose new messages one statement stored (node-wide group commit).',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers,
  });
  const statementSeconds = new Histogram({
    name: 'gigwire_room_group_commit_seconds',
    help: 'Time from sending a node-wide message write to its commit (or failure), seconds: what every send of it waits before its ack.',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
    registers,
  });
  const retriedAlone = new Counter({
    name: 'gigwire_room_group_commit_split_total',
    help: 'Node-wide writes that failed as a whole and were written again room by room.',
    registers,
  });

  let waiting: Waiting[] = [];
  let inFlight = 0;
  let scheduled = false;

  const settleAlone = (entry: Waiting) => {
    options.writeOne(entry.batch).then(entry.resolve, entry.reject);
  };

  const run = (entries: readonly Waiting[]) => {
    inFlight += 1;
    roomsPerStatement.observe(entries.length);
    const endTimer = statementSeconds.startTimer();
    const done = () => {
      endTimer();
      inFlight -= 1;
      if (waiting.length > 0) requestFlush();
    };
    if (entries.length === 1) {
      const [only] = entries as [Waiting];
      options.writeOne(only.batch).then(
        (rows) => {
          done();
          only.resolve(rows);
        },
        (error: unknown) => {
          done();
          only.reject(error);
        },
      );
      return;
    }
    options.writeMany(entries.map((entry) => entry.batch)).then(
      (stored) => {
        done();
        for (const entry of entries) {
          const rows = stored.get(entry.batch.roomId);
          if (rows === undefined) entry.reject(new RoomFencedError(entry.batch.roomId));
          else if (rows.length === 0) entry.reject(new RoomSenderNotMemberError(entry.batch.roomId));
          else entry.resolve(rows);
        }
      },
      (error: unknown) => {
        // Nothing was stored.
        retriedAlone.inc();
        const named = conflictingRoom(error, entries);
        if (named === undefined) {
          done();
          // Whose batch failed it is learnt by writing each on its own.
          for (const entry of entries) settleAlone(entry);
          return;
        }
        // The room the violation names is written alone; the others, ahead of later sends, make
        // the next statement (each removal shortens it: as many retries as rooms in conflict).
        waiting = [...entries.filter((entry) => entry !== named), ...waiting];
        settleAlone(named);
        done();
      },
    );
  };

  const flush = () => {
    scheduled = false;
    while (inFlight < maxInFlight && waiting.length > 0) {
      const taken: Waiting[] = [];
      const later: Waiting[] = [];
      const rooms = new Set<RoomId>();
      let messages = 0;
      for (const entry of waiting) {
        const size = entry.batch.messages.length;
        // One batch per room per statement; the first always fits, whatever its size.
        if (rooms.has(entry.batch.roomId) || (taken.length > 0 && messages + size > maxMessages)) {
          later.push(entry);
          continue;
        }
        rooms.add(entry.batch.roomId);
        messages += size;
        taken.push(entry);
      }
      waiting = later;
      run(taken);
    }
  };

  const requestFlush = () => {
    if (scheduled || inFlight >= maxInFlight) return;
    scheduled = true;
    schedule(flush);
  };

  return (batch) => {
    if (batch.messages.length === 0) return Promise.resolve([]);
    return new Promise<MessageRow[]>((resolve, reject) => {
      waiting.push({ batch, resolve, reject });
      requestFlush();
    });
  };
}
