/**
 * Ordered graceful shutdown (ARCHITECTURE.md §3.10): the composition root lists the steps in the order
 * they must run (stop accepting → close sockets → drain → close workers → quit Redis → destroy the
 * DB pool). A failing step is logged and the next one still runs; if the whole sequence outlives
 * its deadline the caller exits with 1 rather than hanging.
 */
import type { Logger } from './logger.js';

export interface ShutdownStep {
  readonly name: string;
  readonly run: () => Promise<void>;
}

export interface ShutdownResult {
  /** 0 when every step finished in time, 1 otherwise. */
  readonly exitCode: 0 | 1;
  readonly failedSteps: readonly string[];
}

export async function runShutdown(
  steps: readonly ShutdownStep[],
  options: { readonly log: Logger; readonly timeoutMs: number },
): Promise<ShutdownResult> {
  const failedSteps: string[] = [];
  const started = Date.now();
  const sequence = (async () => {
    for (const step of steps) {
      const stepStarted = Date.now();
      try {
        await step.run();
        options.log.debug({ step: step.name, ms: Date.now() - stepStarted }, 'shutdown step done');
      } catch (error) {
        failedSteps.push(step.name);
        options.log.error({ err: error, step: step.name }, 'shutdown step failed');
      }
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolvePromise) => {
    timer = setTimeout(() => resolvePromise('timeout'), options.timeoutMs);
  });
  const outcome = await Promise.race([sequence.then(() => 'done' as const), deadline]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    options.log.error({ timeoutMs: options.timeoutMs }, 'shutdown did not finish in time');
    return { exitCode: 1, failedSteps: [...failedSteps, 'deadline'] };
  }
  options.log.info({ ms: Date.now() - started, failedSteps }, 'shutdown complete');
  return { exitCode: failedSteps.length === 0 ? 0 : 1, failedSteps };
}
