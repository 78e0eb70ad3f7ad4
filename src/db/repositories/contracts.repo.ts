/**
 * Contracts, their transition log, and the system messages a transition appends to the job room.
 * A contract row changes only through `applyTransition` (optimistic: "where version = $seen"), and
 * every change writes the log row for the version it produced, so the two cannot disagree.
 */
import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { BidId, ContractId, JobId, RoomId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../database.js';
import { isUniqueViolation, SqlState } from '../errors.js';
import type {
  ContractActorKind,
  ContractStateColumn,
  ContractsTable,
  ContractTransitionsTable,
} from '../tables/marketplace.table.js';
import type { MessageRow } from './rooms.repo.js';
import type { KeysetCursor } from './users.repo.js';

type Db = Kysely<Database> | Transaction<Database>;
export type ContractRow = Selectable<ContractsTable>;
export type ContractTransitionRow = Selectable<ContractTransitionsTable>;

export interface NewContract {
  readonly id: ContractId;
  readonly jobId: JobId;
  readonly bidId: BidId;
  readonly hirerId: UserId;
  readonly workerId: UserId;
  readonly title: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly deliveryDays: number;
  readonly roomId: RoomId;
  readonly dueAt: Date;
  readonly now: Date;
}

export function insertContract(db: Db, contract: NewContract): Promise<ContractRow> {
  return db
    .insertInto('contracts')
    .values({
      id: contract.id,
      job_id: contract.jobId,
      bid_id: contract.bidId,
      hirer_id: contract.hirerId,
      worker_id: contract.workerId,
      title: contract.title,
      amount: contract.amount.toString(),
      currency: contract.currency,
      delivery_days: contract.deliveryDays,
      room_id: contract.roomId,
      due_at: contract.dueAt,
      version: 1,
      created_at: contract.now,
      updated_at: contract.now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export const findContract = (db: Db, id: ContractId): Promise<ContractRow | undefined> =>
  db.selectFrom('contracts').selectAll().where('id', '=', id).executeTakeFirst();

export const lockContract = (trx: Transaction<Database>, id: ContractId): Promise<ContractRow | undefined> =>
  trx.selectFrom('contracts').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();

/** Columns a transition may set besides state and version. */
export interface ContractChange {
  readonly state: ContractStateColumn;
  readonly stamp?: 'delivered_at' | 'completed_at' | 'cancelled_at' | 'disputed_at' | 'resolved_at';
  readonly addDelivery?: boolean;
  readonly autoApproveAt?: Date | null;
  readonly reviewDeadlineAt?: Date;
}

/**
 * Moves the contract from `version` to `version + 1`; undefined when another transition got there
 * first (the caller answers 409 and the client re-reads).
 */
export function applyTransition(
  db: Db,
  id: ContractId,
  version: number,
  change: ContractChange,
  now: Date,
): Promise<ContractRow | undefined> {
  return db
    .updateTable('contracts')
    .set({
      state: change.state,
      version: sql<number>`version + 1`,
      updated_at: now,
      ...(change.stamp === undefined ? {} : { [change.stamp]: now }),
      ...(change.addDelivery === true ? { deliveries: sql<number>`deliveries + 1` } : {}),
      ...(change.autoApproveAt === undefined ? {} : { auto_approve_at: change.autoApproveAt }),
      ...(change.reviewDeadlineAt === undefined ? {} : { review_deadline_at: change.reviewDeadlineAt }),
    })
    .where('id', '=', id)
    .where('version', '=', version)
    .returningAll()
    .executeTakeFirst();
}

export interface NewTransition {
  readonly contractId: ContractId;
  readonly version: number;
  readonly event: string;
  readonly from: ContractStateColumn | null;
  readonly to: ContractStateColumn;
  readonly actorKind: ContractActorKind;
  readonly actorId: UserId | null;
  readonly payload: Record<string, unknown>;
  readonly now: Date;
}

export async function insertTransition(db: Db, transition: NewTransition): Promise<void> {
  await db
    .insertInto('contract_transitions')
    .values({
      contract_id: transition.contractId,
      version: transition.version,
      event: transition.event,
      from_state: transition.from,
      to_state: transition.to,
      actor_kind: transition.actorKind,
      actor_id: transition.actorId,
      payload: transition.payload,
      created_at: transition.now,
    })
    .execute();
}

export const transitionsOf = (db: Db, id: ContractId): Promise<ContractTransitionRow[]> =>
  db
    .selectFrom('contract_transitions')
    .selectAll()
    .where('contract_id', '=', id)
    .orderBy('version')
    .execute();

export const findTransition = (
  db: Db,
  id: ContractId,
  event: string,
): Promise<ContractTransitionRow | undefined> =>
  db
    .selectFrom('contract_transitions')
    .selectAll()
    .where('contract_id', '=', id)
    .where('event', '=', event)
    .orderBy('version', 'desc')
    .executeTakeFirst();

export interface ContractListQuery {
  readonly userId: UserId;
  readonly states?: readonly ContractStateColumn[];
  readonly after?: KeysetCursor;
  readonly limit: number;
}

/** A user's contracts as hirer or worker, newest first (each side served by its own index). */
export function contractsOfUser(db: Db, query: ContractListQuery): Promise<ContractRow[]> {
  const side = (column: 'hirer_id' | 'worker_id') => {
    let q = db.selectFrom('contracts').selectAll().where(column, '=', query.userId);
    if (query.states !== undefined && query.states.length > 0) q = q.where('state', 'in', query.states);
    if (query.after !== undefined) {
      const createdAt = new Date(query.after.createdAt);
      const id = query.after.id as ContractId;
      q = q.where((eb) =>
        eb.or([
          eb('created_at', '<', createdAt),
          eb.and([eb('created_at', '=', createdAt), eb('id', '<', id)]),
        ]),
      );
    }
    return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(query.limit);
  };
  // Each side ordered and limited by its own index, wrapped so the UNION ALL takes both whole.
  return db
    .selectFrom(
      db
        .selectFrom(side('hirer_id').as('h'))
        .selectAll()
        .unionAll(db.selectFrom(side('worker_id').as('w')).selectAll())
        .as('c'),
    )
    .selectAll()
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(query.limit)
    .execute() as Promise<ContractRow[]>;
}

/**
 * Appends a message to a room in the caller's transaction: the next seq after both the room's
 * last_seq and the highest stored seq. A room actor writing at the same moment may take that seq
 * first; the unique key then fails this insert, which is reported as a retryable conflict (40001)
 * so the caller's transaction runs again (the actor's own conflicts renumber on its side).
 */
export async function appendRoomMessageIn(
  trx: Transaction<Database>,
  message: {
    readonly roomId: RoomId;
    readonly senderId: UserId;
    readonly clientMsgId: string;
    readonly body: string;
    readonly meta: Record<string, unknown>;
    readonly now: Date;
  },
): Promise<MessageRow> {
  const bumped = await trx
    .updateTable('rooms')
    .set({
      last_seq: sql<number>`greatest(last_seq, coalesce((select max(m.seq) from messages m where m.room_id = ${message.roomId}), 0)) + 1`,
    })
    .where('id', '=', message.roomId)
    .returning('last_seq')
    .executeTakeFirstOrThrow();
  const seq = Number(bumped.last_seq);
  try {
    const row = await trx
      .insertInto('messages')
      .values({
        room_id: message.roomId,
        seq,
        sender_id: message.senderId,
        client_msg_id: message.clientMsgId,
        body: message.body,
        meta: sql`${JSON.stringify(message.meta)}::jsonb`,
        sent_at: message.now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return { ...row, seq: Number(row.seq) };
  } catch (error) {
    if (isUniqueViolation(error)) {
      throw Object.assign(new Error('room seq taken concurrently; retry the transaction'), {
        code: SqlState.SERIALIZATION_FAILURE,
        cause: error,
      });
    }
    throw error;
  }
}

/**
 * Delivered contracts whose `auto_approve_at` passed before `dueBefore`: approved by the clock, but
 * their `contracts.auto-approve` task has not completed them — it gave up (a database outage longer
 * than its retries) or is still retrying. Oldest due first, each with the version its timer is keyed
 * by (a delivered contract keeps the version its delivery produced). Read through the partial index
 * of delivered contracts by (`auto_approve_at`, `id`) (`contracts_delivered_auto_approve_idx`,
 * migration 0021), in its order.
 */
export async function overdueAutoApprovals(
  db: Db,
  dueBefore: Date,
  limit: number,
  /** Contracts left out (queued again recently), so they cannot crowd out the others. */
  exceptIds: readonly string[] = [],
): Promise<{ contractId: ContractId; version: number; autoApproveAt: Date }[]> {
  const { rows } = await sql<{ id: ContractId; version: number; auto_approve_at: Date }>`
    select id, version, auto_approve_at from contracts
    where state = 'delivered' and auto_approve_at < ${dueBefore}
      and not (id = any(${[...exceptIds]}::uuid[]))
    order by auto_approve_at, id
    limit ${limit}`.execute(db);
  return rows.map((row) => ({
    contractId: row.id,
    version: row.version,
    autoApproveAt: row.auto_approve_at,
  }));
}
