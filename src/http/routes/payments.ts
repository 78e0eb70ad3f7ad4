/**
 * Payments through the provider (issue 11 §4): top-ups and withdrawals (202, settled later by the
 * provider's webhook), a user's own payment, the admin list, and the provider's webhook endpoint.
 * The two POSTs that move money require an Idempotency-Key (stored in the transaction of the effect).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { Problem } from '../../../protocol/src/rest/common.js';
import {
  AdminPaymentPage,
  AdminPaymentsQuery,
  PaymentIdParams,
  PaymentResponse,
  TopUpRequest,
  VoidParkedRequest,
  VoidParkedResponse,
  WebhookAck,
  WithdrawalRequest,
} from '../../../protocol/src/rest/payments.js';
import type { PaymentsApi } from '../../domain/payments/payments-service.js';
import type { AnnounceWalletChange } from '../../domain/payments/wallet-service.js';
import {
  IDEMPOTENCY_KEY_HEADER,
  IDEMPOTENT_REPLAYED_HEADER,
  type IdempotencyDeps,
  idempotencyKeyHeaders,
  runIdempotentRoute,
} from '../idempotency.js';
import { principalOf } from '../plugins/auth.js';

const errors = { 400: Problem, 401: Problem, 403: Problem, 404: Problem };
const postErrors = { ...errors, 409: Problem, 422: Problem };
const tags = ['payments'];

export interface PaymentRoutesDeps {
  readonly payments: PaymentsApi;
  readonly idempotency: IdempotencyDeps;
  /** Tells the user's sockets their balance changed (a withdrawal reserves at once). */
  readonly announce?: AnnounceWalletChange;
}

const header = (request: FastifyRequest, name: string): string | undefined => {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
};

/** The request's Idempotency-Key (checked by `runIdempotentRoute` before the effect runs). */
const keyOf = (request: FastifyRequest): string => header(request, IDEMPOTENCY_KEY_HEADER) ?? '';

