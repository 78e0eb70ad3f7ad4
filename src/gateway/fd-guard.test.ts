import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../platform/logger.js';
import { startFdGuard } from './fd-guard.js';

describe('startFdGuard', () => {
  it('pauses below the reserve, listens again at twice it, and retries a failed resume', async () => {
    const calls: string[] = [];
    let resumeWorks = false;
    let open = 100;
    const metrics = new Registry();
    const guard = startFdGuard({
      listener: {
        pause: () => calls.push('pause'),
        resume: () => {
          calls.push('resume');
          return resumeWorks;
        },
      },
      reserve: 50,
      log: createLogger({ level: 'silent', pretty: false, destination: { write: () => undefined } }),
      metrics,
      intervalMs: 3_600_000,
      openFiles: () => open,
      maxFiles: () => 1_000,
    });
    const paused = async () =>
      (await metrics.getSingleMetric('gigwire_ws_listener_paused')?.get())?.values[0]?.value;
    await guard.check();
    expect(calls).toEqual([]);
    open = 960;
    await guard.check();
    await guard.check();
    expect(calls).toEqual(['pause']);
    expect(await paused()).toBe(1);
    open = 920; // 80 free: above the reserve, below twice it
    await guard.check();
    expect(calls).toEqual(['pause']);
    open = 900;
    await guard.check();
    expect(calls).toEqual(['pause', 'resume']);
    expect(await paused()).toBe(1);
    resumeWorks = true;
    await guard.check();
    expect(calls).toEqual(['pause', 'resume', 'resume']);
    expect(await paused()).toBe(0);
    guard.stop();
  });
});
