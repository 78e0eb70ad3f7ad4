/**
 * One group room kept busy by SDK clients, for failover tests: registers `size` users (contacts of
 * the creator), opens the room, connects one SDK client per member to `wsUrl` and joins it; then
 * `burst` has every member send one message after another (each resent with its clientMsgId until
 * acknowledged) and `expectEveryoneHasAll` checks that every member received 1..sent once, in order,
 * and that the database holds exactly those messages. `owner` reads the room's owner node and
 * fencing epoch (migration 0011).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { expect } from 'vitest';
import WebSocket from 'ws';
import { createClient, type GigwireClient } from '../../protocol/src/client/index.js';
import { sendUntilAcked, until } from './cluster.js';
import { addContact, type httpClient, type Registered, registerUser } from './http.js';

export interface RoomMember {
  readonly user: Registered;
  readonly client: GigwireClient;
  readonly seqs: number[];
}

export interface Ack {
  readonly seq: number;
  readonly at: number;
  readonly issuedAt: number;
}

export async function openBusyRoom(options: {
  readonly api: ReturnType<typeof httpClient>;
  readonly wsUrl: string;
  readonly size: number;
  readonly sql: pg.Pool;
}) {
  const { api, sql } = options;
  const users: Registered[] = [];
  for (let i = 0; i < options.size; i++) users.push(await registerUser(api));
  const [creator, ...others] = users as [Registered, ...Registered[]];
  for (const user of others) await addContact(api, user, creator);
  const created = await api.post<{ id: string }>(
    '/v1/rooms',
    { kind: 'group', memberIds: others.map((u) => u.id) },
    creator.accessToken,
  );
  expect(created.status).toBe(201);
  const roomId = created.body.id;
  const members: RoomMember[] = [];
  for (const user of users) {
    const member: RoomMember = {
      user,
      client: createClient({
        url: options.wsUrl,
        WebSocket,
        getAccessToken: () => user.accessToken,
        reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 },
      }),
      seqs: [],
    };
    member.client.on('room.message', (message) => member.seqs.push(message.seq));
    await member.client.whenConnected();
    await member.client.joinRoom(roomId);
    members.push(member);
  }
  let sent = 0;

  return {
    roomId,
    members,
    /** Messages acknowledged so far (a test that sends on its own adds with `countSent`). */
    sent: () => sent,
    countSent: (n: number) => {
      sent += n;
    },
    burst: async (label: string, each: number): Promise<Ack[]> => {
      const acks = await Promise.all(
        members.map(async (member, m) => {
          const mine: Ack[] = [];
          for (let i = 0; i < each; i++)
            mine.push(await sendUntilAcked(member.client, roomId, `${label}-${m}-${i}`));
          return mine;
        }),
      );
      sent += members.length * each;
      return acks.flat();
    },
    expectEveryoneHasAll: async () => {
      await until(() => members.every((m) => m.seqs.length >= sent), 30_000);
      await sleep(300); // anything delivered twice would have arrived by now
      const expected = Array.from({ length: sent }, (_, i) => i + 1);
      for (const member of members) expect(member.seqs).toEqual(expected);
      const { rows } = await sql.query<{ seq: string; client_msg_id: string }>(
        'select seq, client_msg_id from messages where room_id = $1 order by seq',
        [roomId],
      );
      expect(rows.map((row) => Number(row.seq))).toEqual(expected);
      expect(new Set(rows.map((row) => row.client_msg_id)).size).toBe(sent);
    },
    owner: async () => {
      const { rows } = await sql.query<{ owner_node: string | null; owner_epoch: string }>(
        'select owner_node, owner_epoch from rooms where id = $1',
        [roomId],
      );
      return { node: rows[0]?.owner_node ?? null, epoch: Number(rows[0]?.owner_epoch ?? 0) };
    },
    /** Stored messages with this clientMsgId (a resend must not add one). */
    storedWith: async (clientMsgId: string) =>
      (
        await sql.query('select seq from messages where room_id = $1 and client_msg_id = $2', [
          roomId,
          clientMsgId,
        ])
      ).rows.length,
    close: () => {
      for (const member of members) member.client.close();
    },
  };
}

export type BusyRoom = Awaited<ReturnType<typeof openBusyRoom>>;
