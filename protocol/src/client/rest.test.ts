/**
 * The REST client's retry and key decisions against a scripted fake fetch, with an injected sleep
 * (nothing waits for real): one Idempotency-Key per action and the same one on every retry, what is
 * retried and what is final, Retry-After, timeouts and aborts, the typed errors.
 * test/integration/sdk-rest.int.test.ts runs the same client against a real node.
 */
import { describe, expect, it, vi } from 'vitest';
import { isGigwireError } from './errors.js';
import { createRestClient, isRestError, type RestClientOptions, RestError, type RetryInfo } from './rest.js';

const BASE = 'http://api.test';
const JOB = '11111111-1111-4111-8111-111111111111';
const BID = '22222222-2222-4222-8222-222222222222';
const CONTRACT = '33333333-3333-4333-8333-333333333333';
const HIRER = '44444444-4444-4444-8444-444444444444';
const WORKER = '55555555-5555-4555-8555-555555555555';
const CATEGORY = '66666666-6666-4666-8666-666666666666';
const AT = '2026-12-04T14:00:00.000Z';

const bid = {
  id: BID,
  jobId: JOB,
  workerId: WORKER,
  amount: 5000,
  deliveryDays: 3,
  coverLetter: 'Happy to.',
  status: 'pending',
  version: 1,
  createdAt: AT,
  updatedAt: AT,
  decidedAt: null,
};

const contract = {
  id: CONTRACT,
  jobId: JOB,
  bidId: BID,
  hirerId: HIRER,
  workerId: WORKER,
  title: 'Poster',
  amount: 5000,
  currency: 'USD',
  deliveryDays: 3,
  state: 'active',
  version: 1,
  deliveries: 0,
  roomId: null,
  dueAt: AT,
  deliveredAt: null,
  autoApproveAt: null,
  completedAt: null,
  cancelledAt: null,
  disputedAt: null,
  resolvedAt: null,
  reviewDeadlineAt: null,
  createdAt: AT,
  updatedAt: AT,
};

const job = {
  id: JOB,
  hirerId: HIRER,
  categoryId: CATEGORY,
  title: 'Poster',
  description: 'A3',
  skills: [],
  budget: { kind: 'fixed', amount: 5000, currency: 'USD' },
  location: null,
  remote: true,
  deadline: null,
  status: 'open',
  version: 1,
  createdAt: AT,
  updatedAt: AT,
  closedAt: null,
};

const problem = (status: number, code: string, extra: Record<string, unknown> = {}) => ({
  type: `urn:gigwire:problem:${code}`,
  title: code,
  status,
  code,
  detail: `${code} happened`,
  instance: '/v1/x',
  requestId: 'req-1',
  ...extra,
});

type Step = Response | Error | ((init: RequestInit) => Promise<Response>);

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });

const dropped = () => new TypeError('fetch failed');

interface Sent {
  readonly url: string;
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body: string | undefined;
}

/** A fetch answering each request with the next step of the script; records what was sent. */
function fakeFetch(steps: Step[]) {
  const sent: Sent[] = [];
  const fetch = vi.fn(async (input: string | URL | Request, init: RequestInit = {}) => {
    sent.push({
      url: String(input),
      method: init.method ?? 'GET',
      headers: { ...(init.headers as Record<string, string>) },
      body: typeof init.body === 'string' ? init.body : undefined,
    });
    const step = steps.shift();
    if (step === undefined) throw new Error('the script ran out');
    if (step instanceof Error) throw step;
    if (typeof step === 'function') return step(init);
    return step;
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, sent };
}

function setup(steps: Step[], options: Partial<RestClientOptions> = {}) {
  const { fetch, sent } = fakeFetch(steps);
  const sleeps: number[] = [];
  const retries: RetryInfo[] = [];
  let keys = 0;
  const client = createRestClient({
    baseUrl: `${BASE}/`,
    accessToken: () => 'token-1',
    fetch,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 0.5,
    newIdempotencyKey: () => `key-${++keys}`,
    onRetry: (info) => retries.push(info),
    ...options,
  });
  return { client, sent, sleeps, retries };
}

const keyOf = (request: Sent | undefined) => request?.headers['idempotency-key'];

async function rejection(promise: Promise<unknown>): Promise<RestError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isRestError(error)) throw new Error(`expected a RestError, got ${String(error)}`);
  return error;
}

