/**
 * Contracts (issue 12 §3–4): accepting a bid, the parties' transitions, the admin's resolve, and
 * reading them. Every POST needs an `Idempotency-Key` and runs its domain call inside the key's
 * transaction, so a retried request replays the first answer and the contract moves once.
 * `If-Match: "<version>"` on a transition refuses it (409 VERSION_MISMATCH) when the contract moved.
 * The accept REQUIRES `If-Match: "<bid version>"` (missing → 400): escrow holds only the terms the
 * hirer saw, never an amount the worker raised since (→ 409 VERSION_MISMATCH, nothing held).
 */

import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { Problem } from '../../../protocol/src/rest/common.js';
import {
  ContractDetail,
  ContractIdParams,
  ContractListQuery,
  ContractPage,
  Contract as ContractSchema,
  ResolveRequest,
  TransitionRequest,
} from '../../../protocol/src/rest/contracts.js';
import { BidIdParams } from '../../../protocol/src/rest/jobs.js';
import type { ContractEvent } from '../../domain/marketplace/contract-process.js';
import {
  acceptBidIn,
  type Contract,
  type ContractDeps,
  type ContractTransition,
  fireIn,
  getContract,
  myContracts,
} from '../../domain/marketplace/contracts.js';
import type { AnnounceWalletChange } from '../../domain/payments/wallet-service.js';
import {
  IDEMPOTENCY_KEY_HEADER,
  type IdempotencyDeps,
  requiredIdempotencyKey,
  runIdempotentRoute,
} from '../idempotency.js';
import { principalOf } from '../plugins/auth.js';
import { ifMatchHeader, ifMatchVersion, requiredIfMatchVersion } from './jobs.js';

export interface ContractRoutesDeps {
  readonly contracts: ContractDeps;
  readonly idempotency: IdempotencyDeps;
  /** Tells the hirer's sockets their balance changed (an accept moves money into escrow). */
  readonly announce?: AnnounceWalletChange;
}

const errors = { 400: Problem, 401: Problem, 403: Problem, 404: Problem };
const changeErrors = { ...errors, 409: Problem, 422: Problem };
const iso = (date: Date | null) => (date === null ? null : date.toISOString());

export const contractBody = (contract: Contract) => ({
  id: contract.id,
  jobId: contract.jobId,
  bidId: contract.bidId,
  hirerId: contract.hirerId,
  workerId: contract.workerId,
  title: contract.title,
  amount: Number(contract.amount),
  currency: contract.currency,
  deliveryDays: contract.deliveryDays,
  state: contract.state,
  version: contract.version,
  deliveries: contract.deliveries,
  roomId: contract.roomId,
  dueAt: contract.dueAt.toISOString(),
  deliveredAt: iso(contract.deliveredAt),
  autoApproveAt: iso(contract.autoApproveAt),
  completedAt: iso(contract.completedAt),
  cancelledAt: iso(contract.cancelledAt),
  disputedAt: iso(contract.disputedAt),
  resolvedAt: iso(contract.resolvedAt),
  reviewDeadlineAt: iso(contract.reviewDeadlineAt),
  createdAt: contract.createdAt.toISOString(),
  updatedAt: contract.updatedAt.toISOString(),
});

const transitionBody = (transition: ContractTransition) => ({
  version: transition.version,
  event: transition.event,
  from: transition.from,
  to: transition.to,
  actor: transition.actor,
  actorId: transition.actorId,
  ...(typeof transition.payload.message === 'string' ? { message: transition.payload.message } : {}),
  at: transition.at.toISOString(),
});

const idempotentHeaders = z.looseObject({
  [IDEMPOTENCY_KEY_HEADER]: requiredIdempotencyKey,
  'if-match': ifMatchHeader,
});

/** The accept's headers: If-Match is required (the bid version the hirer saw). */
const acceptHeaders = z.looseObject({
  [IDEMPOTENCY_KEY_HEADER]: requiredIdempotencyKey,
  'if-match': z
    .string({ error: 'required: the version of the bid you saw, e.g. "3" (the bid\'s `version`)' })
    .describe(
      'Required: the bid `version` the hirer saw, e.g. `"3"`. A bid changed since (amount or days) → 409 VERSION_MISMATCH and nothing is held.',
    ),
});

/** The parties' transitions: path segment → event of the process table. */
const PARTY_TRANSITIONS: readonly {
  path: string;
  event: ContractEvent;
  operationId: string;
  summary: string;
}[] = [
  {
    path: 'deliver',
    event: 'deliver',
    operationId: 'deliverContract',
    summary: 'Deliver the work (worker; active → delivered)',
  },
  {
    path: 'request-changes',
    event: 'request_changes',
    operationId: 'requestContractChanges',
    summary:
      'Ask for changes (hirer; delivered → active, before autoApproveAt: after it → 409 INVALID_TRANSITION, guard beforeAutoApprove)',
  },
  {
    path: 'approve',
    event: 'approve',
    operationId: 'approveContract',
    summary: 'Approve the delivery (hirer; delivered → completed, escrow released to the worker)',
  },
  {
    path: 'cancel',
    event: 'cancel',
    operationId: 'cancelContract',
    summary: 'Cancel before any delivery (either party; active → cancelled, escrow refunded)',
  },
  {
    path: 'dispute',
    event: 'dispute',
    operationId: 'disputeContract',
    summary:
      'Open a dispute (either party; active or delivered → disputed; a delivery only before autoApproveAt: after it → 409 INVALID_TRANSITION, guard beforeAutoApprove)',
  },
];

