/** Polling for what a background worker does: the probe's first defined answer, or a named timeout. */
import { setTimeout as sleep } from 'node:timers/promises';

export async function untilDefined<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}
