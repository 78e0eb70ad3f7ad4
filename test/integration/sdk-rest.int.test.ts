/**
 * The SDK's REST client (protocol/src/client/rest.ts) against one real node (every role: REST,
 * outbox relay, payments worker, sandbox provider). The network is the only thing faked: a wrapper
 * around the real global fetch lets the FIRST attempt of a chosen command reach the server and get
 * its answer, then throws as if the connection dropped before the answer arrived — the server did
 * the work, the client does not know it. The SDK retries with the same Idempotency-Key; the server
 * replays its first answer (`idempotent-replayed: true`), and REST reads show the bid, the
 * contract, the escrow hold and the approval happened once. The small flow (top up, post, bid,
 * accept, deliver, approve) runs through the typed methods only. The ledger audit is clean after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createRestClient,
  isRestError,
  type RestClient,
  type RetryInfo,
} from '../../protocol/src/client/index.js';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';

const ADMIN = { email: 'sdk-rest-admin@example.test', password: 'Saffron-Narwhal-58&' };
const FEE_BPS = 1000;
const AMOUNT = 5_000;

/** What went over the wire, answers as the server sent them (dropped ones included). */
interface Exchange {
  readonly method: string;
  readonly path: string;
  readonly key: string | null;
  readonly status: number;
  readonly replayed: string | null;
  readonly body: unknown;
  readonly dropped: boolean;
}

/**
 * The real fetch, except that an armed command's next attempt gets its real answer and then fails
 * like a connection reset (undici's `TypeError: fetch failed`), once per arming.
 */
function lossyNetwork() {
  const realFetch = globalThis.fetch;
  const armed = new Set<string>();
  const exchanges: Exchange[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const response = await realFetch(input, init);
    const method = init?.method ?? 'GET';
    const path = new URL(String(input)).pathname;
    const route = `${method} ${path.replace(/[0-9a-f-]{36}/g, ':id')}`;
    const text = await response.clone().text();
    const dropped = armed.delete(route);
    exchanges.push({
      method,
      path,
      key: new Headers(init?.headers).get('idempotency-key'),
      status: response.status,
      replayed: response.headers.get('idempotent-replayed'),
      body: text === '' ? null : JSON.parse(text),
      dropped,
    });
    if (dropped) {
      await response.body?.cancel();
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      });
    }
    return response;
  };
  return {
    fetch,
    /** Drops the answer of the next `POST /v1/bids/:id/accept`-style route (ids as `:id`). */
    dropNextAnswer: (route: string) => armed.add(route),
    exchangesOf: (method: string, path: string) =>
      exchanges.filter((e) => e.method === method && e.path === path),
  };
}

