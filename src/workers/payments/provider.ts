/**
 * The payment provider of this process (PAYMENTS_PROVIDER): today the sandbox, whose outcomes are
 * POSTed, signed, to our webhook endpoint (PUBLIC_URL, else this node's own address) over real HTTP.
 * Every call goes through a circuit breaker with a per-call timeout (PAYMENTS_PROVIDER_TIMEOUT_MS):
 * a provider that hangs or fails 5 times in a row gets 30 s of air, and the payments tasks retry
 * with backoff meanwhile. The calls are idempotent by payment id, so a call that timed out here but
 * went through there is answered the same when retried.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../../config/index.js';
import type { PaymentProvider, ProviderAnswer, ProviderEvent } from '../../domain/payments/provider.js';
import { createSandboxProvider } from '../../domain/payments/sandbox-provider.js';
import { type CircuitBreaker, createCircuitBreaker } from '../../platform/circuit-breaker.js';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import type { Timers } from '../../platform/timers.js';
import { createWebhookSender } from './webhook-sender.js';

export const WEBHOOK_PATH = '/v1/payments/webhook';
const FAILURE_THRESHOLD = 5;
const COOLDOWN_MS = 30_000;
/** "Sometimes twice": every 3rd sandbox event is delivered a second time. */
const DUPLICATE_EVERY = 3;
const DELIVERY_TIMEOUT_MS = 10_000;

export interface ProcessProvider {
  /** The provider behind the circuit breaker. */
  readonly provider: PaymentProvider;
  readonly breaker: CircuitBreaker;
  /** Cancels the sandbox's scheduled webhooks. */
  readonly stop: () => void;
}

/** Ids derived from what they name: the sandbox answers a payment the same way after a restart. */
const idFromSeed = (seed: string) => createHash('sha256').update(seed).digest('base64url').slice(0, 24);

export function createProcessProvider(deps: {
  readonly settings: Config['payments'];
  /** This node's base URL, known once it listens; used when PUBLIC_URL is unset. */
  readonly ownBaseUrl: () => string | undefined;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly log: Logger;
  /** Test seam: where the sandbox's events go instead of the signed HTTP POST. */
  readonly deliver?: (event: ProviderEvent) => Promise<void>;
}): ProcessProvider {
  const { settings, log } = deps;
  const webhookUrl = () => `${settings.webhookBaseUrl ?? deps.ownBaseUrl() ?? ''}${WEBHOOK_PATH}`;
  const sandbox = createSandboxProvider({
    timers: deps.timers,
    deliver:
      deps.deliver ??
      (async (event) => {
        const url = webhookUrl();
        try {
          await createWebhookSender({
            url,
            secret: settings.webhookSecrets[0] ?? '',
            clock: deps.clock,
            timeoutMs: DELIVERY_TIMEOUT_MS,
          })(event);
          log.info(
            { webhookId: event.id, type: event.type, paymentId: event.data.paymentId },
            'sandbox webhook delivered',
          );
        } catch (error) {
          log.warn(
            { err: error, webhookId: event.id, url },
            'sandbox webhook delivery failed; the sandbox retries',
          );
          throw error;
        }
      }),
    newId: idFromSeed,
    delayedWebhookMs: settings.sandboxWebhookDelayMs,
    duplicateEvery: DUPLICATE_EVERY,
  });
  // SANDBOX_LATENCY_MS: the request in transit (provider has not acted), then the answer in transit
  // (provider has acted, we do not know yet). A worker stopped in either half must not move money twice.
  const half = settings.sandboxLatencyMs / 2;
  const wait = (ms: number) => new Promise<void>((resolve) => deps.timers.schedule(ms, resolve));
  const withLatency =
    <R extends { paymentId: string }>(call: (request: R) => Promise<ProviderAnswer>) =>
    async (request: R): Promise<ProviderAnswer> => {
      if (half > 0) await wait(half);
      const answer = await call(request);
      log.info(
        {
          paymentId: request.paymentId,
          accepted: answer.accepted,
          ...(answer.accepted ? { providerRef: answer.providerRef } : { failureCode: answer.failureCode }),
        },
        'sandbox provider acted',
      );
      if (half > 0) await wait(half);
      return answer;
    };
  const charge = withLatency(sandbox.charge);
  const payout = withLatency(sandbox.payout);
  const breaker = createCircuitBreaker({
    timers: deps.timers,
    timeoutMs: settings.providerTimeoutMs,
    failureThreshold: FAILURE_THRESHOLD,
    cooldownMs: COOLDOWN_MS,
    onStateChange: (state) =>
      log[state === 'closed' ? 'info' : 'warn']({ state }, 'payment provider circuit breaker'),
  });
  return {
    provider: {
      charge: (request) => breaker.call(() => charge(request)),
      payout: (request) => breaker.call(() => payout(request)),
      resendOutcome: (request) => breaker.call(() => sandbox.resendOutcome(request)),
    },
    breaker,
    stop: () => sandbox.stop(),
  };
}
