/**
 * REST review 17 (jobs, bids, rooms, errors), one test per hole, against a real node in this process:
 * - closing a job or withdrawing a bid, retried after a lost answer, was told 409 INVALID_TRANSITION
 *   (the state its own first request made): both now take an optional Idempotency-Key, and a retry
 *   with it replays the first answer (`idempotent-replayed: true`); the same key on another request
 *   is 422, and without a key a second close is still 409;
 * - `If-Match: *` (RFC 9110: any current representation) was a 400: it now matches whenever the
 *   resource exists, on jobs, bids and contract transitions; the bid accept, which requires the
 *   version the hirer saw, still refuses it (400 naming `headers.if-match`);
 * - a body in a media type no route reads (form data, XML) was 400 VALIDATION_FAILED: it is 415
 *   UNSUPPORTED_MEDIA_TYPE, problem+json, and declared in the OpenAPI document; so is a compressed
 *   body (Content-Encoding: gzip), which was refused as JSON that is "not valid UTF-8";
 * - GET /v1/rooms/:id/messages answered `limit` messages whatever their size: 100 of the largest
 *   legal messages were several MB in one answer. Pages are cut at 256 KiB of JSON messages as the
 *   WebSocket's `room.history` is, and `nextBeforeSeq` pages on to every message once;
 * - GET /v1/rooms carries each room's last message: 500 rooms with a large one each were ~18 MB in
 *   one answer, which anyone a user added as a contact could arrange. Pages are cut at 1 MiB;
 * - leaving a room (DELETE your own membership) retried after its 204 was lost answered 403: it is
 *   204 again, alike for unknown and foreign rooms.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_CHARS, MAX_META_CHARS } from '../../protocol/src/frames.js';
import { HISTORY_PAGE_MAX_BYTES, ROOM_LIST_PAGE_MAX_BYTES } from '../../protocol/src/rest/rooms.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { addContact, httpClient, type Registered, registerUser } from '../support/http.js';
import { openSocket } from '../support/ws-client.js';

type Json = Record<string, unknown>;
type Doc = { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };

describe('REST review 17', () => {
  let testNode: TestNode;
  let api: ReturnType<typeof httpClient>;
  let hirer: Registered;
  let worker: Registered;
  let categoryId: string;
  let currency: string;

  beforeAll(async () => {
    testNode = await startTestNode({ WS_MAX_MESSAGES_PER_SECOND: '1000', WS_MAX_BURST: '1000' });
    api = httpClient(testNode.node.baseUrl);
    hirer = await registerUser(api, { roles: ['hirer'] });
    worker = await registerUser(api, { roles: ['worker'] });
    const list = await api.get<{ data: { id: string }[] }>('/v1/categories', hirer.accessToken);
    categoryId = list.body.data[0]?.id as string;
    const wallet = await api.get<{ currency: string }>('/v1/wallet', hirer.accessToken);
    currency = wallet.status === 200 ? wallet.body.currency : 'USD';
  }, 60_000);
  afterAll(async () => testNode.stop());

  const postJob = async () => {
    const created = await api.post<Json>(
      '/v1/jobs',
      {
        title: 'Tune a Postgres query',
        description: 'A report takes a minute.',
        categoryId,
        skills: ['postgres'],
        budget: { kind: 'fixed', amount: 30_000, currency },
        remote: true,
      },
      hirer.accessToken,
    );
    expect(created.status).toBe(201);
    return created.body as { id: string; version: number };
  };

  const placeBid = async (jobId: string) => {
    const placed = await api.call<Json>('POST', `/v1/jobs/${jobId}/bids`, {
      token: worker.accessToken,
      headers: { 'idempotency-key': randomUUID() },
      body: { amount: 25_000, deliveryDays: 5, coverLetter: 'Done this before.' },
    });
    expect(placed.status).toBe(201);
    return placed.body as { id: string; version: number };
  };

  const post = (path: string, token: string, headers: Record<string, string> = {}) =>
    api.call<Json>('POST', path, { token, headers });

  it('replays a retried close of a job with its Idempotency-Key instead of 409', async () => {
    const job = await postJob();
    const key = randomUUID();
    const first = await post(`/v1/jobs/${job.id}/close`, hirer.accessToken, { 'idempotency-key': key });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ id: job.id, status: 'closed' });
    // The answer was lost: the client sends the same request again.
    const retry = await post(`/v1/jobs/${job.id}/close`, hirer.accessToken, { 'idempotency-key': key });
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toEqual(first.body);
    // The same key on another job is another request.
    const other = await postJob();
    const reused = await post(`/v1/jobs/${other.id}/close`, hirer.accessToken, { 'idempotency-key': key });
    expect(reused.status).toBe(422);
    expect(reused.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    // Without a key, closing a closed job is still the invalid transition it is.
    const again = await post(`/v1/jobs/${job.id}/close`, hirer.accessToken);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('INVALID_TRANSITION');
    // An empty key is refused, as on every route that takes one.
    const empty = await post(`/v1/jobs/${other.id}/close`, hirer.accessToken, { 'idempotency-key': '' });
    expect(empty.status).toBe(400);
  });

  it('replays a retried withdrawal of a bid with its Idempotency-Key instead of 409', async () => {
    const job = await postJob();
    const bid = await placeBid(job.id);
    const key = randomUUID();
    const first = await post(`/v1/bids/${bid.id}/withdraw`, worker.accessToken, { 'idempotency-key': key });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ id: bid.id, status: 'withdrawn' });
    const retry = await post(`/v1/bids/${bid.id}/withdraw`, worker.accessToken, { 'idempotency-key': key });
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toEqual(first.body);
    const again = await post(`/v1/bids/${bid.id}/withdraw`, worker.accessToken);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('INVALID_TRANSITION');
  });

  it('documents the optional Idempotency-Key of close and withdraw, and 415 on operations with a body', async () => {
    const doc = (await api.get<Doc & { paths: Record<string, Record<string, Json>> }>('/openapi.json')).body;
    for (const [path, operationId] of [
      ['/v1/jobs/{id}/close', 'closeJob'],
      ['/v1/bids/{id}/withdraw', 'withdrawBid'],
    ] as const) {
      const operation = doc.paths[path]?.post as {
        operationId: string;
        parameters: { in: string; name: string; required?: boolean }[];
        responses: Record<string, unknown>;
      };
      expect(operation.operationId).toBe(operationId);
      const key = operation.parameters.find((p) => p.in === 'header' && p.name === 'idempotency-key');
      expect(key, operationId).toBeDefined();
      expect(key?.required ?? false, operationId).toBe(false);
      expect(operation.responses, operationId).toHaveProperty('422');
    }
    expect(doc.paths['/v1/jobs']?.post?.responses).toHaveProperty('415');
  });

  it('matches If-Match: * whenever the job or bid exists, and refuses it on the accept', async () => {
    const job = await postJob();
    const patched = await api.call<Json>('PATCH', `/v1/jobs/${job.id}`, {
      token: hirer.accessToken,
      headers: { 'if-match': '*' },
      body: { title: 'Tune two Postgres queries' },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.title).toBe('Tune two Postgres queries');

    const bid = await placeBid(job.id);
    const edited = await api.call<Json>('PATCH', `/v1/bids/${bid.id}`, {
      token: worker.accessToken,
      headers: { 'if-match': '*' },
      body: { deliveryDays: 6 },
    });
    expect(edited.status).toBe(200);

    // The accept must name the version the hirer saw: `*` would hold any amount.
    const accept = await post(`/v1/bids/${bid.id}/accept`, hirer.accessToken, {
      'if-match': '*',
      'idempotency-key': randomUUID(),
    });
    expect(accept.status).toBe(400);
    expect(accept.body).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ path: 'headers.if-match' }],
    });

    const withdrawn = await post(`/v1/bids/${bid.id}/withdraw`, worker.accessToken, { 'if-match': '*' });
    expect(withdrawn.status).toBe(200);
    const closed = await post(`/v1/jobs/${job.id}/close`, hirer.accessToken, { 'if-match': ' * ' });
    expect(closed.status).toBe(200);
    // A resource that does not exist is still 404, and garbage still 400.
    expect(
      (await post(`/v1/jobs/${randomUUID()}/close`, hirer.accessToken, { 'if-match': '*' })).status,
    ).toBe(404);
    expect((await post(`/v1/jobs/${job.id}/close`, hirer.accessToken, { 'if-match': 'abc' })).status).toBe(
      400,
    );
  });

  it('answers a body in a media type no route reads with 415 UNSUPPORTED_MEDIA_TYPE, problem+json', async () => {
    for (const [type, body] of [
      ['application/x-www-form-urlencoded', 'title=x&description=y'],
      ['application/xml', '<job><title>x</title></job>'],
    ] as const) {
      const response = await fetch(`${testNode.node.baseUrl}/v1/jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${hirer.accessToken}`, 'content-type': type },
        body,
      });
      expect(response.status, type).toBe(415);
      expect(response.headers.get('content-type'), type).toContain('application/problem+json');
      expect(await response.json(), type).toMatchObject({
        status: 415,
        code: 'UNSUPPORTED_MEDIA_TYPE',
        title: 'Unsupported media type',
      });
    }
  });

  it('answers a compressed request body with 415 naming the codings it reads, not a JSON error', async () => {
    const { gzipSync } = await import('node:zlib');
    const response = await fetch(`${testNode.node.baseUrl}/v1/me`, {
      method: 'PATCH',
      headers: {
        authorization: `Bearer ${hirer.accessToken}`,
        'content-type': 'application/json',
        'content-encoding': 'gzip',
      },
      body: gzipSync(JSON.stringify({ bio: 'compressed' })),
    });
    expect(response.status).toBe(415);
    expect(response.headers.get('accept-encoding')).toBe('identity');
    expect(await response.json()).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', contentEncoding: 'gzip' });
    // Nothing changed; the same body uncompressed is applied.
    const plain = await api.call<Json>('PATCH', '/v1/me', {
      token: hirer.accessToken,
      body: { bio: 'plain' },
    });
    expect(plain.status).toBe(200);
    expect(plain.body.bio).toBe('plain');
    const identity = await api.call<Json>('PATCH', '/v1/me', {
      token: hirer.accessToken,
      headers: { 'content-encoding': 'identity' },
      body: { bio: 'identity' },
    });
    expect(identity.status).toBe(200);
  });

  it('answers a retried leave of a room (its 204 lost) with 204, alike for unknown and foreign rooms', async () => {
    const [a, b, c] = [await registerUser(api), await registerUser(api), await registerUser(api)];
    await addContact(api, b, a);
    const group = await api.post<{ id: string }>(
      '/v1/rooms',
      { kind: 'group', memberIds: [b.id] },
      a.accessToken,
    );
    expect(group.status).toBe(201);
    const leave = (roomId: string, who: Registered) =>
      api.call('DELETE', `/v1/rooms/${roomId}/members/${who.id}`, { token: who.accessToken });
    expect((await leave(group.body.id, b)).status).toBe(204);
    // The answer was lost; the client (or its HTTP library: DELETE is idempotent) sends it again.
    expect((await leave(group.body.id, b)).status).toBe(204);
    expect((await api.get(`/v1/rooms/${group.body.id}/messages`, b.accessToken)).status).toBe(403);
    // Nothing told apart: a room c never was in and a room that does not exist answer alike.
    expect((await leave(group.body.id, c)).status).toBe(204);
    expect((await leave(randomUUID(), c)).status).toBe(204);
    // Removing someone else still needs membership.
    const removeOther = await api.call('DELETE', `/v1/rooms/${group.body.id}/members/${a.id}`, {
      token: c.accessToken,
    });
    expect(removeOther.status).toBe(403);
    expect((await api.get(`/v1/rooms/${group.body.id}`, a.accessToken)).status).toBe(200);
  });

  it('cuts a history page of large messages at 256 KiB and pages on to every message once', async () => {
    const [a, b] = [await registerUser(api), await registerUser(api)];
    await addContact(api, b, a);
    const room = await api.post<{ id: string }>(
      '/v1/rooms',
      { kind: 'direct', memberIds: [b.id] },
      a.accessToken,
    );
    expect(room.status).toBe(201);
    const wsUrl = `${testNode.node.baseUrl.replace(/^http/, 'ws')}/ws`;
    const socket = await openSocket(wsUrl, a.accessToken, 'json');
    const COUNT = 40;
    // The largest legal message as JSON sees it: every body char escaped (\u0001), meta at its limit.
    const body = '\u0001'.repeat(MAX_BODY_CHARS);
    const meta = { x: '中'.repeat(MAX_META_CHARS - '{"x":""}'.length) };
    try {
      await socket.next((f) => f.t === 'hello');
      await socket.request('room.join', { roomId: room.body.id });
      for (let i = 0; i < COUNT; i += 1) {
        const sent = await socket.request('room.send', {
          roomId: room.body.id,
          clientMsgId: `big-${i}`,
          body,
          meta,
        });
        expect(sent.t).toBe('ok');
      }
    } finally {
      socket.close();
    }

    const seqs: number[] = [];
    let pages = 0;
    for (let beforeSeq: number | null | undefined; beforeSeq !== null; pages += 1) {
      const response = await fetch(
        `${testNode.node.baseUrl}/v1/rooms/${room.body.id}/messages?limit=100${beforeSeq === undefined ? '' : `&beforeSeq=${beforeSeq}`}`,
        { headers: { authorization: `Bearer ${b.accessToken}`, 'accept-encoding': 'identity' } },
      );
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(Buffer.byteLength(text)).toBeLessThan(HISTORY_PAGE_MAX_BYTES + 4096);
      const page = JSON.parse(text) as { data: { seq: number }[]; nextBeforeSeq: number | null };
      expect(page.data.length).toBeGreaterThan(0);
      seqs.push(...page.data.map((m) => m.seq));
      beforeSeq = page.nextBeforeSeq;
      if (beforeSeq !== null) expect(beforeSeq).toBe(page.data.at(-1)?.seq);
      expect(pages).toBeLessThan(COUNT);
    }
    expect(pages).toBeGreaterThan(1);
    expect(seqs).toEqual(Array.from({ length: COUNT }, (_, i) => COUNT - i));
    // A page that holds everything says so.
    const all = await api.get<{ data: unknown[]; nextBeforeSeq: number | null }>(
      `/v1/rooms/${room.body.id}/messages?beforeSeq=3`,
      b.accessToken,
    );
    expect(all.body).toMatchObject({ nextBeforeSeq: null });
    expect(all.body.data).toHaveLength(2);
  });

  it('cuts a room list page of large last messages at 1 MiB and pages on to every room once', async () => {
    const [attacker, victim] = [await registerUser(api), await registerUser(api)];
    // The victim added the attacker once; the attacker opens many groups and posts one large message in each.
    await addContact(api, victim, attacker);
    const ROOMS = 40;
    const roomIds: string[] = [];
    for (let i = 0; i < ROOMS; i += 1) {
      const group = await api.post<{ id: string }>(
        '/v1/rooms',
        { kind: 'group', memberIds: [victim.id], title: `g${i}` },
        attacker.accessToken,
      );
      expect(group.status).toBe(201);
      roomIds.push(group.body.id);
    }
    const socket = await openSocket(
      `${testNode.node.baseUrl.replace(/^http/, 'ws')}/ws`,
      attacker.accessToken,
      'json',
    );
    try {
      await socket.next((f) => f.t === 'hello');
      for (const roomId of roomIds) {
        await socket.request('room.join', { roomId });
        const sent = await socket.request('room.send', {
          roomId,
          clientMsgId: `big-${roomId}`,
          body: '\u0001'.repeat(MAX_BODY_CHARS),
          meta: { x: '中'.repeat(MAX_META_CHARS - '{"x":""}'.length) },
        });
        expect(sent.t).toBe('ok');
      }
    } finally {
      socket.close();
    }

    const listed: string[] = [];
    let pages = 0;
    for (let cursor: string | null | undefined; cursor !== null; pages += 1) {
      const response = await fetch(
        `${testNode.node.baseUrl}/v1/rooms${cursor === undefined ? '' : `?cursor=${encodeURIComponent(cursor)}`}`,
        { headers: { authorization: `Bearer ${victim.accessToken}`, 'accept-encoding': 'identity' } },
      );
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(Buffer.byteLength(text)).toBeLessThan(ROOM_LIST_PAGE_MAX_BYTES + 4096);
      const page = JSON.parse(text) as { data: { id: string }[]; nextCursor: string | null };
      expect(page.data.length).toBeGreaterThan(0);
      listed.push(...page.data.map((room) => room.id));
      cursor = page.nextCursor;
      expect(pages).toBeLessThan(ROOMS);
    }
    expect(pages).toBeGreaterThan(1);
    expect(listed).toEqual([...roomIds].reverse());
  });
});