describe('the SDK REST client against a real node', () => {
  let testNode: TestNode;
  let api: ReturnType<typeof httpClient>;
  let adminToken: string;
  const network = lossyNetwork();
  const retries: RetryInfo[] = [];

  const clientOf = (user: Registered): RestClient =>
    createRestClient({
      baseUrl: testNode.node.baseUrl,
      accessToken: () => user.accessToken,
      fetch: network.fetch,
      retry: { baseDelayMs: 20 },
      onRetry: (info) => retries.push(info),
    });

  const until = async <T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> => {
    for (let i = 0; i < 400; i++) {
      const value = await read();
      if (done(value)) return value;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`timed out waiting for ${what}`);
  };

  /** A hirer with `funds` settled in the wallet (sandbox top-up), a worker, and a posted job. */
  async function market(funds: number) {
    const hirerUser = await registerUser(api, { roles: ['hirer'] });
    const workerUser = await registerUser(api, { roles: ['worker'] });
    const hirer = clientOf(hirerUser);
    const worker = clientOf(workerUser);
    const { payment } = await hirer.topUp({ amount: funds, card: SandboxCard.SUCCEEDS });
    expect(payment).toMatchObject({ kind: 'top_up', amount: funds });
    await until(
      () => hirer.wallet(),
      (wallet) => wallet.available === funds,
      'the top-up',
    );
    const categoryId = (await hirer.categories()).data[0]?.id as string;
    const job = await hirer.postJob({
      title: 'Logo for a bakery',
      description: 'Vector, two colours.',
      categoryId,
      skills: ['illustration'],
      budget: { kind: 'fixed', amount: AMOUNT, currency: 'USD' },
      remote: true,
    });
    expect(job).toMatchObject({ status: 'open', hirerId: hirerUser.id });
    return { hirer, worker, hirerUser, workerUser, job };
  }

  beforeAll(async () => {
    testNode = await startTestNode({
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      OUTBOX_POLL_MS: '20',
      PLATFORM_FEE_BPS: String(FEE_BPS),
      LEDGER_AUDIT_INTERVAL_S: '0',
    });
    api = httpClient(testNode.node.baseUrl);
    const login = await api.post<{ accessToken: string }>('/v1/auth/login', {
      login: ADMIN.email,
      password: ADMIN.password,
    });
    expect(login.status).toBe(200);
    adminToken = login.body.accessToken;
  });

  afterAll(async () => {
    const audit = await api?.get<{ findings: unknown[] }>('/v1/admin/ledger/audit', adminToken);
    await testNode?.stop();
    expect(audit?.body.findings).toEqual([]);
  });

  it('a bid and an accept whose first answers are lost happen once; the retry gets the first answer', async () => {
    const { hirer, worker, hirerUser, job } = await market(AMOUNT * 3);

    network.dropNextAnswer('POST /v1/jobs/:id/bids');
    const bid = await worker.placeBid(job.id, { amount: AMOUNT, deliveryDays: 3, coverLetter: 'On it.' });
    const bidExchanges = network.exchangesOf('POST', `/v1/jobs/${job.id}/bids`);
    expect(bidExchanges.map((e) => [e.status, e.dropped, e.replayed])).toEqual([
      [201, true, null],
      [201, false, 'true'],
    ]);
    expect(bidExchanges[0]?.key).toMatch(/^[0-9a-f-]{36}$/);
    expect(bidExchanges[1]?.key).toBe(bidExchanges[0]?.key);
    expect(bid).toEqual(bidExchanges[0]?.body);
    expect(retries.filter((r) => r.path === `/v1/jobs/${job.id}/bids`).map((r) => r.reason)).toEqual([
      'network',
    ]);
    const seen = await hirer.getJob(job.id);
    expect(seen.bidCount).toBe(1);
    expect(seen.bids?.map((b) => b.id)).toEqual([bid.id]);
    expect((await worker.myBids()).data.filter((b) => b.jobId === job.id)).toHaveLength(1);

    network.dropNextAnswer('POST /v1/bids/:id/accept');
    // The hirer accepts the bid at the version they were shown.
    const shown = seen.bids?.find((b) => b.id === bid.id);
    expect(shown?.version).toBe(bid.version);
    const contract = await hirer.acceptBid(bid.id, { ifMatch: shown?.version ?? -1 });
    const acceptExchanges = network.exchangesOf('POST', `/v1/bids/${bid.id}/accept`);
    expect(acceptExchanges.map((e) => [e.status, e.dropped, e.replayed])).toEqual([
      [201, true, null],
      [201, false, 'true'],
    ]);
    expect(acceptExchanges[1]?.key).toBe(acceptExchanges[0]?.key);
    expect(acceptExchanges[1]?.key).not.toBe(bidExchanges[0]?.key);
    expect(contract).toEqual(acceptExchanges[0]?.body);
    expect(contract).toMatchObject({ state: 'active', amount: AMOUNT, bidId: bid.id });

    // One contract, one escrow hold.
    expect((await hirer.myContracts()).data.map((c) => c.id)).toEqual([contract.id]);
    expect((await worker.myContracts()).data.map((c) => c.id)).toEqual([contract.id]);
    expect(await hirer.wallet()).toMatchObject({ available: AMOUNT * 2 });
    const lines = await api.get<{ data: { reason: string; amount: number }[] }>(
      '/v1/wallet/transactions',
      hirerUser.accessToken,
    );
    expect(lines.body.data.filter((line) => line.reason === 'escrow-hold')).toEqual([
      expect.objectContaining({ amount: -AMOUNT }),
    ]);

    // A repeat of the user's action with a NEW key is a new request: the bid is taken now.
    const again = await hirer.acceptBid(bid.id, { ifMatch: bid.version }).catch((error: unknown) => error);
    expect(isRestError(again) && again.status === 409).toBe(true);
    expect((await hirer.myContracts()).data).toHaveLength(1);
  });

  it('the small flow through the typed methods: post, bid, accept, deliver, approve (its answer lost once)', async () => {
    const { hirer, worker, workerUser, job } = await market(AMOUNT);
    const bid = await worker.placeBid(job.id, { amount: AMOUNT, deliveryDays: 2 });
    expect(bid).toMatchObject({ status: 'pending', workerId: workerUser.id });
    // The worker changes the bid after the hirer read it: the accept at the version seen is final 409.
    const changed = await worker.updateBid(bid.id, { deliveryDays: 4 });
    const stale = await hirer.acceptBid(bid.id, { ifMatch: bid.version }).catch((error: unknown) => error);
    expect(isRestError(stale) ? [stale.status, stale.details] : stale).toEqual([
      409,
      expect.objectContaining({ reason: 'VERSION_MISMATCH', version: changed.version }),
    ]);
    // A stale tab's edit of the bid is refused the same way, and changes nothing.
    const staleEdit = await worker
      .updateBid(bid.id, { deliveryDays: 9 }, { ifMatch: bid.version })
      .catch((error: unknown) => error);
    expect(isRestError(staleEdit) ? [staleEdit.status, staleEdit.details] : staleEdit).toEqual([
      409,
      expect.objectContaining({ reason: 'VERSION_MISMATCH', version: changed.version }),
    ]);
    const contract = await hirer.acceptBid(bid.id, { ifMatch: changed.version });
    expect(contract).toMatchObject({ deliveryDays: 4 });
    expect(await worker.getJob(job.id)).toMatchObject({ status: 'in_progress', bidCount: 1 });

    const delivered = await worker.deliver(
      contract.id,
      { message: 'Files attached.' },
      { ifMatch: contract.version },
    );
    expect(delivered).toMatchObject({ state: 'delivered', deliveries: 1 });

    network.dropNextAnswer('POST /v1/contracts/:id/approve');
    const approved = await hirer.approve(contract.id);
    expect(approved).toMatchObject({ state: 'completed' });
    const approveExchanges = network.exchangesOf('POST', `/v1/contracts/${contract.id}/approve`);
    expect(approveExchanges.map((e) => e.replayed)).toEqual([null, 'true']);
    expect(approved).toEqual(approveExchanges[0]?.body);

    const detail = await worker.getContract(contract.id);
    expect(detail.transitions.map((t) => t.event)).toEqual(['accept', 'deliver', 'approve']);
    expect(detail.transitions[1]?.message).toBe('Files attached.');
    const fee = (AMOUNT * FEE_BPS) / 10_000;
    await until(
      () => worker.wallet(),
      (wallet) => wallet.available === AMOUNT - fee,
      'the escrow release',
    );
    expect(await hirer.wallet()).toMatchObject({ available: 0 });

    // A final answer is thrown typed, with the problem's fields.
    const late = await worker.cancel(contract.id).catch((error: unknown) => error);
    expect(isRestError(late)).toBe(true);
    expect(late).toMatchObject({ code: 'INVALID_TRANSITION', status: 409, details: { state: 'completed' } });
  });
});
