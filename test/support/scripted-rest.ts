/**
 * The SDK's REST client configured as web/src/api.ts configures it, over a fetch that answers with
 * the next step of a script: for tests of web/src/outcome.ts in Node (what keeps or drops a money
 * command's Idempotency-Key), without a server.
 */
import { vi } from 'vitest';
import { createRestClient } from '../../protocol/src/client/rest.js';

/** The client, and the Idempotency-Key each call sent (undefined: none). */
export function scriptedRest(
  steps: (() => Response | Promise<Response>)[],
  accessToken: () => Promise<string>,
  attempts?: number,
) {
  const keys: (string | undefined)[] = [];
  const fetch = vi.fn(async (_input: unknown, init: RequestInit = {}) => {
    keys.push((init.headers as Record<string, string>)['idempotency-key']);
    const step = steps.shift();
    if (step === undefined) throw new Error('the script ran out');
    return step();
  });
  const client = createRestClient({
    baseUrl: 'http://app.test',
    accessToken,
    fetch: fetch as unknown as typeof globalThis.fetch,
    retry: { maxRetryAfterMs: 5_000, baseDelayMs: 1, ...(attempts === undefined ? {} : { attempts }) },
  });
  return { client, keys };
}

/** A step whose answer is lost (the request may have reached the server). */
export const lostAnswer = () => Promise.reject(new TypeError('fetch failed'));

/** A step answered with a problem+json of `status` and `code`. */
export const problemAnswer = (status: number, code: string, headers: Record<string, string> = {}) =>
  Response.json({ type: 'about:blank', title: code, status, code, detail: code }, { status, headers });
