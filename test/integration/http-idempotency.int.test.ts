/**
 * The HTTP Idempotency-Key helper (src/http/idempotency.ts, runIdempotentRoute) on a real Fastify
 * instance with gigwire's error handling, against real PostgreSQL. The effect is held open by a gate,
 * so "in flight" is a state the test creates, not a race it hopes for:
 * - missing, empty, over-long key → 400 VALIDATION_FAILED problem+json, and no effect;
 * - a twin while the first is in flight → 409 CONFLICT problem (after its waitMs);
 * - retries after the first finished, and retries waiting while it runs → the stored first answer,
 *   status included, with `idempotent-replayed: true`; the effect ran once;
 * - the same key with another body → 422 IDEMPOTENCY_KEY_REUSED; keys are per user.
 * The money routes over it are tested in wallet-http.int.test.ts and payments-http.int.test.ts.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import type { Database } from '../../src/db/database.js';
import { IDEMPOTENT_REPLAYED_HEADER, runIdempotentRoute } from '../../src/http/idempotency.js';
import { registerErrorHandling } from '../../src/http/plugins/errors.js';
import { systemClock } from '../../src/platform/clock.js';
import { captureLogs, createMigratedDatabase, type TestDatabase } from '../support/context.js';

let database: TestDatabase;
let handle: DbHandle;
let db: Kysely<Database>;
let app: FastifyInstance;
let baseUrl: string;

/** Effects that ran (committed or not), by request key; and gates that hold an effect open. */
const runs = new Map<string, number>();
const gates = new Map<string, { started: () => void; release: Promise<void> }>();

function gate(key: string) {
  let started!: () => void;
  let release!: () => void;
  const startedP = new Promise<void>((done) => {
    started = done;
  });
  const releaseP = new Promise<void>((done) => {
    release = done;
  });
  gates.set(key, { started, release: releaseP });
  return { started: startedP, release };
}

/** A route like the money POSTs: the effect writes on the idempotency transaction. */
async function buildTestApp(waitMs: number): Promise<FastifyInstance> {
  const instance = Fastify({ logger: false });
  registerErrorHandling(instance);
  instance.post<{ Body: { amount: number; status?: number } }>('/v1/test/effects', async (request, reply) => {
    // Tests name the caller in a header (auth is not what is tested here).
    const userId = String(request.headers['x-test-user']) as UserId;
    return runIdempotentRoute({ db, clock: systemClock, waitMs }, request, reply, userId, async (trx) => {
      const key = String(request.headers['idempotency-key']);
      runs.set(key, (runs.get(key) ?? 0) + 1);
      const held = gates.get(key);
      held?.started();
      await held?.release;
      // A write in the same transaction as the stored answer, whose value the replay must repeat.
      const row = await sql<{ at: string }>`select clock_timestamp()::text as at`.execute(trx);
      return {
        status: request.body.status ?? 201,
        body: { amount: request.body.amount, effectId: randomUUID(), at: row.rows[0]?.at },
      };
    });
  });
  // The same effect on a resource named in the path (as /v1/bids/:id/accept).
  instance.post<{ Params: { id: string } }>('/v1/test/things/:id/effects', async (request, reply) => {
    const userId = String(request.headers['x-test-user']) as UserId;
    return runIdempotentRoute({ db, clock: systemClock, waitMs }, request, reply, userId, async () => {
      const key = `${String(request.headers['idempotency-key'])}/${request.params.id}`;
      runs.set(key, (runs.get(key) ?? 0) + 1);
      return { status: 201, body: { thing: request.params.id } };
    });
  });
  await instance.listen({ host: '127.0.0.1', port: 0 });
  return instance;
}

