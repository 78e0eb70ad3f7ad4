/**
 * A migrated database of its own for ledger and payments tests that call the domain directly:
 * the handle, the PaymentsDeps every payments function takes, and users inserted without the
 * account flow (the ledger only needs their ids).
 */
import { randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type { UserId } from '../../protocol/src/ids.js';
import type { Role } from '../../protocol/src/rest/users.js';
import { createDb } from '../../src/db/create-db.js';
import type { Database } from '../../src/db/database.js';
import { type PaymentsDeps, runLedgerTransaction } from '../../src/domain/payments/ledger.js';
import { requestTopUpIn } from '../../src/domain/payments/payments.js';
import type { ProviderEvent } from '../../src/domain/payments/provider.js';
import { SandboxCard } from '../../src/domain/payments/sandbox-provider.js';
import { systemClock } from '../../src/platform/clock.js';
import { captureLogs, createMigratedDatabase } from './context.js';

export const TEST_PAYMENT_SETTINGS = { currency: 'USD', platformFeeBps: 1000 } as const;

export interface PaymentsTestDb {
  readonly db: Kysely<Database>;
  readonly deps: PaymentsDeps;
  /** Database URL, for a process started against the same data. */
  readonly url: string;
  /** Closes the pool and drops the database. */
  readonly close: () => Promise<void>;
}

export async function openPaymentsTestDb(poolMax = 10): Promise<PaymentsTestDb> {
  const database = await createMigratedDatabase();
  const handle = await createDb({ kind: 'postgres', url: database.url, poolMax }, captureLogs().log);
  return {
    db: handle.db,
    deps: { db: handle.db, clock: systemClock, settings: TEST_PAYMENT_SETTINGS },
    url: database.url,
    close: async () => {
      await handle.close();
      await database.drop();
    },
  };
}

/** Inserts one user with `roles` (no account flow) and returns it as the domain's Actor. */
export async function insertActor(
  db: Kysely<Database>,
  prefix: string,
  ...roles: Role[]
): Promise<{ userId: UserId; roles: Role[] }> {
  const name = `${prefix}_${randomUUID().slice(0, 12)}`;
  const row = await db
    .insertInto('users')
    .values({
      username: name,
      email: `${name}@example.test`,
      password_hash: 'x',
      search_document: name,
      roles,
      // An account that finished signing up (notification mail goes to verified addresses only).
      email_verified_at: new Date(),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { userId: row.id, roles };
}

/** Inserts `n` users with unique names starting with `prefix`; returns their ids in order. */
export async function insertUsers(db: Kysely<Database>, n: number, prefix = 'user'): Promise<UserId[]> {
  const rows = await db
    .insertInto('users')
    .values(
      Array.from({ length: n }, () => {
        const name = `${prefix}_${randomUUID().slice(0, 12)}`;
        return { username: name, email: `${name}@example.test`, password_hash: 'x', search_document: name };
      }),
    )
    .returning('id')
    .execute();
  return rows.map((row) => row.id);
}

/**
 * A contract row in `state` between two users (with the job and bid it needs), for tests of what
 * reads a contract's state (the escrow task); its id is the escrow's contract id.
 */
export async function insertContract(
  db: Kysely<Database>,
  input: { hirerId: UserId; workerId: UserId; amount: bigint; state: string },
): Promise<string> {
  const { rows } = await sql<{ id: string }>`
    with job as (
      insert into jobs (hirer_id, category_id, title, description, budget_kind, budget_amount, currency)
      select ${input.hirerId}, id, 'escrow test', 'escrow test', 'fixed', ${input.amount}, 'USD'
      from categories order by id limit 1
      returning id
    ), bid as (
      insert into bids (job_id, worker_id, amount, delivery_days, cover_letter)
      select job.id, ${input.workerId}, ${input.amount}, 3, '' from job
      returning id, job_id
    )
    insert into contracts (job_id, bid_id, hirer_id, worker_id, title, amount, currency, delivery_days, state, due_at)
    select bid.job_id, bid.id, ${input.hirerId}, ${input.workerId}, 'escrow test', ${input.amount}, 'USD', 3,
      ${input.state}, now() + interval '3 days'
    from bid
    returning id`.execute(db);
  const id = rows[0]?.id;
  if (id === undefined) throw new Error('no category to file the test job under');
  return id;
}

/**
 * A provider event stored `received` whose body its schema refuses (the amount a string, no
 * currency): what a row corrupted in the database looks like. Answers its id.
 */
export async function insertMalformedProviderEvent(db: Kysely<Database>): Promise<string> {
  const id = `evt_${randomUUID()}`;
  await db
    .insertInto('provider_events')
    .values({
      id,
      type: 'charge.succeeded',
      payment_id: null,
      outcome: 'received',
      payload: {
        id,
        type: 'charge.succeeded',
        createdAt: 1,
        data: { paymentId: randomUUID(), providerRef: 'ch_bad', amount: '500' },
      },
    })
    .execute();
  return id;
}

/** A provider webhook event for a payment, as the provider would sign and send it (a fresh id each). */
export function providerEvent(
  paymentId: string,
  type: ProviderEvent['type'],
  amount: number,
  options: { currency?: string; failureCode?: 'card_declined' | 'insufficient_funds'; tag?: string } = {},
): ProviderEvent {
  const tag = options.tag ?? 'test';
  return {
    id: `evt_${tag}_${randomUUID()}`,
    type,
    createdAt: Math.floor(Date.now() / 1000),
    data: {
      paymentId,
      providerRef: `ref_${tag}`,
      amount,
      currency: options.currency ?? 'USD',
      ...(options.failureCode === undefined ? {} : { failureCode: options.failureCode }),
    },
  };
}

/** A card top-up requested as the REST route does (the sandbox card that succeeds). */
export function requestSandboxTopUp(deps: PaymentsDeps, userId: UserId, amount: bigint) {
  return runLedgerTransaction(deps, (trx) =>
    requestTopUpIn(trx, deps, { userId, amount, card: SandboxCard.SUCCEEDS }),
  );
}
