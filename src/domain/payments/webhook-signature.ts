/**
 * Standard Webhooks v1 signatures (the provider → us webhook; the sandbox provider signs with
 * `signWebhook`): HMAC-SHA256 over `${webhook-id}.${webhook-timestamp}.${raw body}`, sent as a
 * space-separated list of `v1,<base64>` in `webhook-signature`. Verification works on the raw bytes
 * (never a re-serialized body), compares in constant time, accepts any of several secrets (rotation:
 * PAYMENTS_WEBHOOK_SECRETS) and any of several signatures, and refuses timestamps further than the
 * tolerance (300 s by default) in the past or the future. Replay of an accepted event inside the
 * window is stopped by deduplicating on `webhook-id`, not here.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Default timestamp tolerance, seconds, as Stripe and Standard Webhooks use. */
export const WEBHOOK_TOLERANCE_S = 300;

/** A secret as Standard Webhooks writes it: `whsec_` + base64 of ≥ 24 random bytes. */
export function decodeWebhookSecret(secret: string): Buffer {
  const base64 = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  const key = Buffer.from(base64, 'base64');
  if (key.length < 24) throw new RangeError('a webhook secret needs at least 24 bytes of key');
  return key;
}

const signatureOf = (key: Buffer, id: string, timestamp: string, body: Buffer) =>
  createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();

/** The `webhook-signature` header value for a message (`v1,<base64>`). */
export function signWebhook(input: {
  secret: string;
  id: string;
  timestamp: number;
  body: Buffer | string;
}): string {
  const body = typeof input.body === 'string' ? Buffer.from(input.body) : input.body;
  return `v1,${signatureOf(decodeWebhookSecret(input.secret), input.id, String(input.timestamp), body).toString('base64')}`;
}

export type WebhookRejection = 'missing-headers' | 'bad-timestamp' | 'too-old' | 'too-new' | 'bad-signature';

export type WebhookVerification =
  | { readonly ok: true; readonly id: string; readonly timestamp: number }
  | { readonly ok: false; readonly reason: WebhookRejection };

const TIMESTAMP = /^[1-9][0-9]{0,11}$/;
const MAX_ID_LENGTH = 256;

export function verifyWebhook(input: {
  /** Accepted secrets, newest first; any one may have signed. */
  readonly secrets: readonly string[];
  readonly headers: {
    readonly id: string | undefined;
    readonly timestamp: string | undefined;
    readonly signature: string | undefined;
  };
  /** The raw request body, exactly as received. */
  readonly body: Buffer;
  readonly now: Date;
  readonly toleranceS?: number;
}): WebhookVerification {
  const { id, timestamp, signature } = input.headers;
  if (id === undefined || timestamp === undefined || signature === undefined) {
    return { ok: false, reason: 'missing-headers' };
  }
  if (id.length === 0 || id.length > MAX_ID_LENGTH) return { ok: false, reason: 'missing-headers' };
  if (!TIMESTAMP.test(timestamp)) return { ok: false, reason: 'bad-timestamp' };
  const seconds = Number(timestamp);
  const nowS = Math.floor(input.now.getTime() / 1000);
  const tolerance = input.toleranceS ?? WEBHOOK_TOLERANCE_S;
  if (nowS - seconds > tolerance) return { ok: false, reason: 'too-old' };
  if (seconds - nowS > tolerance) return { ok: false, reason: 'too-new' };

  const offered = signature
    .split(' ')
    .filter((part) => part.startsWith('v1,'))
    .map((part) => Buffer.from(part.slice(3), 'base64'));
  for (const secret of input.secrets) {
    const expected = signatureOf(decodeWebhookSecret(secret), id, timestamp, input.body);
    // MUST: constant-time comparison, and only of equal lengths (timingSafeEqual throws otherwise).
    if (
      offered.some(
        (candidate) => candidate.length === expected.length && timingSafeEqual(candidate, expected),
      )
    ) {
      return { ok: true, id, timestamp: seconds };
    }
  }
  return { ok: false, reason: 'bad-signature' };
}