async function newUser(): Promise<UserId> {
  const name = `hidem_${randomUUID().slice(0, 12)}`;
  const row = await db
    .insertInto('users')
    .values({ username: name, email: `${name}@example.test`, password_hash: 'x', search_document: name })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

async function post(user: UserId, key: string | undefined, body: unknown) {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-test-user': user };
  if (key !== undefined) headers['idempotency-key'] = key;
  const response = await fetch(`${baseUrl}/v1/test/effects`, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    replayed: response.headers.get(IDEMPOTENT_REPLAYED_HEADER),
    body: (await response.json()) as Record<string, unknown>,
  };
}

beforeAll(async () => {
  database = await createMigratedDatabase();
  handle = await createDb({ kind: 'postgres', url: database.url, poolMax: 30 }, captureLogs().log);
  db = handle.db;
  // A twin waits this long for the first before 409.
  app = await buildTestApp(300);
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  baseUrl = `http://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  await app?.close();
  await handle?.close();
  await database?.drop();
});

describe('runIdempotentRoute (Idempotency-Key over HTTP)', () => {
  it('refuses a missing, empty or over-long key with a 400 VALIDATION_FAILED problem and runs nothing', async () => {
    const user = await newUser();
    for (const key of [undefined, '', 'k'.repeat(256)]) {
      const response = await post(user, key, { amount: 1 });
      expect(response.status).toBe(400);
      expect(response.type).toContain('application/problem+json');
      expect(response.body.code).toBe('VALIDATION_FAILED');
    }
    expect(runs.get('')).toBeUndefined();
    expect(runs.get('k'.repeat(256))).toBeUndefined();
    const longest = 'k'.repeat(255);
    expect((await post(user, longest, { amount: 1 })).status).toBe(201);
  });

  it('answers 409 to a twin while the first is in flight; afterwards every retry gets the first answer', async () => {
    const user = await newUser();
    const key = `inflight-${randomUUID()}`;
    const held = gate(key);
    const first = post(user, key, { amount: 5 });
    await held.started;
    const twin = await post(user, key, { amount: 5 });
    expect(twin.status).toBe(409);
    expect(twin.type).toContain('application/problem+json');
    expect(twin.body.code).toBe('CONFLICT');
    held.release();
    const answered = await first;
    expect(answered.status).toBe(201);
    expect(answered.replayed).toBeNull();
    const retry = await post(user, key, { amount: 5 });
    expect(retry.status).toBe(201);
    expect(retry.replayed).toBe('true');
    expect(retry.body).toEqual(answered.body);
    expect(runs.get(key)).toBe(1);
  });

  it('gives 20 concurrent retries that wait for the first its stored answer and status, one effect', async () => {
    const user = await newUser();
    const key = `twenty-${randomUUID()}`;
    const held = gate(key);
    // 202, not the default 201: the stored status is replayed, not assumed.
    const body = { amount: 7, status: 202 };
    const first = post(user, key, body);
    await held.started;
    // The retries queue behind the first's row lock; released while they wait (waitMs 300 each is
    // not relied on: the ones that time out are sent again until each has the stored answer).
    const retries = Array.from({ length: 19 }, async () => {
      for (;;) {
        const response = await post(user, key, body);
        if (response.status !== 409) return response;
      }
    });
    held.release();
    const answers = await Promise.all([first, ...retries]);
    for (const answer of answers) {
      expect(answer.status).toBe(202);
      expect(answer.body).toEqual(answers[0]?.body);
    }
    expect(answers.filter((answer) => answer.replayed === 'true')).toHaveLength(19);
    expect(runs.get(key)).toBe(1);
  });

  it('answers 422 IDEMPOTENCY_KEY_REUSED to the same key with another body; keys are per user', async () => {
    const [alice, bob] = [await newUser(), await newUser()];
    const key = `reuse-${randomUUID()}`;
    const first = await post(alice, key, { amount: 1, note: 'a' });
    expect(first.status).toBe(201);
    const other = await post(alice, key, { amount: 2 });
    expect(other.status).toBe(422);
    expect(other.type).toContain('application/problem+json');
    expect(other.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    // Key order in the body does not make it another request.
    const reordered = await post(alice, key, { note: 'a', amount: 1 });
    expect(reordered.status).toBe(201);
    expect(reordered.replayed).toBe('true');
    expect(reordered.body).toEqual(first.body);
    // Bob's key of the same name is his own: a new effect, not Alice's answer.
    const bobs = await post(bob, key, { amount: 2 });
    expect(bobs.status).toBe(201);
    expect(bobs.replayed).toBeNull();
    expect(runs.get(key)).toBe(2);
  });

  it('answers 422 to the same key on another resource of the same route: the path is part of the request', async () => {
    const alice = await newUser();
    const key = `path-${randomUUID()}`;
    const on = (thing: string) =>
      fetch(`${baseUrl}/v1/test/things/${thing}/effects`, {
        method: 'POST',
        headers: { 'x-test-user': alice, 'idempotency-key': key },
      });
    const first = await on('a');
    expect(first.status).toBe(201);
    const again = await on('A'); // the same resource, its id in another case: a replay
    expect(again.status).toBe(201);
    expect(again.headers.get(IDEMPOTENT_REPLAYED_HEADER)).toBe('true');
    const other = await on('b');
    expect(other.status).toBe(422);
    expect(((await other.json()) as { code: string }).code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(runs.get(`${key}/a`)).toBe(1);
    expect(runs.get(`${key}/b`)).toBeUndefined();
  });
});
