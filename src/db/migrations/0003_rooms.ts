import { type Kysely, sql } from 'kysely';

// Frozen once merged: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('rooms')
    .addColumn('id', 'uuid', (col) => col.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('kind', 'text', (col) => col.notNull().check(sql`kind in ('direct', 'group', 'job')`))
    .addColumn('title', 'text')
    .addColumn('created_by', 'uuid', (col) => col.references('users.id').onDelete('set null'))
    // "smaller-id:larger-id" for direct rooms: one room per pair, enforced by the unique index.
    .addColumn('direct_key', 'text', (col) => col.unique())
    // Highest seq stored; the room actor's starting point after activation.
    .addColumn('last_seq', 'bigint', (col) => col.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('room_members')
    .addColumn('room_id', 'uuid', (col) => col.notNull().references('rooms.id').onDelete('cascade'))
    .addColumn('user_id', 'uuid', (col) => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('role', 'text', (col) => col.notNull().defaultTo('member'))
    .addColumn('last_read_seq', 'bigint', (col) => col.notNull().defaultTo(0))
    .addColumn('joined_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('room_members_pkey', ['room_id', 'user_id'])
    .execute();
  await db.schema.createIndex('room_members_user_idx').on('room_members').column('user_id').execute();

  // (room_id, seq) is the order and fences a stale writer; (room_id, sender_id, client_msg_id)
  // makes a resent message a no-op.
  await db.schema
    .createTable('messages')
    .addColumn('room_id', 'uuid', (col) => col.notNull().references('rooms.id').onDelete('cascade'))
    .addColumn('seq', 'bigint', (col) => col.notNull())
    .addColumn('sender_id', 'uuid', (col) => col.notNull().references('users.id'))
    .addColumn('client_msg_id', 'text', (col) => col.notNull())
    .addColumn('body', 'text', (col) => col.notNull())
    .addColumn('meta', 'jsonb')
    .addColumn('sent_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('messages_pkey', ['room_id', 'seq'])
    .addUniqueConstraint('messages_client_msg_key', ['room_id', 'sender_id', 'client_msg_id'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['messages', 'room_members', 'rooms']) await db.schema.dropTable(table).execute();
}
