/**
 * The sandbox provider's way out: each event is POSTed over real HTTP to our webhook endpoint,
 * signed as Standard Webhooks v1 (webhook-id / webhook-timestamp / webhook-signature) with the
 * current secret, exactly as a real provider would call us. A non-2xx answer or no answer within
 * `timeoutMs` rejects, and the sandbox retries later.
 */
import type { ProviderEvent } from '../../domain/payments/provider.js';
import { signWebhook } from '../../domain/payments/webhook-signature.js';
import type { Clock } from '../../platform/clock.js';

export function createWebhookSender(deps: {
  /** Our endpoint, e.g. http://127.0.0.1:3000/v1/payments/webhook. */
  readonly url: string;
  /** The secret to sign with (`whsec_…`), the first of PAYMENTS_WEBHOOK_SECRETS. */
  readonly secret: string;
  readonly clock: Clock;
  readonly timeoutMs: number;
}): (event: ProviderEvent) => Promise<void> {
  return async (event) => {
    const body = JSON.stringify(event);
    const timestamp = Math.floor(deps.clock.now().getTime() / 1000);
    const response = await fetch(deps.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': event.id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signWebhook({ secret: deps.secret, id: event.id, timestamp, body }),
      },
      body,
      signal: AbortSignal.timeout(deps.timeoutMs),
    });
    // Drain the body so the connection is reused.
    await response.arrayBuffer();
    if (!response.ok) throw new Error(`webhook answered ${response.status}`);
  };
}