describe('Idempotency-Key: one per action, the same on each retry', () => {
  it('retries a dropped and an unavailable attempt with the key of the first, and returns the answer', async () => {
    const { client, sent, sleeps, retries } = setup([
      dropped(),
      json(503, problem(503, 'UNAVAILABLE')),
      json(201, bid, { 'idempotent-replayed': 'true' }),
    ]);
    const placed = await client.placeBid(JOB, { amount: 5000, deliveryDays: 3, coverLetter: 'Happy to.' });
    expect(placed).toEqual(bid);
    expect(sent.map(keyOf)).toEqual(['key-1', 'key-1', 'key-1']);
    expect(new Set(sent.map((r) => r.body)).size).toBe(1);
    expect(sent[0]).toMatchObject({
      url: `${BASE}/v1/jobs/${JOB}/bids`,
      method: 'POST',
      headers: { authorization: 'Bearer token-1', 'content-type': 'application/json' },
    });
    expect(retries.map((r) => [r.reason, r.attempt, r.idempotencyKey])).toEqual([
      ['network', 1, 'key-1'],
      ['unavailable', 2, 'key-1'],
    ]);
    // Full jitter over 250 then 500 ms with random() = 0.5.
    expect(sleeps).toEqual([125, 250]);
  });

  it('draws a new key for the next action, and a UUID by default', async () => {
    const { client, sent } = setup([json(201, contract), json(201, contract)], {
      newIdempotencyKey: undefined,
    });
    await client.acceptBid(BID, { ifMatch: 0 });
    await client.acceptBid(BID, { ifMatch: 0 });
    const [first, second] = sent.map(keyOf);
    expect(first).toMatch(/^[0-9a-f-]{36}$/);
    expect(second).toMatch(/^[0-9a-f-]{36}$/);
    expect(first).not.toBe(second);
  });

  it("uses the caller's key, and keys every keyed command", async () => {
    const payment = {
      payment: {
        id: CONTRACT,
        kind: 'top_up',
        status: 'pending',
        amount: 100,
        currency: 'USD',
        createdAt: AT,
      },
    };
    const transfer = { transaction: { id: '7', toUserId: WORKER, amount: 100, note: null } };
    const { client, sent } = setup([
      json(201, contract),
      json(200, contract),
      json(200, contract),
      json(200, contract),
      json(200, contract),
      json(200, contract),
      json(202, payment),
      json(202, payment),
      json(201, transfer),
    ]);
    await client.acceptBid(BID, { ifMatch: 3, idempotencyKey: 'mine' });
    await client.deliver(CONTRACT, { message: 'done' }, { ifMatch: 1 });
    await client.requestChanges(CONTRACT);
    await client.approve(CONTRACT);
    await client.cancel(CONTRACT);
    await client.dispute(CONTRACT);
    await client.topUp({ amount: 100, card: '4242424242424242' });
    await client.withdraw({ amount: 100, bankAccount: 'DE89370400440532013000' });
    await client.transfer({ toUserId: WORKER, amount: 100 });
    expect(sent.map(keyOf)).toEqual(['mine', ...[2, 3, 4, 5, 6, 7, 8, 9].map((n) => `key-${n - 1}`)]);
    expect(sent[1]).toMatchObject({
      url: `${BASE}/v1/contracts/${CONTRACT}/deliver`,
      headers: { 'if-match': '"1"' },
      body: '{"message":"done"}',
    });
    expect(sent.slice(2, 6).map((r) => r.url.split('/').pop())).toEqual([
      'request-changes',
      'approve',
      'cancel',
      'dispute',
    ]);
    // The accept names the bid version the hirer saw (escrow holds only what they were shown).
    expect(sent[0]).toMatchObject({
      url: `${BASE}/v1/bids/${BID}/accept`,
      method: 'POST',
      headers: { 'if-match': '"3"', 'idempotency-key': 'mine' },
    });
    expect(sent[0]?.body).toBeUndefined();
  });

  it('retries a 409 "still in flight" with the same key', async () => {
    const { client, sent, retries } = setup([
      json(409, problem(409, 'CONFLICT', { idempotencyKey: 'key-1' })),
      json(201, contract),
    ]);
    await client.acceptBid(BID, { ifMatch: 0 });
    expect(sent.map(keyOf)).toEqual(['key-1', 'key-1']);
    expect(retries.map((r) => r.reason)).toEqual(['in-flight']);
  });

  it('an accept of a bid changed since it was read is 409 VERSION_MISMATCH, final (not retried)', async () => {
    const { client, sent } = setup([
      json(409, problem(409, 'CONFLICT', { reason: 'VERSION_MISMATCH', version: 1 })),
    ]);
    const error = await rejection(client.acceptBid(BID, { ifMatch: 0 }));
    expect(error).toMatchObject({
      code: 'CONFLICT',
      status: 409,
      details: { reason: 'VERSION_MISMATCH', version: 1 },
    });
    expect(sent).toHaveLength(1);
    expect(sent[0]?.headers['if-match']).toBe('"0"');
  });

  it('gives up after `attempts` and throws the last failure with the key to repeat the action with', async () => {
    const { client, sent, sleeps } = setup([dropped(), dropped(), dropped()], {
      retry: { attempts: 3, baseDelayMs: 100 },
    });
    const error = await rejection(client.approve(CONTRACT));
    expect(error).toMatchObject({
      code: 'DISCONNECTED',
      status: undefined,
      attempts: 3,
      idempotencyKey: 'key-1',
    });
    expect(sent).toHaveLength(3);
    expect(sleeps).toEqual([50, 100]);
  });
});

