/**
 * Lost revocation announcements, for tests of the 1 s revocation guarantee: a node whose real Redis
 * bus drops every SESSIONS_REVOKED_TOPIC message, and the check that such a node refuses a revoked
 * token once the bound has passed anyway.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import { SESSIONS_REVOKED_TOPIC } from '../../src/domain/auth/service.js';
import type { Bus } from '../../src/platform/bus/bus.js';
import { httpClient } from './http.js';

/** How long a node may still serve a revoked session (the guarantee under test). */
export const REVOCATION_BOUND_MS = 1_000;

/** `wrap` (StartNodeOptions.wrapBus) drops the node's revocation messages; `dropped` counts them. */
export function droppingRevocations(): { wrap: (bus: Bus) => Bus; dropped: () => number } {
  let dropped = 0;
  return {
    wrap: (bus) => ({
      ...bus,
      subscribe: (topic, handler) =>
        bus.subscribe(
          topic,
          topic === SESSIONS_REVOKED_TOPIC
            ? () => {
                dropped += 1;
              }
            : handler,
        ),
    }),
    dropped: () => dropped,
  };
}

/**
 * Asks `baseUrl` for GET /v1/me with the revoked token until it is refused: every request sent once
 * the bound has passed since `revokedAt` must get 401; earlier ones may still get 200.
 */
export async function expectRefusedAfterBound(
  baseUrl: string,
  token: string,
  revokedAt: number,
): Promise<void> {
  const api = httpClient(baseUrl);
  for (;;) {
    const sentAt = Date.now();
    const status = (await api.get('/v1/me', token)).status;
    if (status === 401) return;
    expect(status).toBe(200);
    expect(sentAt - revokedAt, 'a request sent after the bound was still served').toBeLessThan(
      REVOCATION_BOUND_MS,
    );
    await sleep(50);
  }
}
