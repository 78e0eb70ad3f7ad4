/**
 * Money requests under a client's Idempotency-Key over real HTTP, for tests of what a key binds
 * once its record is forgotten: a POST as a user under a given key, the user's wallet, and a key
 * aged past its record's retention (≥ 24 h) in SQL; and a wallet funded through the sandbox.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { expect } from 'vitest';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import type { httpClient, Registered } from './http.js';
import { untilDefined } from './poll.js';

type Api = ReturnType<typeof httpClient>;

export interface WalletBody {
  available: number;
  pending: number;
  posted: number;
}

/** `user`'s wallet (GET /v1/wallet). */
export const walletOf = async (api: Api, user: Registered) =>
  (await api.get<WalletBody>('/v1/wallet', user.accessToken)).body;

/** POST `body` to `path` as `user` under the Idempotency-Key `key`. */
export const postWithKey = (api: Api, path: string, user: Registered, key: string, body: unknown) =>
  api.call<Record<string, unknown>>('POST', path, {
    token: user.accessToken,
    body,
    headers: { 'idempotency-key': key },
  });

/** Tops `user`'s empty wallet up with `amount` (a sandbox card that succeeds) and waits until it is available. */
export async function fundWallet(api: Api, user: Registered, amount: number): Promise<void> {
  const funded = await postWithKey(api, '/v1/wallet/top-ups', user, randomUUID(), {
    amount,
    card: SandboxCard.SUCCEEDS,
  });
  expect(funded.status, JSON.stringify(funded.body)).toBe(202);
  await untilDefined(
    async () => ((await walletOf(api, user)).available === amount ? true : undefined),
    'the top-up to settle',
  );
}

/** The key as it would be a day and an hour later: its row (in `databaseUrl`) is older than the retention. */
export async function ageIdempotencyKey(databaseUrl: string, user: Registered, key: string): Promise<void> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const { rowCount } = await db.query(
      `update idempotency_keys set created_at = created_at - interval '25 hours'
       where user_id = $1 and key = $2`,
      [user.id, key],
    );
    expect(rowCount).toBe(1);
  } finally {
    await db.end();
  }
}
