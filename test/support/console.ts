/** Helpers of the operators' console tests: form sign-in, cookies, and a task that fails for real. */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createTaskQueue, type TaskQueue } from '../../src/platform/queues/tasks.js';

/** POSTs the sign-in form as a same-origin browser would (unless `headers` says otherwise). */
export function consoleSignIn(
  baseUrl: string,
  form: { login: string; password: string; next?: string },
  headers: Record<string, string> = { origin: baseUrl, 'sec-fetch-site': 'same-origin' },
): Promise<Response> {
  return fetch(`${baseUrl}/admin/sign-in`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
}

/** `name=value` of the console cookie a response sets (for a Cookie header), or undefined. */
export function consoleCookie(response: Response): string | undefined {
  const header = response.headers.get('set-cookie');
  const match = header === null ? null : /^((?:__Host-)?gigwire_console=[^;]+)/.exec(header);
  return match?.[1];
}

/** A producer on the node's queues (same Redis and prefix), for tests to put tasks in. */
export function testTaskQueue(
  redisUrl: string,
  redisPrefix: string,
): TaskQueue & { readonly quit: () => Promise<void> } {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const taskQueue = createTaskQueue(connection, redisPrefix);
  return {
    ...taskQueue,
    quit: async () => {
      await taskQueue.close();
      connection.disconnect();
    },
  };
}

export const queueNamed = (taskQueue: TaskQueue, name: string): Queue => {
  const queue = taskQueue.queues().find((q) => q.name === name);
  if (queue === undefined) throw new Error(`no queue ${name}`);
  return queue;
};

/** Waits (up to 20 s) until the task is in `state`; returns the task. */
export async function waitForTaskState(queue: Queue, taskId: string, state: string, minAttempts = 0) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const job = await queue.getJob(taskId);
    if (job !== undefined && (await job.getState()) === state && job.attemptsMade >= minAttempts) return job;
    if (Date.now() > deadline) throw new Error(`task ${taskId} never reached ${state}`);
    await sleep(50);
  }
}

/**
 * A payments.escrow task for a contract that does not exist: the node's payments worker fails it
 * unrecoverably at once, so it lands (exhausted) in the failed set. Returns its task id.
 */
export async function failedEscrowTask(taskQueue: TaskQueue): Promise<string> {
  const key = `console-test.${randomUUID()}`;
  await taskQueue.enqueue('payments.escrow', { contractId: randomUUID(), action: 'release' }, key);
  await waitForTaskState(queueNamed(taskQueue, 'payments'), key, 'failed', 1);
  return key;
}
