/**
 * The wallet over REST on one node (role all): balance and history of a new user, money in through
 * the sandbox provider's real flow (card → worker → signed webhook → ledger), transfers racing out
 * of one wallet, Idempotency-Key, who may see and move what, the admin audit, and the
 * `ledger:audit` command against the same database.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { commandArguments } from '../support/spawn.js';
import { openSocket } from '../support/ws-client.js';

const ADMIN = { email: 'wallet-admin@example.test', password: 'Admin-Password-123!' };

let node: TestNode;
let api: ReturnType<typeof httpClient>;
let adminToken: string;

interface WalletBody {
  currency: string;
  available: number;
  pending: number;
  posted: number;
}

const transfer = (token: string, key: string, body: unknown) =>
  api.call<Record<string, unknown>>('POST', '/v1/wallet/transfers', {
    token,
    body,
    headers: { 'idempotency-key': key },
  });

async function fund(user: Registered, amount: number): Promise<void> {
  const before = (await api.get<WalletBody>('/v1/wallet', user.accessToken)).body.available;
  const response = await api.call('POST', '/v1/wallet/top-ups', {
    token: user.accessToken,
    body: { amount, card: SandboxCard.SUCCEEDS },
    headers: { 'idempotency-key': randomUUID() },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(202);
  // Settled by the sandbox's signed webhook through the payments queue.
  for (let attempt = 0; attempt < 200; attempt++) {
    const wallet = await api.get<WalletBody>('/v1/wallet', user.accessToken);
    if (wallet.body.available === before + amount) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('top-up never settled');
}

beforeAll(async () => {
  node = await startTestNode({
    OUTBOX_POLL_MS: '20',
    // The races below send 100 transfers from one user at once; the limit has its own test.
    TRANSFERS_PER_MINUTE: '100000',
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
  });
  api = httpClient(node.node.baseUrl);
  const login = await api.post<{ accessToken: string }>('/v1/auth/login', {
    login: ADMIN.email,
    password: ADMIN.password,
  });
  adminToken = login.body.accessToken;
}, 60_000);

afterAll(async () => {
  await node?.stop();
});

describe('wallet over REST', () => {
  it('shows a new user a zero balance and an empty history, never 404', async () => {
    const user = await registerUser(api);
    const wallet = await api.get<WalletBody>('/v1/wallet', user.accessToken);
    expect(wallet.status).toBe(200);
    expect(wallet.body).toEqual({ currency: 'USD', available: 0, pending: 0, posted: 0, parked: 0 });
    const history = await api.get('/v1/wallet/transactions', user.accessToken);
    expect(history.body).toEqual({ data: [], nextCursor: null });
    expect((await api.get('/v1/wallet')).status).toBe(401);
  });

  it('lets 100 concurrent transfers out of a wallet holding enough for k succeed exactly k times', async () => {
    const payer = await registerUser(api);
    const payee = await registerUser(api);
    const k = 37;
    await fund(payer, k * 10);
    const results = await Promise.all(
      Array.from({ length: 100 }, () =>
        transfer(payer.accessToken, randomUUID(), { toUserId: payee.id, amount: 10 }),
      ),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(k);
    expect(statuses.filter((s) => s === 409)).toHaveLength(100 - k);
    const refused = results.find((r) => r.status === 409)?.body as { code?: string; shortfall?: number };
    expect(refused.code).toBe('INSUFFICIENT_FUNDS');
    expect((await api.get<WalletBody>('/v1/wallet', payer.accessToken)).body.available).toBe(0);
    expect((await api.get<WalletBody>('/v1/wallet', payee.accessToken)).body.available).toBe(k * 10);
    // Each side's history shows the transfers with the other party.
    const lines = await api.get<{ data: { reason: string; counterpartyId: string; amount: number }[] }>(
      '/v1/wallet/transactions?limit=100',
      payee.accessToken,
    );
    expect(lines.body.data).toHaveLength(k);
    expect(
      lines.body.data.every((line) => line.reason === 'transfer' && line.counterpartyId === payer.id),
    ).toBe(true);
  });

  it('applies one Idempotency-Key once: 20 concurrent retries, identical answers; another body is 422', async () => {
    const payer = await registerUser(api);
    const payee = await registerUser(api);
    await fund(payer, 1_000);
    const key = randomUUID();
    const body = { toUserId: payee.id, amount: 7, note: 'lunch' };
    const results = await Promise.all(
      Array.from({ length: 20 }, () => transfer(payer.accessToken, key, body)),
    );
    for (const result of results) {
      expect([201, 409]).toContain(result.status);
    }
    const created = results.filter((r) => r.status === 201);
    expect(created.length).toBeGreaterThan(0);
    expect(new Set(created.map((r) => JSON.stringify(r.body))).size).toBe(1);
    // Any 409 here is "in flight", never a second effect; a later retry gets the stored answer.
    const later = await transfer(payer.accessToken, key, body);
    expect(later.status).toBe(201);
    expect(later.body).toEqual(created[0]?.body);
    expect(later.headers.get('idempotent-replayed')).toBe('true');
    expect((await api.get<WalletBody>('/v1/wallet', payee.accessToken)).body.available).toBe(7);
    expect((await transfer(payer.accessToken, key, { ...body, amount: 8 })).status).toBe(422);
    const missing = await api.post('/v1/wallet/transfers', body, payer.accessToken);
    expect(missing.status).toBe(400);

    // Days later the key's record is pruned; the ledger still binds the key to that transfer.
    const db = new pg.Client({ connectionString: node.db.url });
    await db.connect();
    try {
      await db.query('delete from idempotency_keys where user_id = $1 and key = $2', [payer.id, key]);
    } finally {
      await db.end();
    }
    const again = await transfer(payer.accessToken, key, body);
    expect(again.status).toBe(201);
    const transactionId = (answer: { body: Record<string, unknown> } | undefined) =>
      (answer?.body.transaction as { id?: string } | undefined)?.id;
    expect(transactionId(again)).toBeDefined();
    expect(transactionId(again)).toBe(transactionId(created[0]));
    expect((await api.get<WalletBody>('/v1/wallet', payee.accessToken)).body.available).toBe(7);
    expect((await transfer(payer.accessToken, key, { ...body, amount: 9 })).status).toBe(422);
  });

  it('refuses transfers to yourself (400), to unknown users (404) and answers problem+json', async () => {
    const payer = await registerUser(api);
    await fund(payer, 100);
    const self = await transfer(payer.accessToken, randomUUID(), { toUserId: payer.id, amount: 1 });
    expect(self.status).toBe(400);
    const unknown = await transfer(payer.accessToken, randomUUID(), { toUserId: randomUUID(), amount: 1 });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toContain('application/problem+json');
    for (const amount of [0, -5, 1.5, Number.MAX_SAFE_INTEGER + 2]) {
      const bad = await transfer(payer.accessToken, randomUUID(), { toUserId: randomUUID(), amount });
      expect(bad.status, String(amount)).toBe(400);
    }
    expect((await api.get<WalletBody>('/v1/wallet', payer.accessToken)).body.available).toBe(100);
  });

  it('caps a balance at 2^53 - 1: a transfer or top-up past it is 409 BALANCE_LIMIT and every wallet still reads', async () => {
    const max = Number.MAX_SAFE_INTEGER;
    const rich = await registerUser(api);
    const victim = await registerUser(api);
    await fund(rich, max);
    await fund(victim, 10);
    // Anyone could otherwise break anyone's wallet page by sending them more than JSON can count.
    const over = await transfer(rich.accessToken, randomUUID(), { toUserId: victim.id, amount: max });
    expect(over.status).toBe(409);
    expect(over.body).toMatchObject({ code: 'CONFLICT', reason: 'BALANCE_LIMIT' });
    const topUp = await api.call<Record<string, unknown>>('POST', '/v1/wallet/top-ups', {
      token: rich.accessToken,
      body: { amount: 1, card: SandboxCard.SUCCEEDS },
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(topUp.status).toBe(409);
    expect(topUp.body).toMatchObject({ reason: 'BALANCE_LIMIT' });
    // Exactly up to the limit is fine.
    const fill = await transfer(rich.accessToken, randomUUID(), { toUserId: victim.id, amount: max - 10 });
    expect(fill.status).toBe(201);
    const victimWallet = await api.get<WalletBody>('/v1/wallet', victim.accessToken);
    expect(victimWallet.status).toBe(200);
    expect(victimWallet.body.available).toBe(max);
    expect((await api.get<WalletBody>('/v1/wallet', rich.accessToken)).body.available).toBe(10);
    const history = await api.get('/v1/wallet/transactions', victim.accessToken);
    expect(history.status).toBe(200);
  });

  it("shows each user only their own wallet; nobody moves another's money", async () => {
    const owner = await registerUser(api);
    const stranger = await registerUser(api);
    await fund(owner, 50);
    expect((await api.get<WalletBody>('/v1/wallet', stranger.accessToken)).body.available).toBe(0);
    expect(
      (await api.get<{ data: unknown[] }>('/v1/wallet/transactions', stranger.accessToken)).body.data,
    ).toEqual([]);
    // A transfer always leaves the caller's own wallet: the stranger has nothing to send.
    const attempt = await transfer(stranger.accessToken, randomUUID(), { toUserId: owner.id, amount: 50 });
    expect(attempt.status).toBe(409);
    expect((await api.get<WalletBody>('/v1/wallet', owner.accessToken)).body.available).toBe(50);
    // Unknown body fields (a fromUserId, say) are refused, not ignored.
    const smuggled = await transfer(stranger.accessToken, randomUUID(), {
      toUserId: stranger.id,
      fromUserId: owner.id,
      amount: 1,
    });
    expect(smuggled.status).toBe(400);
  });

  it('pushes the new balance to both parties of a transfer, on both transports and encodings', async () => {
    const payer = await registerUser(api);
    const payee = await registerUser(api);
    await fund(payer, 100);
    const urls = [node.node.uwsUrl, `${node.node.baseUrl.replace(/^http/, 'ws')}/ws`].filter(
      (url): url is string => url !== undefined,
    );
    const payeeSockets = await Promise.all(
      urls.flatMap((url) =>
        (['json', 'msgpack'] as const).map((encoding) => openSocket(url, payee.accessToken, encoding)),
      ),
    );
    const payerSocket = await openSocket(urls[0] as string, payer.accessToken, 'msgpack');
    for (const socket of [...payeeSockets, payerSocket]) await socket.next((frame) => frame.t === 'hello');
    expect((await transfer(payer.accessToken, randomUUID(), { toUserId: payee.id, amount: 30 })).status).toBe(
      201,
    );
    for (const socket of payeeSockets) {
      const push = await socket.next((frame) => frame.t === 'wallet');
      expect(push.d).toEqual({ currency: 'USD', available: 30, pending: 0, parked: 0 });
    }
    const own = await payerSocket.next(
      (frame) => frame.t === 'wallet' && (frame.d as { available: number }).available === 70,
    );
    expect(own.d).toEqual({ currency: 'USD', available: 70, pending: 0, parked: 0 });
    for (const socket of [...payeeSockets, payerSocket]) socket.close();
  });

  it('gives admins the ledger audit (clean), others 403; npm run ledger:audit agrees', async () => {
    const user = await registerUser(api);
    expect((await api.get('/v1/admin/ledger/audit', user.accessToken)).status).toBe(403);
    const audit = await api.get<{ clean: boolean; findings: unknown[] }>(
      '/v1/admin/ledger/audit',
      adminToken,
    );
    expect(audit.status).toBe(200);
    expect(audit.body.findings).toEqual([]);
    expect(audit.body.clean).toBe(true);
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        commandArguments('src/bin/ledger-audit.ts'),
        { env: { ...process.env, DATABASE_URL: node.db.url, LOG_LEVEL: 'warn' } },
        (error, stdout, stderr) =>
          resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }),
      );
    });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).findings).toEqual([]);
  });
});
