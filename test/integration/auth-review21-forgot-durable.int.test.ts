/**
 * POST /v1/auth/forgot-password answers 202 only once the reset request is stored (review 21).
 * Review 20 had moved the write after the answer (so that a registered address was not answered
 * later than an unknown one): a process stopped right after the 202 lost the owner's reset mail,
 * silently. Now every request, registered address or not, writes and commits one reset request
 * before its answer — naming the account, or no account (the relay drops those) — so the answer
 * means durable and the time is still the same work for both.
 *
 * Seen here with outbox_events locked: a request that answered while its write was held back by
 * the lock would have answered before its row existed.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, registerUser } from '../support/http.js';

let testNode: TestNode;
let api: ReturnType<typeof httpClient>;

beforeAll(async () => {
  testNode = await startTestNode();
  api = httpClient(testNode.node.baseUrl);
});
afterAll(() => testNode?.stop());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('forgot-password answers once the reset request is stored', () => {
  it('holds the 202 of a registered and an unknown address until their reset requests commit', async () => {
    const user = await registerUser(api);
    const locker = new pg.Client({ connectionString: testNode.db.url });
    const reader = new pg.Client({ connectionString: testNode.db.url });
    await locker.connect();
    await reader.connect();
    const requestsOf = async (userId: string | null) =>
      (
        await reader.query<{ n: number }>(
          `select count(*)::int as n from outbox_events
            where type = 'user.password_reset_requested' and payload->>'userId' is not distinct from $1`,
          [userId],
        )
      ).rows[0]?.n;
    /** Inserts into outbox_events waiting for the lock below. */
    const heldWrites = async () =>
      (
        await reader.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock'
              and query ilike 'insert into "outbox_events"%'`,
        )
      ).rows[0]?.n ?? 0;
    try {
      const unknownBefore = await requestsOf(null);
      await locker.query('begin');
      await locker.query('lock table outbox_events in exclusive mode');
      const answered: string[] = [];
      const known = api.post('/v1/auth/forgot-password', { email: user.email }).then((response) => {
        answered.push('known');
        return response;
      });
      const unknown = api
        .post('/v1/auth/forgot-password', { email: `nobody-${user.email}` })
        .then((response) => {
          answered.push('unknown');
          return response;
        });
      // Until both writes wait for the lock, or an answer came without its write.
      for (let i = 0; i < 200 && answered.length === 0 && (await heldWrites()) < 2; i++) await sleep(25);
      // No answer while its reset request could not be written: a 202 here would be lost by a crash.
      expect(answered).toEqual([]);
      expect(await heldWrites()).toBe(2);
      expect(await requestsOf(user.id)).toBe(0);

      await locker.query('commit');
      const [knownAnswer, unknownAnswer] = await Promise.all([known, unknown]);
      expect(knownAnswer.status).toBe(202);
      expect(unknownAnswer.status).toBe(202);
      expect(knownAnswer.body).toEqual(unknownAnswer.body);
      // Stored by the time of the answer: read at once, no waiting for a write after it.
      expect(await requestsOf(user.id)).toBe(1);
      expect(await requestsOf(null)).toBe((unknownBefore ?? 0) + 1);
    } finally {
      await locker.query('rollback').catch(() => undefined);
      await locker.end();
      await reader.end();
    }
  }, 20_000);
});
