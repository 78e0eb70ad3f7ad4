/**
 * The caller's wallet (issue 11 §4): balance, history, transfers to another user (Idempotency-Key
 * required; the ledger operation is keyed by the same key, so even a lost idempotency row could not
 * move the money twice), and the ledger audit for admins.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { Problem } from '../../../protocol/src/rest/common.js';
import {
  LedgerAudit,
  LedgerAuditQuery,
  TransferRequest,
  TransferResponse,
  Wallet,
  WalletLines,
  WalletLinesQuery,
} from '../../../protocol/src/rest/payments.js';
import { OPERATION_KEY_REUSED } from '../../domain/payments/ledger.js';
import type { AnnounceWalletChange, WalletApi } from '../../domain/payments/wallet-service.js';
import { AppError, isAppError } from '../../platform/errors.js';
import type { WindowCounter } from '../../platform/window-counter.js';
import {
  IDEMPOTENCY_KEY_HEADER,
  type IdempotencyDeps,
  idempotencyKeyHeaders,
  runIdempotentRoute,
} from '../idempotency.js';
import { principalOf } from '../plugins/auth.js';

const errors = { 400: Problem, 401: Problem, 403: Problem };
const tags = ['wallet'];

export interface WalletRoutesDeps {
  readonly wallet: WalletApi;
  readonly idempotency: IdempotencyDeps;
  /** Tells the users' sockets their balance changed (after the commit). */
  readonly announce?: AnnounceWalletChange;
  /**
   * Transfers one user may send per minute, counted across nodes: each notifies its receiver
   * (stored, pushed, mailed), and one-cent transfers by the thousand would flood them.
   */
  readonly transferLimit?: { readonly counter: WindowCounter; readonly perMinute: number };
}

const MINUTE_MS = 60_000;

export function registerWalletRoutes(app: FastifyInstance, deps: WalletRoutesDeps): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { wallet } = deps;

  r.get('/v1/wallet', {
    config: { auth: 'user' },
    schema: {
      operationId: 'getWallet',
      tags,
      summary:
        'Your balance: available (spendable now), pending (reserved by withdrawals), posted, parked (received while at the balance limit, added once there is room)',
      response: { 200: Wallet, ...errors },
    },
    handler: async (request) => wallet.balance(principalOf(request).userId),
  });

  r.get('/v1/wallet/transactions', {
    config: { auth: 'user' },
    schema: {
      operationId: 'listWalletTransactions',
      tags,
      summary: 'Your wallet history, newest first, with the reason and the other party of each line',
      querystring: WalletLinesQuery,
      response: { 200: WalletLines, ...errors },
    },
    handler: async (request) => {
      const page = await wallet.history(principalOf(request).userId, {
        cursor: request.query.cursor,
        limit: request.query.limit,
      });
      return {
        data: page.data.map((line) => ({
          ...line,
          amount: Number(line.amount),
          balanceAfter: Number(line.balanceAfter),
          createdAt: line.createdAt.toISOString(),
        })),
        nextCursor: page.nextCursor,
      };
    },
  });

  r.post('/v1/wallet/transfers', {
    config: { auth: 'user' },
    schema: {
      operationId: 'createTransfer',
      tags,
      summary: 'Send money to another user at once (Idempotency-Key required)',
      headers: idempotencyKeyHeaders,
      body: TransferRequest,
      response: { 201: TransferResponse, ...errors, 404: Problem, 409: Problem, 422: Problem, 429: Problem },
    },
    handler: async (request, reply) => {
      const { userId } = principalOf(request);
      const key = String(request.headers[IDEMPOTENCY_KEY_HEADER] ?? '');
      const limit = deps.transferLimit;
      if (limit !== undefined) {
        // Counted before the work (a retried key counts too: the limit leaves room for retries).
        const used = await limit.counter.hit(`transfers:${userId}`, MINUTE_MS);
        if (used.count > limit.perMinute) {
          throw new AppError('RATE_LIMITED', `at most ${limit.perMinute} transfers a minute`, {
            details: { retryAfterS: Math.max(1, Math.ceil(used.resetInMs / 1000)) },
          });
        }
      }
      const sent = await runIdempotentRoute(deps.idempotency, request, reply, userId, async (trx) => ({
        status: 201,
        body: {
          transaction: await wallet
            .transferIn(trx, userId, request.body, `transfer:${userId}:${key}`)
            .catch((error: unknown) => {
              // The ledger binds the key to its first transfer for good; the key's record (≥ 24 h)
              // may be gone, but another transfer under it is still another request.
              if (isAppError(error) && error.details?.reason === OPERATION_KEY_REUSED) {
                throw new AppError(
                  'IDEMPOTENCY_KEY_REUSED',
                  'this Idempotency-Key was used for another transfer',
                  {
                    cause: error,
                  },
                );
              }
              throw error;
            }),
        },
      }));
      // After the commit; a replayed answer moved nothing new, but repeating the push is harmless.
      if (reply.statusCode === 201) deps.announce?.([userId, request.body.toUserId]);
      return sent;
    },
  });

  r.get('/v1/admin/ledger/audit', {
    config: { auth: 'admin' },
    schema: {
      operationId: 'auditLedger',
      tags: ['admin'],
      summary:
        'Checks every ledger invariant now and lists what is violated (empty when the books are right)',
      querystring: LedgerAuditQuery,
      response: { 200: LedgerAudit, ...errors },
    },
    handler: async () => {
      const audit = await wallet.audit();
      return {
        ...audit,
        findings: audit.findings.map((finding) => ({ ...finding, details: { ...finding.details } })),
      };
    },
  });
}