export function registerPaymentRoutes(app: FastifyInstance, deps: PaymentRoutesDeps): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { payments } = deps;

  r.post('/v1/wallet/top-ups', {
    config: { auth: 'user' },
    schema: {
      operationId: 'createTopUp',
      tags,
      summary: 'Add money to your wallet from a card (settled by the provider later: poll the payment)',
      headers: idempotencyKeyHeaders,
      body: TopUpRequest,
      response: { 202: PaymentResponse, ...postErrors },
    },
    handler: async (request, reply) => {
      const { userId } = principalOf(request);
      return runIdempotentRoute(deps.idempotency, request, reply, userId, async (trx) => ({
        status: 202,
        body: { payment: await payments.requestTopUpIn(trx, userId, request.body, keyOf(request)) },
      }));
    },
  });

  r.post('/v1/wallet/withdrawals', {
    config: { auth: 'user' },
    schema: {
      operationId: 'createWithdrawal',
      tags,
      summary:
        'Pay money out to a bank account: reserved at once (409 INSUFFICIENT_FUNDS otherwise), settled by the provider later',
      headers: idempotencyKeyHeaders,
      body: WithdrawalRequest,
      response: { 202: PaymentResponse, ...postErrors },
    },
    handler: async (request, reply) => {
      const { userId } = principalOf(request);
      const sent = await runIdempotentRoute(deps.idempotency, request, reply, userId, async (trx) => ({
        status: 202,
        body: { payment: await payments.requestWithdrawalIn(trx, userId, request.body, keyOf(request)) },
      }));
      if (reply.statusCode === 202) deps.announce?.([userId]);
      return sent;
    },
  });

  r.get('/v1/payments/:id', {
    config: { auth: 'user' },
    schema: {
      operationId: 'getPayment',
      tags,
      summary: "One of your payments (another user's is 404)",
      params: PaymentIdParams,
      response: { 200: PaymentResponse, ...errors },
    },
    handler: async (request) => ({
      payment: await payments.get(principalOf(request).userId, request.params.id),
    }),
  });

  r.get('/v1/admin/payments', {
    config: { auth: 'admin' },
    schema: {
      operationId: 'listPayments',
      tags: ['admin'],
      summary: 'Every payment, newest first, optionally of one status',
      querystring: AdminPaymentsQuery,
      response: { 200: AdminPaymentPage, ...errors },
    },
    handler: async (request) => payments.list(request.query),
  });

  r.post('/v1/admin/payments/:id/void-parked', {
    config: { auth: 'admin' },
    schema: {
      operationId: 'voidParkedTopUp',
      tags: ['admin'],
      summary:
        'After refunding it at the provider: ends a top-up parked for an operator (failureCode currency_mismatch or amount_mismatch) by voiding its hold (Idempotency-Key required). 409 CONFLICT reason NOT_PARKED for any other payment, ALREADY_VOIDED the second time',
      headers: idempotencyKeyHeaders,
      params: PaymentIdParams,
      body: VoidParkedRequest,
      response: { 200: VoidParkedResponse, ...postErrors },
    },
    handler: async (request, reply) => {
      const by = principalOf(request).userId;
      const sent = await runIdempotentRoute(deps.idempotency, request, reply, by, async (trx) => ({
        status: 200,
        body: await payments.voidParkedIn(trx, request.params.id),
      }));
      if (reply.statusCode === 200 && reply.getHeader(IDEMPOTENT_REPLAYED_HEADER) === undefined) {
        // Who settled which charge, with the provider's refund reference: the operator's record
        // next to the ledger's (the hold voided, with its instant).
        request.log.info(
          { by, paymentId: request.params.id, refundRef: request.body.refundRef },
          'parked top-up voided by an admin after its refund at the provider',
        );
      }
      return sent;
    },
  });

  // The webhook is verified on the exact bytes received: in this scope only, a JSON body stays a
  // Buffer (no parse and re-serialize, which could change what was signed).
  void app.register(async (scope) => {
    // The app's strict-UTF-8 JSON parser (input-guard.ts) is inherited: this scope replaces it.
    scope.removeContentTypeParser('application/json');
    // Fastify's own text/plain parser would hand the handler a string, checked as an empty body: a
    // correctly signed event was answered 401 "bad-signature". Unread, it is 415 like any other type.
    scope.removeContentTypeParser('text/plain');
    // A string is one exact media type to fastify ('application/*+json' matched only itself): the
    // structured-syntax `+json` types (RFC 6839, e.g. application/webhook+json) need a pattern.
    for (const type of ['application/json', /^application\/[a-z0-9!#$&^_.-]+\+json(?:\s*;.*)?$/]) {
      scope.addContentTypeParser(type, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    }
    scope.withTypeProvider<ZodTypeProvider>().post('/v1/payments/webhook', {
      // Not counted by the per-IP REST limit: the provider sends from a few addresses, in bursts
      // after an outage of ours (its retries of a backlog), and a 429 only delays money moving. A
      // request without a valid signature costs one HMAC before it is refused.
      config: { auth: 'public', perIpLimited: false },
      schema: {
        operationId: 'receivePaymentWebhook',
        tags,
        summary:
          "The payment provider's events, Standard Webhooks signed (webhook-id, webhook-timestamp, webhook-signature; 300 s tolerance); an authentic event of a type not handled here is acknowledged 200 `ignored`, so the provider stops redelivering it",
        response: { 200: WebhookAck, 400: Problem, 401: Problem, 415: Problem },
      },
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const outcome = await payments.receiveWebhook({
          headers: {
            id: header(request, 'webhook-id'),
            timestamp: header(request, 'webhook-timestamp'),
            signature: header(request, 'webhook-signature'),
          },
          body,
        });
        return reply.status(200).send({ received: true as const, outcome });
      },
    });
  });
}
