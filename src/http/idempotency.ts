/**
 * The Idempotency-Key header of the money-moving POSTs (issue 11 §4: top-ups, withdrawals, transfers),
 * over `runIdempotent` (domain/payments/idempotency.ts), which claims the key, runs the effect and
 * stores the response in ONE database transaction:
 * - missing, empty or over 255 characters → 400 VALIDATION_FAILED;
 * - same key, same request (method + route pattern + canonical body) → the stored first response,
 *   with `idempotent-replayed: true`; a twin still in flight is waited for up to `waitMs`, then 409;
 * - same key, another request → 422 IDEMPOTENCY_KEY_REUSED;
 * - keys are per user and kept ≥ 24 h; a failed effect stores nothing (a retry runs again).
 *
 * Use in a route handler, the effect doing all its writes on `trx`:
 *   return runIdempotentRoute(deps, request, reply, userId, async (trx) => ({ status: 201, body }));
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely, Transaction } from 'kysely';
import { z } from 'zod';
import type { UserId } from '../../protocol/src/ids.js';
import type { Database } from '../db/database.js';
import { runIdempotent, type StoredResponse } from '../domain/payments/idempotency.js';
import type { Clock } from '../platform/clock.js';

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
export const IDEMPOTENT_REPLAYED_HEADER = 'idempotent-replayed';

/**
 * JSON Schema keyword on a property the handler itself requires: plugins/openapi.ts removes it and
 * lists the property as required. Schema validation lets a missing one through on purpose, so the
 * answer stays the handler's own (for the key: 400 VALIDATION_FAILED "an Idempotency-Key header
 * of 1-255 visible ASCII characters is required", naming `headers.idempotency-key`), the same for
 * missing, empty and over-long keys, and one check guards every route alike.
 */
export const REQUIRED_BY_HANDLER = 'x-required-by-handler';

/**
 * The Idempotency-Key of a route that goes through runIdempotentRoute: required (documented so in
 * OpenAPI), checked by runIdempotentRoute. Routes where the key is optional (POST /v1/jobs, reviews)
 * declare `z.string().optional()` instead.
 */
export const requiredIdempotencyKey = z
  .string()
  .optional()
  .meta({
    [REQUIRED_BY_HANDLER]: true,
    description:
      'Required: 1-255 visible ASCII characters naming this operation. A retry with the same key and the same request replays the first answer (`idempotent-replayed: true`); the same key on another request is 422 IDEMPOTENCY_KEY_REUSED. Missing, empty or too long: 400 VALIDATION_FAILED naming `headers.idempotency-key`.',
  });

/** Headers of a route whose only declared header is the required Idempotency-Key. */
export const idempotencyKeyHeaders = z.looseObject({ [IDEMPOTENCY_KEY_HEADER]: requiredIdempotencyKey });

export interface IdempotencyDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  /** How long a retry waits for its twin in flight before 409. */
  readonly waitMs: number;
}

/**
 * What a key is bound to besides the body: the method, the route and the resource its path names.
 * The same key on another resource of one route (`/v1/bids/B/accept` after `/v1/bids/A/accept`,
 * both bodiless) is another request (422), while the same resource written in another case (ids
 * are accepted in either) is the same one (a replay).
 */
function scopeOf(request: FastifyRequest): string {
  const route = `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`;
  const params = Object.entries((request.params ?? {}) as Record<string, unknown>)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, value]) => `${name}=${String(value).toLowerCase()}`);
  return params.length === 0 ? route : `${route} ${params.join('&')}`;
}

const withoutEmpty = (body: unknown): unknown =>
  body === null ||
  (typeof body === 'object' && !Array.isArray(body) && Object.keys(body as object).length === 0)
    ? undefined
    : body;

export async function runIdempotentRoute(
  deps: IdempotencyDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  userId: UserId,
  effect: (trx: Transaction<Database>) => Promise<StoredResponse>,
  options: {
    /**
     * What the request means, when its parsed body says it in more than one way (a transition
     * without a message: no body, `null`, `{}` or `{"message": ""}`): hashed instead of the body,
     * so a retry that words it differently is a replay, not a 422.
     */
    readonly fingerprint?: unknown;
  } = {},
): Promise<FastifyReply> {
  const key = request.headers[IDEMPOTENCY_KEY_HEADER];
  const result = await runIdempotent(
    deps,
    {
      userId,
      key: typeof key === 'string' ? key : '',
      scope: scopeOf(request),
      // The parsed body (trimmed, defaults applied). No body, null and an empty object mean the
      // same, and hash as no body always did (keys stored by earlier versions still replay).
      body: 'fingerprint' in options ? options.fingerprint : withoutEmpty(request.body),
      waitMs: deps.waitMs,
    },
    effect,
  );
  if (result.replayed) reply.header(IDEMPOTENT_REPLAYED_HEADER, 'true');
  return reply.status(result.status).send(result.body);
}