describe('final answers', () => {
  it.each([
    [400, 'VALIDATION_FAILED', { errors: [{ path: 'body.amount', message: 'too small' }] }],
    [403, 'FORBIDDEN', {}],
    [404, 'NOT_FOUND', {}],
    [409, 'INVALID_TRANSITION', { state: 'completed', event: 'approve' }],
    [409, 'INSUFFICIENT_FUNDS', { shortfall: 120, currency: 'USD' }],
    [422, 'IDEMPOTENCY_KEY_REUSED', {}],
    [500, 'INTERNAL', {}],
  ])('%i %s is thrown at once with the problem', async (status, code, extra) => {
    const { client, sent, sleeps } = setup([json(status, problem(status, code, extra))]);
    const error = await rejection(client.approve(CONTRACT));
    expect(sent).toHaveLength(1);
    expect(sleeps).toEqual([]);
    expect(isGigwireError(error)).toBe(true);
    expect(error).toMatchObject({
      code,
      status,
      message: `${code} happened`,
      requestId: 'req-1',
      idempotencyKey: 'key-1',
      attempts: 1,
      method: 'POST',
      path: `/v1/contracts/${CONTRACT}/approve`,
      details: extra,
    });
    expect(error.problem).toMatchObject({ code, status, instance: '/v1/x' });
  });

  it('a 409 CONFLICT that is not about the key in flight is final', async () => {
    const { client, sent } = setup([json(409, problem(409, 'CONFLICT', { reason: 'VERSION_MISMATCH' }))]);
    const error = await rejection(client.deliver(CONTRACT, {}, { ifMatch: 4 }));
    expect(error.details).toEqual({ reason: 'VERSION_MISMATCH' });
    expect(sent).toHaveLength(1);
  });

  it('an answer that does not match its schema is BAD_REPLY, not retried', async () => {
    const { client, sent } = setup([json(201, { id: 'nope' })]);
    const error = await rejection(client.placeBid(JOB, { amount: 1, deliveryDays: 1 }));
    expect(error.code).toBe('BAD_REPLY');
    expect(sent).toHaveLength(1);
  });

  it('a code newer than this SDK falls back to the status; an HTML 502 is UNAVAILABLE and retried', async () => {
    const { client } = setup([json(409, problem(409, 'SOMETHING_NEW'))]);
    expect((await rejection(client.approve(CONTRACT))).code).toBe('CONFLICT');
    const proxied = setup([new Response('<html>bad gateway</html>', { status: 502 }), json(201, contract)]);
    await proxied.client.acceptBid(BID, { ifMatch: 0 });
    expect(proxied.retries.map((r) => r.reason)).toEqual(['unavailable']);
  });
});

