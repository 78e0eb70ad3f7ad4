/** Idempotency-Key handling of the payment POSTs (see domain/payments/idempotency.ts). */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely, Transaction } from 'kysely';
import type { UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import { runIdempotent, type StoredResponse } from '../../domain/payments/idempotency.js';
import type { Clock } from '../../platform/clock.js';

export interface IdempotencyDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  /** How long a retry waits for its twin in flight before 409. */
  readonly waitMs: number;
}

export async function runIdempotentRoute(
  deps: IdempotencyDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  userId: UserId,
  effect: (trx: Transaction<Database>) => Promise<StoredResponse>,
): Promise<FastifyReply> {
  const key = request.headers['idempotency-key'];
  const result = await runIdempotent(
    deps,
    {
      userId,
      key: typeof key === 'string' ? key : '',
      scope: `${request.method} ${request.routeOptions.url ?? request.url}`,
      body: request.body,
      waitMs: deps.waitMs,
    },
    effect,
  );
  if (result.replayed) reply.header('idempotent-replayed', 'true');
  return reply.status(result.status).send(result.body);
}
