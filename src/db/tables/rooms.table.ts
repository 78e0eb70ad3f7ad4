import type { ColumnType, Generated } from 'kysely';
import type { RoomId, UserId } from '../../../protocol/src/ids.js';

/** bigint columns: pg returns them as strings; seqs stay far below 2^53, so numbers are safe. */
type Seq = ColumnType<string | number, number | undefined, number>;

export interface RoomsTable {
  id: Generated<RoomId>;
  kind: 'direct' | 'group' | 'job';
  title: string | null;
  created_by: UserId | null;
  direct_key: string | null;
  last_seq: Seq;
  /** Bumped by each node that takes the room over; writes compare it (migration 0011). */
  owner_epoch: Seq;
  owner_node: string | null;
  created_at: Generated<Date>;
}

export interface RoomMembersTable {
  room_id: RoomId;
  user_id: UserId;
  role: Generated<string>;
  last_read_seq: Seq;
  joined_at: Generated<Date>;
}

export interface MessagesTable {
  room_id: RoomId;
  seq: ColumnType<string | number, number, never>;
  sender_id: UserId;
  client_msg_id: string;
  body: string;
  meta: Record<string, unknown> | null;
  sent_at: Generated<Date>;
}