describe('Retry-After', () => {
  it('waits the seconds of a 429, plus at most one base delay of jitter, then repeats with the same key', async () => {
    const { client, sent, sleeps, retries } = setup(
      [json(429, problem(429, 'RATE_LIMITED', { retryAfterS: 3 }), { 'retry-after': '3' }), json(201, bid)],
      { random: () => 0 },
    );
    await client.placeBid(JOB, { amount: 1, deliveryDays: 1 });
    expect(sleeps).toEqual([3000]);
    expect(retries[0]).toMatchObject({ reason: 'rate-limited', delayMs: 3000 });
    expect(sent.map(keyOf)).toEqual(['key-1', 'key-1']);
  });

  it("reads an HTTP date, and the problem's retryAfterS without a header", async () => {
    const now = Date.parse('2026-12-04T14:00:00Z');
    const { client, sleeps } = setup(
      [
        json(503, problem(503, 'UNAVAILABLE'), { 'retry-after': 'Fri, 04 Dec 2026 14:00:07 GMT' }),
        json(429, problem(429, 'RATE_LIMITED', { retryAfterS: 2 })),
        json(201, contract),
      ],
      { random: () => 0, now: () => now },
    );
    await client.acceptBid(BID, { ifMatch: 0 });
    expect(sleeps).toEqual([7000, 2000]);
  });

  it('throws instead of waiting longer than maxRetryAfterMs', async () => {
    const { client, sleeps, sent } = setup(
      [json(429, problem(429, 'RATE_LIMITED'), { 'retry-after': '120' })],
      { retry: { maxRetryAfterMs: 60_000 } },
    );
    const error = await rejection(client.acceptBid(BID, { ifMatch: 0 }));
    expect(error).toMatchObject({ code: 'RATE_LIMITED', status: 429 });
    expect(sleeps).toEqual([]);
    expect(sent).toHaveLength(1);
  });
});