export function registerContractRoutes(app: FastifyInstance, deps: ContractRoutesDeps): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const c = deps.contracts;

  r.post('/v1/bids/:id/accept', {
    config: { auth: 'user' },
    schema: {
      operationId: 'acceptBid',
      tags: ['contracts'],
      summary:
        "Accept a bid (the job's hirer) at the version seen (If-Match required): escrow holds the amount, the other bids are rejected, the contract starts",
      description: [
        '`If-Match: "<bid version>"` is required: the `version` of the bid as the hirer saw it (GET /v1/jobs/:id lists the bids with theirs).',
        'Missing, malformed or `*` (any version: the very thing this header rules out) → 400 VALIDATION_FAILED naming `headers.if-match`.',
        'If the worker changed the amount or the days since, the bid is at another version → 409 CONFLICT with `reason: VERSION_MISMATCH` and the current `version`; nothing is held: read the bid again and show it before accepting.',
        'Not enough money → 409 INSUFFICIENT_FUNDS with the `shortfall`.',
        "A job priced in another currency than the platform's (CURRENCY changed since it was posted) → 409 CONFLICT with `reason: CURRENCY_MISMATCH`; nothing is held.",
        '`Idempotency-Key` is required: a retry with the same key replays the first answer.',
      ].join(' '),
      params: BidIdParams,
      headers: acceptHeaders,
      response: { 201: ContractSchema, ...changeErrors },
    },
    handler: async (request, reply) => {
      const actor = principalOf(request);
      // Required by the schema (missing → 400 before this runs); malformed or `*` → 400 here.
      const seen = requiredIfMatchVersion(request.headers['if-match'], 'bid');
      const sent = await runIdempotentRoute(deps.idempotency, request, reply, actor.userId, async (trx) => ({
        status: 201,
        body: contractBody(await acceptBidIn(trx, c, actor, request.params.id, seen)),
      }));
      // After the commit: the escrow hold took the amount from the hirer's available balance.
      if (reply.statusCode === 201) deps.announce?.([actor.userId]);
      return sent;
    },
  });

  for (const transition of PARTY_TRANSITIONS) {
    r.post(`/v1/contracts/:id/${transition.path}`, {
      config: { auth: 'user' },
      schema: {
        operationId: transition.operationId,
        tags: ['contracts'],
        summary: transition.summary,
        params: ContractIdParams,
        headers: idempotentHeaders,
        body: TransitionRequest.nullish(),
        response: { 200: ContractSchema, ...changeErrors },
      },
      handler: async (request, reply) => {
        const actor = principalOf(request);
        const expectedVersion = ifMatchVersion(request.headers['if-match'], 'contract');
        // An empty message is no message (fireIn drops it): it hashes alike for the retry.
        const message = request.body?.message || undefined;
        return runIdempotentRoute(
          deps.idempotency,
          request,
          reply,
          actor.userId,
          async (trx) => ({
            status: 200,
            body: contractBody(
              await fireIn(trx, c, actor, request.params.id, transition.event, {
                ...(message === undefined ? {} : { message }),
                ...(expectedVersion === undefined ? {} : { expectedVersion }),
              }),
            ),
          }),
          { fingerprint: message === undefined ? undefined : { message } },
        );
      },
    });
  }

  r.post('/v1/admin/contracts/:id/resolve', {
    config: { auth: 'admin' },
    schema: {
      operationId: 'resolveContract',
      tags: ['contracts', 'admin'],
      summary: 'Resolve a dispute (admins): split the escrow; toWorker + toHirer must equal it',
      params: ContractIdParams,
      headers: idempotentHeaders,
      body: ResolveRequest,
      response: { 200: ContractSchema, ...changeErrors },
    },
    handler: async (request, reply) => {
      const actor = principalOf(request);
      const expectedVersion = ifMatchVersion(request.headers['if-match'], 'contract');
      const { toWorker, toHirer, message } = request.body;
      return runIdempotentRoute(deps.idempotency, request, reply, actor.userId, async (trx) => ({
        status: 200,
        body: contractBody(
          await fireIn(trx, c, actor, request.params.id, 'resolve', {
            split: { toWorker: BigInt(toWorker), toHirer: BigInt(toHirer) },
            ...(message === undefined ? {} : { message }),
            ...(expectedVersion === undefined ? {} : { expectedVersion }),
          }),
        ),
      }));
    },
  });

  r.get('/v1/contracts/:id', {
    config: { auth: 'user' },
    schema: {
      operationId: 'getContract',
      tags: ['contracts'],
      summary: 'A contract with its history of transitions (its parties and admins only)',
      params: ContractIdParams,
      response: { 200: ContractDetail, ...errors },
    },
    handler: async (request) => {
      const detail = await getContract(c, principalOf(request), request.params.id);
      return {
        ...contractBody(detail.contract),
        transitions: detail.transitions.map(transitionBody),
        available: [...detail.available],
      };
    },
  });

  r.get('/v1/me/contracts', {
    config: { auth: 'user' },
    schema: {
      operationId: 'listMyContracts',
      tags: ['contracts'],
      summary: 'Your contracts as hirer or worker, newest first',
      querystring: ContractListQuery,
      response: { 200: ContractPage, ...errors },
    },
    handler: async (request) => {
      const q = request.query;
      const page = await myContracts(c, principalOf(request), {
        ...(q.state === undefined ? {} : { states: q.state }),
        ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
        limit: q.limit,
      });
      return { data: page.data.map(contractBody), nextCursor: page.nextCursor };
    },
  });
}
