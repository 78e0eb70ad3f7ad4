/**
 * The whole marketplace flow of issue 12 with two real users over REST and real WebSockets, on one
 * node running every role (REST, gateway, workers, outbox relay): the hirer tops up through the
 * sandbox provider and posts a job; the worker, watching the category, gets `job.posted` live and
 * bids; the hirer gets the bid live and accepts (a retry with the same Idempotency-Key replays);
 * escrow holds the amount; both chat in the job room and see its system messages; deliver, request
 * changes, deliver, approve; the worker's wallet gets amount − fee and the fee account the fee;
 * both review, the reviews appear only after the second, the rating summary moves once. Then the
 * timers with short settings: auto-approve completes a delivery and releases the escrow, and the
 * review window publishes a lone review. The ledger audit is clean at the end.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../../src/bin/start-node.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { captureLogs, startTestNode, type TestNode } from '../support/context.js';
import { httpClient, promoteToAdmin, type Registered, registerUser } from '../support/http.js';
import { openSocket, type TestSocket } from '../support/ws-client.js';

type Json = Record<string, unknown>;
const ADMIN = { email: 'flow-admin@example.test', password: 'Ochre-Pangolin-73%' };
const FEE_BPS = 1000;

describe('the marketplace flow over REST and WebSocket', () => {
  let testNode: TestNode;
  let node: RunningNode;
  let api: ReturnType<typeof httpClient>;
  let adminToken: string;
  let categoryId: string;
  let ledger: DbHandle;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    testNode = await startTestNode({
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      OUTBOX_POLL_MS: '20',
      PLATFORM_FEE_BPS: String(FEE_BPS),
      CONTRACT_AUTO_APPROVE_S: '2',
      REVIEW_WINDOW_S: '3',
      LEDGER_AUDIT_INTERVAL_S: '0',
    });
    ({ node } = testNode);
    api = httpClient(node.baseUrl);
    ledger = await createDb({ kind: 'postgres', url: testNode.db.url, poolMax: 2 }, captureLogs().log);
    const login = await api.post<{ accessToken: string }>('/v1/auth/login', {
      login: ADMIN.email,
      password: ADMIN.password,
    });
    expect(login.status).toBe(200);
    adminToken = login.body.accessToken;
    const list = await api.get<{ data: { id: string; slug: string }[] }>('/v1/categories', adminToken);
    categoryId = list.body.data.find((c) => c.slug === 'design')?.id as string;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    const audit = await api.get<{ findings: unknown[] }>('/v1/admin/ledger/audit', adminToken);
    await ledger?.close();
    await testNode?.stop();
    expect(audit.body.findings).toEqual([]);
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
  const post = (path: string, token: string, body?: Json, key: string = randomUUID()) =>
    api.call<Json>('POST', path, {
      token,
      headers: { 'idempotency-key': key },
      ...(body === undefined ? {} : { body }),
    });
  /** The hirer accepts `bid` at the version they saw: If-Match is required on the accept. */
  const accept = (bid: Json, token: string, key: string = randomUUID()) =>
    api.call<Json>('POST', `/v1/bids/${bid.id}/accept`, {
      token,
      headers: { 'idempotency-key': key, 'if-match': `"${bid.version}"` },
    });
  const wallet = async (user: Registered) =>
    (await api.get<{ available: number }>('/v1/wallet', user.accessToken)).body.available;
  const until = async <T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> => {
    for (let i = 0; i < 400; i++) {
      const value = await read();
      if (done(value)) return value;
      await sleep(25);
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  const market = (socket: TestSocket, type: string, match: (d: Json) => boolean = () => true) =>
    socket.next(
      (frame) => frame.t === 'market' && (frame.d as Json).type === type && match(frame.d as Json),
      10_000,
    );
  const feesPosted = async () => {
    const rows = await ledger.db
      .selectFrom('ledger_accounts')
      .select('posted')
      .where('kind', '=', 'platform_fees')
      .execute();
    return rows.reduce((sum, row) => sum + BigInt(row.posted), 0n);
  };

  async function topUp(user: Registered, amount: number) {
    const started = await post('/v1/wallet/top-ups', user.accessToken, {
      amount,
      card: SandboxCard.SUCCEEDS,
    });
    expect(started.status).toBe(202);
    await until(
      () => wallet(user),
      (available) => available >= amount,
      'the top-up',
    );
  }

  async function hire(amount: number) {
    const hirer = await registerUser(api, { roles: ['hirer'] });
    const worker = await registerUser(api, { roles: ['worker'] });
    await topUp(hirer, amount * 2);
    const job = await api.post<Json>(
      '/v1/jobs',
      {
        title: 'Poster for a jazz night',
        description: 'A3, two colours.',
        categoryId,
        skills: ['illustration'],
        budget: { kind: 'fixed', amount, currency: 'USD' },
        remote: true,
      },
      hirer.accessToken,
    );
    const bid = await post(`/v1/jobs/${job.body.id}/bids`, worker.accessToken, {
      amount,
      deliveryDays: 3,
      coverLetter: 'Happy to.',
    });
    const contract = await accept(bid.body, hirer.accessToken);
    expect(contract.status).toBe(201);
    return { hirer, worker, contract: contract.body };
  }

  it('post, watch, bid, accept, chat, deliver, request changes, deliver, approve, review', async () => {
    const hirer = await registerUser(api, { roles: ['hirer'] });
    const worker = await registerUser(api, { roles: ['worker'] });
    await topUp(hirer, 100_000);
    const workerSocket = await socketOf(worker);
    const hirerSocket = await socketOf(hirer);
    expect((await workerSocket.request('jobs.watch', { categoryId })).t).toBe('ok');

    const job = await api.post<Json>(
      '/v1/jobs',
      {
        title: 'Logo for a bakery',
        description: 'A friendly logo in two colours.',
        categoryId,
        skills: ['logo', 'illustration'],
        budget: { kind: 'fixed', amount: 50_000, currency: 'USD' },
        remote: true,
      },
      hirer.accessToken,
    );
    expect(job.status).toBe(201);
    const posted = await workerSocket.next(
      (f) => f.t === 'job.posted' && (f.d as Json).id === job.body.id,
      10_000,
    );
    expect(posted.d).toMatchObject({ title: 'Logo for a bakery', categoryId });

    const bid = await post(`/v1/jobs/${job.body.id}/bids`, worker.accessToken, {
      amount: 40_000,
      deliveryDays: 5,
      coverLetter: 'I have drawn many logos.',
    });
    expect(bid.status).toBe(201);
    await market(hirerSocket, 'bid.placed', (d) => d.bidId === bid.body.id);

    const acceptKey = randomUUID();
    const accepted = await accept(bid.body, hirer.accessToken, acceptKey);
    expect(accepted.status).toBe(201);
    const contract = accepted.body;
    expect(contract).toMatchObject({ state: 'active', amount: 40_000, version: 1, workerId: worker.id });
    // The same action retried (a lost answer): the first answer again, no second contract or hold.
    const retried = await accept(bid.body, hirer.accessToken, acceptKey);
    expect(retried.status).toBe(201);
    expect(retried.headers.get('idempotent-replayed')).toBe('true');
    expect(retried.body.id).toBe(contract.id);
    expect(await wallet(hirer)).toBe(60_000);
    // The hirer's open devices hear the escrow hold at once (a wallet push with the new balance).
    await hirerSocket.next((f) => f.t === 'wallet' && (f.d as Json).available === 60_000);
    await market(workerSocket, 'bid.accepted', (d) => d.bidId === bid.body.id);

    const roomId = contract.roomId as string;
    for (const socket of [hirerSocket, workerSocket]) {
      expect((await socket.request('room.join', { roomId, sinceSeq: 0 })).t).toBe('ok');
    }
    const hello = await workerSocket.request('room.send', {
      roomId,
      clientMsgId: 'w1',
      body: 'Starting today!',
    });
    expect(hello.t).toBe('ok');
    await hirerSocket.next((f) => f.t === 'room.message' && (f.d as Json).body === 'Starting today!');

    const act = async (path: string, user: Registered, body?: Json) => {
      const response = await post(`/v1/contracts/${contract.id}/${path}`, user.accessToken, body);
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      return response.body;
    };
    expect(await act('deliver', worker, { message: 'Draft one' })).toMatchObject({ state: 'delivered' });
    await market(hirerSocket, 'contract.deliver', (d) => d.contractId === contract.id);
    const system = await hirerSocket.next(
      (f) =>
        f.t === 'room.message' && ((f.d as Json).meta as Json | undefined)?.system === 'contract.delivered',
      10_000,
    );
    expect((system.d as Json).body).toContain('Draft one');
    expect(await act('request-changes', hirer, { message: 'Warmer colours' })).toMatchObject({
      state: 'active',
    });
    await market(workerSocket, 'contract.request_changes');
    await act('deliver', worker);
    const fees = await feesPosted();
    expect(await act('approve', hirer)).toMatchObject({ state: 'completed', version: 5 });
    await market(workerSocket, 'contract.approve');

    // Released by the payments worker: amount − fee to the worker, the fee to the platform.
    const fee = (40_000 * FEE_BPS) / 10_000;
    await until(
      () => wallet(worker),
      (available) => available === 40_000 - fee,
      'the release',
    );
    expect(await feesPosted()).toBe(fees + BigInt(fee));
    expect(await wallet(hirer)).toBe(60_000);
    // A receipt of what the release paid the worker, once the money is there.
    const receipts = await until(
      async () =>
        (await api.get<{ data: Json[] }>('/v1/notifications?limit=100', worker.accessToken)).body.data.filter(
          (n) => n.type === 'escrow.received',
        ),
      (found) => found.length > 0,
      'the escrow receipt',
    );
    expect(receipts).toHaveLength(1);
    expect(receipts[0]?.data).toMatchObject({
      contractId: contract.id,
      action: 'release',
      amount: 40_000 - fee,
    });

    const detail = await api.get<Json & { transitions: Json[] }>(
      `/v1/contracts/${contract.id}`,
      worker.accessToken,
    );
    expect(detail.body.transitions.map((t) => t.event)).toEqual([
      'accept',
      'deliver',
      'request_changes',
      'deliver',
      'approve',
    ]);

    // Double-blind reviews: the first is invisible until the second arrives.
    const first = await api.post<Json>(
      `/v1/contracts/${contract.id}/review`,
      { rating: 5, text: 'Great client' },
      worker.accessToken,
    );
    expect(first.status).toBe(201);
    const publicOf = async (user: Registered) =>
      (await api.get<{ data: Json[] }>(`/v1/users/${user.id}/reviews`, hirer.accessToken)).body.data;
    expect(await publicOf(hirer)).toEqual([]);
    const second = await api.post<Json>(
      `/v1/contracts/${contract.id}/review`,
      { rating: 4, text: 'Nice logo' },
      hirer.accessToken,
    );
    expect(second.status).toBe(201);
    expect((await publicOf(hirer)).map((review) => review.rating)).toEqual([5]);
    expect((await publicOf(worker)).map((review) => review.rating)).toEqual([4]);
    await market(workerSocket, 'review.published');
    const profile = await api.get<{ rating: { count: number; average: number } }>(
      `/v1/users/${worker.id}`,
      hirer.accessToken,
    );
    expect(profile.body.rating).toMatchObject({ count: 1, average: 4 });
    const again = await api.post<Json>(
      `/v1/contracts/${contract.id}/review`,
      { rating: 1, text: 'x' },
      hirer.accessToken,
    );
    expect(again.status).toBe(409);
    expect(
      (await api.get<{ rating: { count: number } }>(`/v1/users/${worker.id}`, hirer.accessToken)).body.rating
        .count,
    ).toBe(1);
  });

  it('auto-approve completes a delivery the hirer ignores and releases the escrow; approve first makes it a no-op', async () => {
    const { hirer, worker, contract } = await hire(20_000);
    const delivered = await post(`/v1/contracts/${contract.id}/deliver`, worker.accessToken);
    expect(delivered.body).toMatchObject({ state: 'delivered' });
    const done = await until(
      async () => (await api.get<Json>(`/v1/contracts/${contract.id}`, hirer.accessToken)).body,
      (body) => body.state === 'completed',
      'the auto-approve timer',
    );
    expect((done.transitions as Json[]).at(-1)).toMatchObject({ event: 'auto_approve', actor: 'timer' });
    await until(
      () => wallet(worker),
      (available) => available === 18_000,
      'the release after auto-approve',
    );

    const other = await hire(10_000);
    await post(`/v1/contracts/${other.contract.id}/deliver`, other.worker.accessToken);
    const approved = await post(`/v1/contracts/${other.contract.id}/approve`, other.hirer.accessToken);
    expect(approved.body).toMatchObject({ state: 'completed', version: 3 });
    await until(
      () => wallet(other.worker),
      (available) => available === 9_000,
      'the release after approve',
    );
    await sleep(2_500); // past the timer: it must find nothing to do
    const after = await api.get<Json>(`/v1/contracts/${other.contract.id}`, other.hirer.accessToken);
    expect(after.body).toMatchObject({ state: 'completed', version: 3 });
    expect((after.body.transitions as Json[]).map((t) => t.event)).toEqual(['accept', 'deliver', 'approve']);
    expect(await wallet(other.worker)).toBe(9_000);
  });

  it('the review window publishes a lone review when it closes', async () => {
    const { hirer, worker, contract } = await hire(5_000);
    await post(`/v1/contracts/${contract.id}/deliver`, worker.accessToken);
    await post(`/v1/contracts/${contract.id}/approve`, hirer.accessToken);
    // Sent with an Idempotency-Key: the retry of a lost answer replays it; without a key, 409.
    const reviewKey = randomUUID();
    const lone = await post(
      `/v1/contracts/${contract.id}/review`,
      worker.accessToken,
      { rating: 3, text: 'OK' },
      reviewKey,
    );
    expect(lone.status).toBe(201);
    const replay = await post(
      `/v1/contracts/${contract.id}/review`,
      worker.accessToken,
      { rating: 3, text: 'OK' },
      reviewKey,
    );
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.id).toBe(lone.body.id);
    const twice = await api.post<Json>(
      `/v1/contracts/${contract.id}/review`,
      { rating: 3, text: 'OK' },
      worker.accessToken,
    );
    expect(twice.status).toBe(409);
    expect(twice.body).toMatchObject({ reason: 'REVIEW_EXISTS' });
    const published = await until(
      async () =>
        (await api.get<{ data: Json[] }>(`/v1/users/${hirer.id}/reviews`, worker.accessToken)).body.data,
      (data) => data.length === 1,
      'the review window',
    );
    expect(published[0]).toMatchObject({ rating: 3 });
    const late = await api.post<Json>(
      `/v1/contracts/${contract.id}/review`,
      { rating: 5 },
      hirer.accessToken,
    );
    expect(late.status).toBe(409);
  });

  it('hostile contract input is a 400 problem and changes nothing; raced transitions apply once', async () => {
    const { hirer, worker, contract } = await hire(10_000);
    const path = `/v1/contracts/${contract.id}/deliver`;
    const raw = (body: string, headers: Record<string, string> = {}) =>
      fetch(`${node.baseUrl}${path}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${worker.accessToken}`,
          'content-type': 'application/json',
          'idempotency-key': randomUUID(),
          ...headers,
        },
        body,
      });
    const hostile: { body: string; headers?: Record<string, string> }[] = [
      { body: JSON.stringify({ message: 'x'.repeat(2_001) }) },
      { body: JSON.stringify({ message: 42 }) },
      { body: JSON.stringify({ message: 'ok', extra: true }) },
      { body: '{"message":"\\ud800 lone surrogate"}' },
      { body: `${'{"message":'.repeat(200)}"deep"${'}'.repeat(200)}` },
      { body: '{"message":' },
      { body: '{}', headers: { 'if-match': 'not-a-version' } },
      { body: '{}', headers: { 'if-match': '"99999999999"' } },
    ];
    for (const attempt of hostile) {
      const response = await raw(attempt.body, attempt.headers);
      expect(response.status, attempt.body.slice(0, 60)).toBe(400);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
    }
    const split = (body: Json) => post(`/v1/admin/contracts/${contract.id}/resolve`, adminToken, body);
    for (const body of [
      { toWorker: -1, toHirer: 10_001 },
      { toWorker: 1.5, toHirer: 9_998.5 },
      { toWorker: '10000', toHirer: 0 },
      { toWorker: 2 ** 60, toHirer: 0 },
    ]) {
      expect((await split(body)).status).toBe(400);
    }
    const unchanged = await api.get<Json>(`/v1/contracts/${contract.id}`, hirer.accessToken);
    expect(unchanged.body).toMatchObject({ state: 'active', version: 1 });

    // Both parties race: deliver (worker) and cancel (hirer) at once, each twice with other keys.
    const raced = await Promise.all([
      post(path, worker.accessToken),
      post(path, worker.accessToken),
      post(`/v1/contracts/${contract.id}/cancel`, hirer.accessToken),
      post(`/v1/contracts/${contract.id}/cancel`, hirer.accessToken),
    ]);
    expect(raced.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of raced.filter((r) => r.status !== 200)) expect(r.body.code).toBe('INVALID_TRANSITION');
    const after = await api.get<Json & { transitions: Json[] }>(
      `/v1/contracts/${contract.id}`,
      hirer.accessToken,
    );
    expect(after.body.version).toBe(2);
    expect(after.body.transitions).toHaveLength(2);
  });

  it('replays a retried transition whatever way it says "no message"; another message with the key is 422', async () => {
    const { worker, contract } = await hire(10_000);
    const path = `${node.baseUrl}/v1/contracts/${contract.id}/deliver`;
    const key = randomUUID();
    const deliver = (body: string | undefined) =>
      fetch(path, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${worker.accessToken}`,
          'idempotency-key': key,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body }),
      });
    const first = await deliver(undefined);
    expect(first.status).toBe(200);
    for (const body of ['null', '{}', '{"message":""}', '{"message":"   "}']) {
      const retried = await deliver(body);
      expect(retried.status, body).toBe(200);
      expect(retried.headers.get('idempotent-replayed'), body).toBe('true');
    }
    const other = await deliver('{"message":"a different request"}');
    expect(other.status).toBe(422);
    expect(((await other.json()) as Json).code).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('cancel refunds, dispute + resolve split exactly', async () => {
    const a = await hire(30_000);
    const before = await wallet(a.hirer);
    // The job room is left only once the contract has ended (it would hold a party at the room limit).
    const leaveJobRoom = () =>
      api.call<Json>('DELETE', `/v1/rooms/${a.contract.roomId}/members/${a.worker.id}`, {
        token: a.worker.accessToken,
      });
    const early = await leaveJobRoom();
    expect(early.status).toBe(409);
    expect(early.body).toMatchObject({ reason: 'CONTRACT_RUNNING' });
    expect((await post(`/v1/contracts/${a.contract.id}/cancel`, a.hirer.accessToken)).body).toMatchObject({
      state: 'cancelled',
    });
    await until(
      () => wallet(a.hirer),
      (available) => available === before + 30_000,
      'the refund',
    );
    expect((await leaveJobRoom()).status).toBe(204);
    expect((await api.get(`/v1/rooms/${a.contract.roomId}/messages`, a.worker.accessToken)).status).toBe(403);

    const b = await hire(30_000);
    await post(`/v1/contracts/${b.contract.id}/deliver`, b.worker.accessToken);
    expect((await post(`/v1/contracts/${b.contract.id}/dispute`, b.worker.accessToken)).body).toMatchObject({
      state: 'disputed',
    });
    const hirerBefore = await wallet(b.hirer);
    const wrong = await post(`/v1/admin/contracts/${b.contract.id}/resolve`, adminToken, {
      toWorker: 1,
      toHirer: 1,
    });
    expect(wrong.status).toBe(400);
    const byParty = await post(`/v1/admin/contracts/${b.contract.id}/resolve`, b.hirer.accessToken, {
      toWorker: 10_000,
      toHirer: 20_000,
    });
    expect(byParty.status).toBe(403);
    const resolved = await post(`/v1/admin/contracts/${b.contract.id}/resolve`, adminToken, {
      toWorker: 10_000,
      toHirer: 20_000,
    });
    expect(resolved.body).toMatchObject({ state: 'resolved' });
    await until(
      () => wallet(b.worker),
      (available) => available === 9_000,
      'the split to the worker',
    );
    await until(
      () => wallet(b.hirer),
      (available) => available === hirerBefore + 20_000,
      'the split to the hirer',
    );
  });

  it('hires no locked worker and takes no bid on a locked hirer’s job', async () => {
    const hirer = await registerUser(api, { roles: ['hirer'] });
    const worker = await registerUser(api, { roles: ['worker'] });
    await topUp(hirer, 5_000);
    const newJob = () =>
      api.post<Json>(
        '/v1/jobs',
        {
          title: 'Flyer',
          description: 'One page.',
          categoryId,
          skills: ['illustration'],
          budget: { kind: 'fixed', amount: 900, currency: 'USD' },
          remote: true,
        },
        hirer.accessToken,
      );
    const job = await newJob();
    const bid = await post(`/v1/jobs/${job.body.id}/bids`, worker.accessToken, {
      amount: 900,
      deliveryDays: 3,
      coverLetter: 'Happy to.',
    });
    expect(bid.status).toBe(201);
    expect((await post(`/v1/admin/users/${worker.id}/lock`, adminToken)).status).toBe(204);
    // The lock withdrew the worker's pending bid; accepting it is refused and nothing is held.
    const withdrawn = await api.get<Json>(`/v1/bids/${bid.body.id}`, hirer.accessToken);
    expect(withdrawn.body.status).toBe('withdrawn');
    const refused = await accept(withdrawn.body, hirer.accessToken);
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ reason: 'INVALID_TRANSITION', state: 'withdrawn' });
    expect(await wallet(hirer)).toBe(5_000);
    expect((await api.get<Json>(`/v1/jobs/${job.body.id}`, hirer.accessToken)).body.status).toBe('open');

    // The mirror: locking the hirer closes their open jobs (pending bids rejected) and they take no bids.
    const other = await registerUser(api, { roles: ['worker'] });
    const second = await newJob();
    const early = await post(`/v1/jobs/${second.body.id}/bids`, other.accessToken, {
      amount: 900,
      deliveryDays: 3,
      coverLetter: 'First.',
    });
    expect(early.status).toBe(201);
    expect((await post(`/v1/admin/users/${hirer.id}/lock`, adminToken)).status).toBe(204);
    // Gone with the hirer's profile for the bidder (no contract on it); an admin sees it closed.
    expect((await api.get<Json>(`/v1/jobs/${second.body.id}`, other.accessToken)).status).toBe(404);
    expect((await api.get<Json>(`/v1/jobs/${second.body.id}`, adminToken)).body.status).toBe('closed');
    expect((await api.get<Json>(`/v1/bids/${early.body.id}`, other.accessToken)).body.status).toBe(
      'rejected',
    );
    const late = await post(`/v1/jobs/${second.body.id}/bids`, other.accessToken, {
      amount: 900,
      deliveryDays: 3,
      coverLetter: 'Me too.',
    });
    expect(late.status).toBe(404);
  });

  it('a locked hirer’s jobs leave the search and are 404 by id, except for admins and the hired worker', async () => {
    const { hirer, worker, contract } = await hire(1_200);
    const hiredJob = contract.jobId as string;
    const rival = await registerUser(api, { roles: ['worker'] });
    const stranger = await registerUser(api, { roles: ['hirer'] });
    const openJob = await api.post<Json>(
      '/v1/jobs',
      {
        title: 'Menu card',
        description: 'Two pages.',
        categoryId,
        skills: ['illustration'],
        budget: { kind: 'fixed', amount: 800, currency: 'USD' },
        remote: true,
      },
      hirer.accessToken,
    );
    expect(openJob.status).toBe(201);
    const rivalBid = await post(`/v1/jobs/${openJob.body.id}/bids`, rival.accessToken, {
      amount: 800,
      deliveryDays: 2,
      coverLetter: 'Me.',
    });
    expect(rivalBid.status).toBe(201);
    const search = (token: string) =>
      api.get<{ data: Json[] }>(`/v1/jobs?hirerId=${hirer.id}&status=open,closed,in_progress`, token);
    const jobIds = async (token: string) => (await search(token)).body.data.map((job) => job.id).sort();
    expect(await jobIds(stranger.accessToken)).toEqual([hiredJob, openJob.body.id].sort());

    expect((await post(`/v1/admin/users/${hirer.id}/lock`, adminToken)).status).toBe(204);

    // Search: nobody finds them any more (the locked hirer's open job was closed by the lock).
    for (const token of [stranger.accessToken, rival.accessToken, worker.accessToken, adminToken]) {
      const found = await search(token);
      expect(found.status).toBe(200);
      expect(found.body.data).toEqual([]);
    }
    expect(
      (
        await api.get<{ data: Json[] }>(
          '/v1/jobs?status=open,closed,in_progress&limit=100',
          stranger.accessToken,
        )
      ).body.data.filter((job) => job.hirerId === hirer.id),
    ).toEqual([]);
    // By id: as unknown to a stranger and a rival bidder, alike for the hired and the closed job.
    const unknown = await api.get<Json>(`/v1/jobs/${randomUUID()}`, stranger.accessToken);
    for (const jobId of [hiredJob, openJob.body.id as string]) {
      for (const token of [stranger.accessToken, rival.accessToken]) {
        const hidden = await api.get<Json>(`/v1/jobs/${jobId}`, token);
        expect(hidden.status).toBe(404);
        expect(hidden.body).toMatchObject({ code: 'NOT_FOUND', detail: unknown.body.detail });
      }
    }
    // The hired worker keeps the job their contract is about (and the contract); admins see both jobs.
    const seenByWorker = await api.get<Json>(`/v1/jobs/${hiredJob}`, worker.accessToken);
    expect(seenByWorker.status).toBe(200);
    expect(seenByWorker.body).toMatchObject({
      id: hiredJob,
      status: 'in_progress',
      description: 'A3, two colours.',
    });
    expect((await api.get<Json>(`/v1/contracts/${contract.id}`, worker.accessToken)).status).toBe(200);
    expect((await api.get<Json>(`/v1/jobs/${openJob.body.id}`, worker.accessToken)).status).toBe(404);
    expect((await api.get<Json>(`/v1/jobs/${hiredJob}`, adminToken)).body.status).toBe('in_progress');
    expect((await api.get<Json>(`/v1/jobs/${openJob.body.id}`, adminToken)).body.status).toBe('closed');
  });

  it('a locked hirer’s job bids and changes answer as the job does: 404 as unknown, except for admins and the hired worker', async () => {
    const { hirer, worker, contract } = await hire(1_300);
    const hiredJob = contract.jobId as string;
    const rival = await registerUser(api, { roles: ['worker'] });
    const stranger = await registerUser(api, { roles: ['hirer', 'worker'] });
    const openJob = await api.post<Json>(
      '/v1/jobs',
      {
        title: 'Label for a jar',
        description: 'One colour.',
        categoryId,
        skills: ['illustration'],
        budget: { kind: 'fixed', amount: 700, currency: 'USD' },
        remote: true,
      },
      hirer.accessToken,
    );
    expect(openJob.status).toBe(201);
    const rivalBid = await post(`/v1/jobs/${openJob.body.id}/bids`, rival.accessToken, {
      amount: 700,
      deliveryDays: 2,
      coverLetter: 'Me.',
    });
    expect(rivalBid.status).toBe(201);
    expect((await post(`/v1/admin/users/${hirer.id}/lock`, adminToken)).status).toBe(204);

    const unknown = await api.get<Json>(`/v1/jobs/${randomUUID()}/bids`, stranger.accessToken);
    expect(unknown.status).toBe(404);
    const answer = (response: { status: number; body: Json }) => ({
      status: response.status,
      ...(response.status === 200 ? {} : { code: response.body.code, detail: response.body.detail }),
    });
    const callers = { stranger, rival, worker, admin: { accessToken: adminToken } };
    for (const jobId of [hiredJob, openJob.body.id as string]) {
      for (const [who, { accessToken }] of Object.entries(callers)) {
        const job = await api.get<Json>(`/v1/jobs/${jobId}`, accessToken);
        const bids = await api.get<{ data: Json[] }>(`/v1/jobs/${jobId}/bids`, accessToken);
        expect(answer(bids), `${who} on ${jobId === hiredJob ? 'the hired' : 'the closed'} job`).toEqual(
          answer(job),
        );
        if (bids.status === 404) {
          // Word for word an unknown job's answer: nothing tells the two apart.
          expect(answer(bids)).toEqual(answer(unknown));
        }
      }
    }
    // Changing it answers the same to those it is hidden from: 404 as unknown, not 403 (which would
    // tell them it exists); an unknown id's change is the reference.
    const unknownId = randomUUID();
    const unknownChanges = [
      answer(
        await api.call<Json>('PATCH', `/v1/jobs/${unknownId}`, {
          token: stranger.accessToken,
          body: { title: 'Mine now' },
        }),
      ),
      answer(await post(`/v1/jobs/${unknownId}/close`, stranger.accessToken)),
    ];
    expect(unknownChanges.map((change) => change.status)).toEqual([404, 404]);
    for (const jobId of [hiredJob, openJob.body.id as string]) {
      for (const token of [stranger.accessToken, rival.accessToken]) {
        const changes = [
          answer(await api.call<Json>('PATCH', `/v1/jobs/${jobId}`, { token, body: { title: 'Mine now' } })),
          answer(await post(`/v1/jobs/${jobId}/close`, token)),
        ];
        expect(changes).toEqual(unknownChanges);
      }
    }
    // Hidden from the rival bidder and strangers on both jobs; the hired worker keeps their bid on
    // the job of their contract; admins see every bid.
    for (const token of [stranger.accessToken, rival.accessToken]) {
      for (const jobId of [hiredJob, openJob.body.id as string]) {
        expect((await api.get<Json>(`/v1/jobs/${jobId}/bids`, token)).status).toBe(404);
      }
    }
    const workerBids = await api.get<{ data: Json[] }>(`/v1/jobs/${hiredJob}/bids`, worker.accessToken);
    expect(workerBids.body.data.map((bid) => bid.id)).toEqual([contract.bidId]);
    const adminBids = await api.get<{ data: Json[] }>(`/v1/jobs/${openJob.body.id}/bids`, adminToken);
    expect(adminBids.body.data.map((bid) => bid.id)).toEqual([rivalBid.body.id]);
  });

  it('a bid raised after the hirer saw it is never escrowed: If-Match is required, a stale one is 409', async () => {
    const hirer = await registerUser(api, { roles: ['hirer'] });
    const worker = await registerUser(api, { roles: ['worker'] });
    await topUp(hirer, 50_000);
    const job = await api.post<Json>(
      '/v1/jobs',
      {
        title: 'Business cards',
        description: 'Two sides.',
        categoryId,
        skills: ['illustration'],
        budget: { kind: 'fixed', amount: 1_000, currency: 'USD' },
        remote: true,
      },
      hirer.accessToken,
    );
    const placed = await post(`/v1/jobs/${job.body.id}/bids`, worker.accessToken, {
      amount: 1_000,
      deliveryDays: 2,
      coverLetter: 'Quick job.',
    });
    expect(placed.status).toBe(201);
    // The hirer views the job: the bid, 1 000 at version 0.
    const viewed = await api.get<{ bids: Json[] }>(`/v1/jobs/${job.body.id}`, hirer.accessToken);
    const seen = viewed.body.bids.find((b) => b.id === placed.body.id) as Json;
    expect(seen).toMatchObject({ amount: 1_000, version: 0, status: 'pending' });
    // The worker raises the bid to 50 000 (the hirer's whole balance).
    const raised = await api.call<Json>('PATCH', `/v1/bids/${placed.body.id}`, {
      token: worker.accessToken,
      body: { amount: 50_000 },
    });
    expect(raised.status).toBe(200);
    expect(raised.body).toMatchObject({ amount: 50_000, version: 1 });
    const nothingHeld = async () => {
      expect(await wallet(hirer)).toBe(50_000);
      const bid = await api.get<Json>(`/v1/bids/${placed.body.id}`, hirer.accessToken);
      expect(bid.body).toMatchObject({ status: 'pending', amount: 50_000 });
      expect((await api.get<Json>(`/v1/jobs/${job.body.id}`, hirer.accessToken)).body.status).toBe('open');
      expect((await api.get<{ data: Json[] }>('/v1/me/contracts', hirer.accessToken)).body.data).toEqual([]);
    };

    // Accept without If-Match (an old client): 400 naming the header, nothing held.
    const bare = await post(`/v1/bids/${placed.body.id}/accept`, hirer.accessToken);
    expect(bare.status).toBe(400);
    expect(bare.headers.get('content-type')).toContain('application/problem+json');
    expect(bare.body).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ path: 'headers.if-match', message: expect.stringContaining('version of the bid') }],
    });
    await nothingHeld();

    // Accept at the version the hirer saw: 409 VERSION_MISMATCH naming the bid's version, nothing held.
    const stale = await accept(seen, hirer.accessToken);
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ code: 'CONFLICT', reason: 'VERSION_MISMATCH', version: 1 });
    await nothingHeld();

    // The hirer reads the bid again and accepts the new terms knowingly: 201, 50 000 held.
    const current = await accept(raised.body, hirer.accessToken);
    expect(current.status).toBe(201);
    expect(current.body).toMatchObject({ amount: 50_000, bidId: placed.body.id, state: 'active' });
    expect(await wallet(hirer)).toBe(0);
  });

  it('accepts a bid only at the version the hirer saw (If-Match), and an admin who is a party cannot resolve', async () => {
    const hirer = await registerUser(api, { roles: ['hirer'] });
    const worker = await registerUser(api, { roles: ['worker'] });
    await topUp(hirer, 100_000);
    const job = await api.post<Json>(
      '/v1/jobs',
      {
        title: 'Menu design',
        description: 'One page.',
        categoryId,
        skills: ['illustration'],
        budget: { kind: 'fixed', amount: 20_000, currency: 'USD' },
        remote: true,
      },
      hirer.accessToken,
    );
    const bid = await post(`/v1/jobs/${job.body.id}/bids`, worker.accessToken, {
      amount: 20_000,
      deliveryDays: 3,
      coverLetter: 'Sure.',
    });
    const seen = bid.body.version as number;
    // The worker raises the amount after the hirer read the bid.
    const raised = await api.call<Json>('PATCH', `/v1/bids/${bid.body.id}`, {
      token: worker.accessToken,
      body: { amount: 90_000 },
    });
    expect(raised.status).toBe(200);
    const raisedVersion = raised.body.version as number;
    expect(raisedVersion).toBeGreaterThan(seen);
    // A malformed If-Match is a 400, never ignored (which would accept whatever the bid holds now).
    for (const ifMatch of ['abc', '"-1"', '"1.5"', `"${'9'.repeat(400)}"`, '"é"']) {
      const bad = await api.call<Json>('POST', `/v1/bids/${bid.body.id}/accept`, {
        token: hirer.accessToken,
        headers: { 'idempotency-key': randomUUID(), 'if-match': ifMatch },
      });
      expect(bad.status, ifMatch).toBe(400);
    }
    const stale = await api.call<Json>('POST', `/v1/bids/${bid.body.id}/accept`, {
      token: hirer.accessToken,
      headers: { 'idempotency-key': randomUUID(), 'if-match': `"${seen}"` },
    });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({
      code: 'CONFLICT',
      reason: 'VERSION_MISMATCH',
      version: raisedVersion,
    });
    expect(await wallet(hirer)).toBe(100_000); // nothing held in escrow
    const current = await api.call<Json>('POST', `/v1/bids/${bid.body.id}/accept`, {
      token: hirer.accessToken,
      headers: { 'idempotency-key': randomUUID(), 'if-match': `"${raisedVersion}"` },
    });
    expect(current.status).toBe(201);
    const contractId = current.body.id as string;

    // The hirer is made an admin too: on their own contract they act as its hirer, not as referee.
    await post(`/v1/contracts/${contractId}/deliver`, worker.accessToken);
    await post(`/v1/contracts/${contractId}/dispute`, worker.accessToken);
    const hirerAsAdmin = await promoteToAdmin(api, ledger.db, hirer, ['hirer']);
    const selfResolve = await post(`/v1/admin/contracts/${contractId}/resolve`, hirerAsAdmin, {
      toWorker: 0,
      toHirer: 90_000,
    });
    expect(selfResolve.status).toBe(403);
    const resolved = await post(`/v1/admin/contracts/${contractId}/resolve`, adminToken, {
      toWorker: 90_000,
      toHirer: 0,
    });
    expect(resolved.body).toMatchObject({ state: 'resolved' });
  });
});