describe('reads and commands without a key', () => {
  it('a GET is retried on network errors, without a key', async () => {
    const { client, sent } = setup([dropped(), json(200, { ...job, bidCount: 1 })]);
    expect((await client.getJob(JOB)).bidCount).toBe(1);
    expect(sent.map(keyOf)).toEqual([undefined, undefined]);
  });

  it('a GET is retried on 500/502/503/504 with jittered backoff and on 429 after its Retry-After (review 21)', async () => {
    const { client, sent, sleeps, retries } = setup(
      [
        json(503, problem(503, 'UNAVAILABLE')),
        new Response('<html>bad gateway</html>', { status: 502 }),
        json(429, problem(429, 'RATE_LIMITED', { retryAfterS: 2 }), { 'retry-after': '2' }),
        json(500, problem(500, 'INTERNAL')),
        json(200, { ...job, bidCount: 1 }),
      ],
      { random: () => 0.5 },
    );
    expect((await client.getJob(JOB)).bidCount).toBe(1);
    expect(sent.map((r) => [r.method, keyOf(r)])).toEqual(Array(5).fill(['GET', undefined]));
    expect(retries.map((r) => r.reason)).toEqual([
      'unavailable',
      'unavailable',
      'rate-limited',
      'server-error',
    ]);
    // Full jitter over 250, 500 and 2000 ms; the 429 waits its 2 s plus half a base delay.
    expect(sleeps).toEqual([125, 250, 2125, 1000]);
  });

  it('a GET gives up after retry.attempts, and at once on a Retry-After beyond maxRetryAfterMs or a 4xx; commands keep their rules (review 21)', async () => {
    const unavailable = () => json(503, problem(503, 'UNAVAILABLE'), { 'retry-after': '1' });
    const bounded = setup([unavailable(), unavailable(), unavailable()], { retry: { attempts: 3 } });
    const error = await rejection(bounded.client.wallet());
    expect(error).toMatchObject({ code: 'UNAVAILABLE', status: 503, attempts: 3 });
    expect(bounded.sent).toHaveLength(3);
    const tooLong = setup([json(429, problem(429, 'RATE_LIMITED'), { 'retry-after': '120' })]);
    expect(await rejection(tooLong.client.getJob(JOB))).toMatchObject({ code: 'RATE_LIMITED', attempts: 1 });
    expect(tooLong.sleeps).toEqual([]);
    for (const status of [404, 501]) {
      const final = setup([json(status, problem(status, status === 404 ? 'NOT_FOUND' : 'INTERNAL'))]);
      await rejection(final.client.getJob(JOB));
      expect(final.sent).toHaveLength(1);
    }
    // Commands keep their rules: one without a key is not repeated on a 5xx, a keyed one not on 500.
    const once = setup([json(503, problem(503, 'UNAVAILABLE'))]);
    expect(await rejection(once.client.updateBid(BID, { amount: 10 }))).toMatchObject({
      status: 503,
      attempts: 1,
    });
    const keyed = setup([json(500, problem(500, 'INTERNAL'))]);
    expect(await rejection(keyed.client.approve(CONTRACT))).toMatchObject({ status: 500, attempts: 1 });
  });

  it('a command the server does not make idempotent is never repeated after a lost answer', async () => {
    const { client, sent } = setup([dropped()]);
    const error = await rejection(client.updateJob(JOB, { title: 'Renamed' }));
    expect(error).toMatchObject({ code: 'DISCONNECTED', attempts: 1, idempotencyKey: undefined });
    expect(sent).toHaveLength(1);
    expect(keyOf(sent[0])).toBeUndefined();
  });

  it('postJob is keyed: a lost answer is repeated with the same key (the server replays it)', async () => {
    const { client, sent } = setup([dropped(), json(201, job)]);
    const posted = await client.postJob({
      title: 'Poster',
      description: 'A3',
      categoryId: CATEGORY,
      budget: { kind: 'fixed', amount: 5000, currency: 'USD' },
    });
    expect(posted.id).toBe(JOB);
    expect(sent.map(keyOf)).toEqual(['key-1', 'key-1']);
  });

  it('…but is repeated after a 429, which refused it before anything happened', async () => {
    const { client, sent } = setup([
      json(429, problem(429, 'RATE_LIMITED'), { 'retry-after': '1' }),
      json(200, bid),
    ]);
    await client.updateBid(BID, { amount: 4000 });
    expect(sent).toHaveLength(2);
    expect(sent.map(keyOf)).toEqual([undefined, undefined]);
  });

  it('closeJob and withdrawBid are keyed: a lost answer is repeated with the same key (the server replays it)', async () => {
    const closed = setup([dropped(), json(200, job)]);
    expect((await closed.client.closeJob(JOB, { ifMatch: 3 })).id).toBe(JOB);
    expect(closed.sent.map(keyOf)).toEqual(['key-1', 'key-1']);
    const withdrawn = setup([dropped(), json(200, bid)]);
    await withdrawn.client.withdrawBid(BID);
    expect(withdrawn.sent.map(keyOf)).toEqual(['key-1', 'key-1']);
  });

  it('serializes filters: lists comma-separated, booleans and numbers as text', async () => {
    const { client, sent } = setup([
      json(200, { data: [job], nextCursor: null }),
      json(200, { data: [], nextCursor: null }),
    ]);
    await client.searchJobs({
      q: 'poster',
      skills: ['react', 'node'],
      remote: true,
      budgetMin: 10,
      status: ['open'],
    });
    await client.myContracts({ state: ['active', 'delivered'], limit: 5 });
    const first = new URL(sent[0]?.url ?? '');
    expect(Object.fromEntries(first.searchParams)).toEqual({
      q: 'poster',
      skills: 'react,node',
      remote: 'true',
      budgetMin: '10',
      status: 'open',
    });
    expect(sent[1]?.url).toBe(`${BASE}/v1/me/contracts?state=active%2Cdelivered&limit=5`);
  });
});

