/**
 * PostgreSQL answering writes with 25006 read_only_sql_transaction (a failover that briefly lands
 * the pool on a standby, or an operator setting the database read-only for maintenance): the room
 * took that for a refusal of the messages' contents, split every batch down to single sends and
 * answered each sender VALIDATION_FAILED "the message contains a value that cannot be stored" — not
 * retryable, so clients dropped messages that were fine. The same for 55P03 lock_not_available (a
 * `lock_timeout` set on the database running out behind a lock held elsewhere). Now such a write
 * fails the batch UNAVAILABLE, the senders resend, and once writes are accepted again the resend is
 * stored once.
 * One node, real PostgreSQL (the database is switched to read-only and its sessions ended, as a
 * failover does), real WebSockets.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { untilDefined } from '../support/poll.js';
import { joinedGroupRoom, resendUntilStored } from '../support/room-sends.js';
import type { TestSocket } from '../support/ws-client.js';

describe('room sends while the database cannot take writes (read-only, lock timeout)', () => {
  let testNode: TestNode;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    testNode = await startTestNode();
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await testNode?.stop();
  });

  /** Runs `text` on the node's database through a connection of its own. */
  const admin = async (text: string) => {
    const client = new pg.Client({ connectionString: testNode.db.url });
    await client.connect();
    try {
      // This session may start read-only itself (the switch below applies to new sessions).
      await client.query('set default_transaction_read_only = off');
      await client.query(text);
    } finally {
      await client.end();
    }
  };
  /** Sets the database read-only (or not) for new sessions, then ends the node's sessions. */
  const readOnly = async (on: boolean) => {
    await admin(
      `alter database ${testNode.db.name} ${on ? 'set default_transaction_read_only = on' : 'reset default_transaction_read_only'}`,
    );
    await admin(
      `select pg_terminate_backend(pid) from pg_stat_activity where datname = '${testNode.db.name}' and pid <> pg_backend_pid()`,
    );
  };

  it('answers the senders UNAVAILABLE (never VALIDATION_FAILED), and stores the resend once writes are back', async () => {
    const { roomId, socket } = await joinedGroupRoom(testNode.node, sockets);
    // The room's actor is active (it took the room over while writes were accepted).
    expect(await socket.request('room.send', { roomId, clientMsgId: 'before', body: 'first' })).toMatchObject(
      {
        t: 'ok',
        d: { seq: 1 },
      },
    );

    await readOnly(true);
    try {
      // The pool reconnects at once (to a database that is read-only now): every write meets 25006.
      const codes: string[] = [];
      const refusal = await untilDefined(async () => {
        const answer = await socket.request('room.send', { roomId, clientMsgId: 'during', body: 'second' });
        if (answer.t !== 'error') return { acknowledged: answer };
        const code = String((answer.d as { code?: unknown }).code);
        codes.push(code);
        return codes.length >= 5 ? codes : undefined;
      }, 'five refused sends');
      expect(refusal).toEqual(['UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE']);
    } finally {
      await readOnly(false);
    }

    const stored = await resendUntilStored(socket, roomId, { clientMsgId: 'during', body: 'second' });
    expect(stored).toMatchObject({ d: { seq: 2 } });
    const history = await socket.request('room.history', { roomId, limit: 10 });
    const seqs = ((history.d as { messages: { seq: number; clientMsgId: string }[] }).messages ?? []).map(
      (message) => `${message.seq}:${message.clientMsgId}`,
    );
    expect(seqs.sort()).toEqual(['1:before', '2:during']);
  }, 60_000);

  it('answers UNAVAILABLE, not VALIDATION_FAILED, when a lock_timeout runs out behind a lock held elsewhere', async () => {
    const { roomId, socket } = await joinedGroupRoom(testNode.node, sockets);
    expect((await socket.request('room.send', { roomId, clientMsgId: 'before', body: 'first' })).t).toBe(
      'ok',
    );

    // A lock_timeout for the node's sessions (a common production setting), and the room row
    // locked by a long transaction elsewhere (an operator's, a slow contract transition's).
    await admin(`alter database ${testNode.db.name} set lock_timeout = '200ms'`);
    await admin(
      `select pg_terminate_backend(pid) from pg_stat_activity where datname = '${testNode.db.name}' and pid <> pg_backend_pid()`,
    );
    const holder = new pg.Client({ connectionString: testNode.db.url });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query(`select id from rooms where id = $1 for update`, [roomId]);
      const codes: string[] = [];
      await untilDefined(async () => {
        const answer = await socket.request('room.send', { roomId, clientMsgId: 'during', body: 'second' });
        codes.push(answer.t === 'error' ? String((answer.d as { code?: unknown }).code) : 'ok');
        return codes.length >= 3 ? true : undefined;
      }, 'three sends');
      expect(codes).toEqual(['UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE']);
    } finally {
      await holder.query('rollback').catch(() => undefined);
      await holder.end();
      await admin(`alter database ${testNode.db.name} reset lock_timeout`);
    }
    const stored = await resendUntilStored(socket, roomId, { clientMsgId: 'during', body: 'second' });
    expect(stored).toMatchObject({ d: { seq: 2 } });
  }, 60_000);
});
