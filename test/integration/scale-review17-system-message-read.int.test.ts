/**
 * A contract's system message is written into its job room by the contract transition itself, not
 * by the room's actor, so the actor's last seq does not include it. A member who read it asked
 * `room.read` with its seq and was answered a lower one (the actor clamped the mark to the last seq
 * it knew): the message stayed unread for good — badge, unread count and unread reminders — until
 * someone chatted in the room again. One node running every role, real PostgreSQL, Redis,
 * WebSockets and REST; the system message comes from a real delivery.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../../src/bin/start-node.js';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { untilDefined } from '../support/poll.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

type Json = Record<string, unknown>;

describe('reading a system message the room actor did not write', () => {
  let testNode: TestNode;
  let node: RunningNode;
  let api: ReturnType<typeof httpClient>;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    testNode = await startTestNode({ OUTBOX_POLL_MS: '20', LEDGER_AUDIT_INTERVAL_S: '0' });
    ({ node } = testNode);
    api = httpClient(node.baseUrl);
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await testNode?.stop();
  });

  const socketOf = async (user: Registered) => {
    const socket = await openSocket(
      node.uwsUrl ?? `${node.baseUrl.replace(/^http/, 'ws')}/ws`,
      user.accessToken,
    );
    sockets.push(socket);
    await socket.next((frame) => frame.t === 'hello');
    return socket;
  };
  const post = (path: string, token: string, body?: Json, headers: Record<string, string> = {}) =>
    api.call<Json>('POST', path, {
      token,
      headers: { 'idempotency-key': randomUUID(), ...headers },
      ...(body === undefined ? {} : { body }),
    });

  it('marks it read: room.read answers its seq, and the unread count goes to 0', async () => {
    const hirer = await registerUser(api, { roles: ['hirer'] });
    const worker = await registerUser(api, { roles: ['worker'] });
    const topUp = await post('/v1/wallet/top-ups', hirer.accessToken, {
      amount: 10_000,
      card: SandboxCard.SUCCEEDS,
    });
    expect(topUp.status).toBe(202);
    await untilDefined(async () => {
      const wallet = await api.get<{ available: number }>('/v1/wallet', hirer.accessToken);
      return wallet.body.available >= 10_000 ? true : undefined;
    }, 'the top-up');
    const categories = await api.get<{ data: { id: string }[] }>('/v1/categories', hirer.accessToken);
    const job = await api.post<Json>(
      '/v1/jobs',
      {
        title: 'Menu for a tea room',
        description: 'One page, two colours.',
        categoryId: categories.body.data[0]?.id,
        skills: ['illustration'],
        budget: { kind: 'fixed', amount: 5_000, currency: 'USD' },
        remote: true,
      },
      hirer.accessToken,
    );
    expect(job.status, JSON.stringify(job.body)).toBe(201);
    const bid = await post(`/v1/jobs/${job.body.id}/bids`, worker.accessToken, {
      amount: 5_000,
      deliveryDays: 2,
      coverLetter: 'Gladly.',
    });
    expect(bid.status, JSON.stringify(bid.body)).toBe(201);
    const contract = await post(`/v1/bids/${bid.body.id}/accept`, hirer.accessToken, undefined, {
      'if-match': `"${bid.body.version}"`,
    });
    expect(contract.status, JSON.stringify(contract.body)).toBe(201);
    const roomId = contract.body.roomId as string;

    // Both in the room, and a chat message: the room's actor is active and knows the room's seq.
    const hirerSocket = await socketOf(hirer);
    const workerSocket = await socketOf(worker);
    for (const socket of [hirerSocket, workerSocket]) {
      expect((await socket.request('room.join', { roomId, sinceSeq: 0 })).t).toBe('ok');
    }
    expect((await workerSocket.request('room.send', { roomId, clientMsgId: 'w1', body: 'On it.' })).t).toBe(
      'ok',
    );

    // The delivery writes its system message into the room from the contract's own transaction.
    const delivered = await post(`/v1/contracts/${contract.body.id}/deliver`, worker.accessToken, {
      message: 'Here it is',
    });
    expect(delivered.status, JSON.stringify(delivered.body)).toBe(200);
    const system = await hirerSocket.next(
      (f) =>
        f.t === 'room.message' && ((f.d as Json).meta as Json | undefined)?.system === 'contract.delivered',
      10_000,
    );
    const systemSeq = (system.d as Json).seq as number;

    const read = await hirerSocket.request('room.read', { roomId, seq: systemSeq });
    expect(read).toMatchObject({ t: 'ok', d: { seq: systemSeq } });
    const rooms = await api.get<{ data: { id: string; unread: number }[] }>('/v1/rooms', hirer.accessToken);
    expect(rooms.body.data.find((room) => room.id === roomId)).toMatchObject({ unread: 0 });
  }, 60_000);
});