describe('tokens, timeouts and aborts', () => {
  it('asks for the token before every attempt', async () => {
    let n = 0;
    const { client, sent } = setup([dropped(), json(201, contract)], { accessToken: async () => `t${++n}` });
    await client.acceptBid(BID, { ifMatch: 0 });
    expect(sent.map((r) => r.headers.authorization)).toEqual(['Bearer t1', 'Bearer t2']);
  });

  it('a failing token source is TOKEN_UNAVAILABLE, nothing sent', async () => {
    const { client, sent } = setup([], { accessToken: () => '' });
    expect((await rejection(client.acceptBid(BID, { ifMatch: 0 }))).code).toBe('TOKEN_UNAVAILABLE');
    expect(sent).toHaveLength(0);
  });

  it('an attempt without an answer within timeoutMs is a TIMEOUT, retried with the same key', async () => {
    vi.useFakeTimers();
    try {
      const hang = (init: RequestInit) =>
        new Promise<Response>((_resolve, reject) => {
          init.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
        });
      const { client, sent, retries } = setup([hang, json(201, contract)], { timeoutMs: 1_000 });
      const accepted = client.acceptBid(BID, { ifMatch: 0 });
      await vi.advanceTimersByTimeAsync(1_000);
      await expect(accepted).resolves.toMatchObject({ id: CONTRACT });
      expect(retries.map((r) => r.reason)).toEqual(['timeout']);
      expect(sent.map(keyOf)).toEqual(['key-1', 'key-1']);
    } finally {
      vi.useRealTimers();
    }
  });

  it("the caller's abort ends the call with its reason, without a retry", async () => {
    const controller = new AbortController();
    const reason = new Error('user left the page');
    const { client, sent } = setup([
      () => {
        controller.abort(reason);
        return Promise.reject(new DOMException('aborted', 'AbortError'));
      },
    ]);
    await expect(client.acceptBid(BID, { ifMatch: 0, signal: controller.signal })).rejects.toBe(reason);
    expect(sent).toHaveLength(1);
  });

  it('an abort while accessToken() is pending sends nothing', async () => {
    const controller = new AbortController();
    const reason = new Error('user cancelled');
    let giveToken: (token: string) => void = () => undefined;
    const { client, sent } = setup([json(201, contract)], {
      accessToken: () => new Promise<string>((resolve) => (giveToken = resolve)),
    });
    const accepted = client.acceptBid(BID, { ifMatch: 0, signal: controller.signal });
    await Promise.resolve();
    controller.abort(reason);
    giveToken('token-1');
    await expect(accepted).rejects.toBe(reason);
    expect(sent).toHaveLength(0);
  });
});

it('gives up on an accessToken() that does not answer within timeoutMs: TOKEN_UNAVAILABLE, nothing sent (review 21)', async () => {
  vi.useFakeTimers();
  try {
    const { client, sent } = setup([json(201, contract)], {
      // A refresh over a dead network that never settles.
      accessToken: () => new Promise<string>(() => undefined),
      timeoutMs: 1_000,
    });
    const accepted = client.acceptBid(BID, { ifMatch: 0 }).then(
      () => 'resolved',
      (error: unknown) => error,
    );
    await vi.advanceTimersByTimeAsync(1_000);
    const settled = await Promise.race([accepted, Promise.resolve('pending')]);
    expect(settled).toMatchObject({ code: 'TOKEN_UNAVAILABLE', attempts: 1 });
    expect(sent).toHaveLength(0);
  } finally {
    vi.useRealTimers();
  }
});

it('RestError is a GigwireError', () => {
  const error = new RestError('NOT_FOUND', 'x', {
    method: 'GET',
    path: '/',
    attempts: 1,
    idempotencyKey: undefined,
  });
  expect(isGigwireError(error)).toBe(true);
  expect(error.code).toBe('NOT_FOUND');
});
