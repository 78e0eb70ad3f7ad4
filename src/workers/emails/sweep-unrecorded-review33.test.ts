/**
 * Review 33: the lost-mail sweep skipped a pending mail whose task failed for good after the SMTP
 * server accepted it (`email sent but not recorded:`, neither the database nor Redis took the
 * record), so the mail stayed `pending` for good. The sweep now records it `sent`, never sends it.
 * And a retry of such a task that failed three times before recording it (the database still down)
 * had its kept stack traces (the last 3) forget the send: the 4th attempt sent it again.
 */
import { expect, it } from 'vitest';
import type { UserId } from '../../../protocol/src/ids.js';
import { createLogger } from '../../platform/logger.js';
import type { TaskQueue } from '../../platform/queues/tasks.js';
import type { Redis } from '../../platform/redis.js';
import { emailsTableTwin, pendingWelcomeMail, recordingWorkerDeps } from './emails-table.testing.js';
import {
  type EmailWorkerDeps,
  recordFinalEmailFailure,
  requeueLostEmails,
  sendEmailTask,
} from './processor.js';

const log = createLogger({ level: 'fatal', pretty: false, destination: { write: () => undefined } });

it('records sent, and queues nothing for, a pending mail whose failed task says the server accepted it', async () => {
  const row = pendingWelcomeMail('r33.welcome', 3_600_000);
  const twin = emailsTableTwin(row);
  // The sweep's page read: the row while it is pending.
  const page = {
    select: () => page,
    where: () => page,
    orderBy: () => page,
    limit: () => page,
    execute: async () => (row.status === 'pending' ? [row] : []),
  };
  const db = { selectFrom: () => page, updateTable: twin.db.updateTable } as unknown as EmailWorkerDeps['db'];
  const enqueued: string[] = [];
  const queue = {
    name: 'emails',
    getJobState: async () => 'failed',
    getJob: async () => ({
      failedReason: 'email sent but not recorded: Connection terminated unexpectedly',
    }),
  };
  const taskQueue = {
    queues: () => [queue],
    enqueue: async (_name: string, _payload: unknown, key: string) => void enqueued.push(key),
  } as unknown as Pick<TaskQueue, 'enqueue' | 'queues'>;
  const connection = { exists: async () => 0, del: async () => 0 } as unknown as Redis;
  const deps = { db, clock: { now: () => new Date() }, log, connection, redisPrefix: 'r33' };

  expect(await requeueLostEmails(deps, taskQueue)).toBe(0);
  expect(enqueued).toEqual([]);
  expect(row).toMatchObject({ status: 'sent', text_body: null, html_body: null });
});

it('a retried sent-unrecorded task whose runs keep failing still remembers the send, and is never recorded failed', async () => {
  const row = pendingWelcomeMail('r33.welcome', 60_000);
  const twin = emailsTableTwin(row);
  let databaseDown = true;
  const db = {
    selectFrom: (table: string) => {
      if (databaseDown) throw new Error('Connection terminated unexpectedly');
      return twin.db.selectFrom(table as 'emails');
    },
    updateTable: twin.db.updateTable,
  } as unknown as EmailWorkerDeps['db'];
  const { deps, sent } = recordingWorkerDeps(db, 'r33');
  const payload = { template: 'welcome', userId: row.user_id as UserId, key: 'r33.welcome' } as const;
  // BullMQ's kept traces (stackTraceLimit 3) of the task retried from the console.
  let traces = [
    'Error: 421 try later\n    at send',
    'Error: 421 try later\n    at send',
    'UnrecoverableError: email sent but not recorded: Connection terminated\n    at recordSent',
  ];
  let last: Error | undefined;
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    last = await sendEmailTask(deps, payload, traces).then(
      () => undefined,
      (failure: Error) => failure,
    );
    expect(last).toBeInstanceOf(Error);
    traces = [...traces, last?.stack ?? ''].slice(-3);
  }
  databaseDown = false;
  // Had it been its last attempt: not recorded `failed` (a failed mail is sent again by an enqueue).
  await recordFinalEmailFailure(deps, { id: 'r33.welcome', data: payload }, last as Error);
  expect(row.status).toBe('pending');
  await sendEmailTask(deps, payload, traces);
  expect(sent).toHaveLength(0);
  expect(row).toMatchObject({ status: 'sent' });
});
