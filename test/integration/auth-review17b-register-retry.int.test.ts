/**
 * Registration retried after its answer was lost (review 17b): a user on a bad network whose
 * POST /v1/auth/register went through but whose 202 never arrived sends it again, and was told
 * 409 "username is already taken" about the account they had just made. The same registration
 * (same username, email and password) now answers 202 again and changes nothing; a different
 * email or password under that username is still a clear 409 — as is the same registration of an
 * account an operator has locked (login answers it 401 whatever the password: no oracle here either).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient } from '../support/http.js';

let testNode: TestNode;
let api: ReturnType<typeof httpClient>;

beforeAll(async () => {
  testNode = await startTestNode();
  api = httpClient(testNode.node.baseUrl);
});
afterAll(() => testNode?.stop());

async function sql<T>(query: string, values: unknown[]): Promise<T[]> {
  const client = new pg.Client({ connectionString: testNode.db.url });
  await client.connect();
  try {
    return (await client.query(query, values)).rows as T[];
  } finally {
    await client.end();
  }
}

describe('a registration sent again', () => {
  it('answers 202 again for the same request, and 409 for another email or password', async () => {
    const tag = Math.random().toString(36).slice(2, 10);
    const request = {
      username: `retry${tag}`,
      email: `retry-${tag}@example.test`,
      password: 'Ochre-Pangolin-31!',
    };
    const first = await api.post('/v1/auth/register', request);
    expect(first.status).toBe(202);

    // The first answer was lost: the client sends the very same request again.
    const again = await api.post('/v1/auth/register', { ...request, email: request.email.toUpperCase() });
    expect(again.status).toBe(202);
    expect(again.body).toEqual({ status: 'accepted' });

    // Nothing more happened: one account, one registration event (one verification mail).
    const users = await sql<{ id: string }>('select id from users where lower(username) = lower($1)', [
      request.username,
    ]);
    expect(users).toHaveLength(1);
    const events = await sql<{ n: number }>(
      "select count(*)::int as n from outbox_events where type = 'user.registered' and payload->>'userId' = $1",
      [users[0]?.id],
    );
    expect(events[0]?.n).toBe(1);
    expect(
      (await api.post('/v1/auth/login', { login: request.username, password: request.password })).status,
    ).toBe(200);

    // Anyone else asking for that username is told it is taken.
    for (const other of [
      { ...request, password: 'Another-Pangolin-77?' },
      { ...request, email: `someone-${tag}@example.test` },
    ]) {
      const clash = await api.post('/v1/auth/register', other);
      expect(clash.status).toBe(409);
      expect(clash.body).toMatchObject({ code: 'CONFLICT', errors: [{ path: 'body.username' }] });
    }
  });

  it('answers 409 to the same registration of an account an operator locked: no password oracle there', async () => {
    const tag = Math.random().toString(36).slice(2, 10);
    const request = {
      username: `locked${tag}`,
      email: `locked-${tag}@example.test`,
      password: 'Umber-Quokka-58!',
    };
    expect((await api.post('/v1/auth/register', request)).status).toBe(202);
    await sql('update users set locked_at = now() where lower(username) = lower($1)', [request.username]);

    // Login answers a locked account 401 whatever the password; "the same registration again" must
    // not tell its right password apart from a wrong one either.
    const again = await api.post('/v1/auth/register', request);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'CONFLICT', errors: [{ path: 'body.username' }] });
  });
});
