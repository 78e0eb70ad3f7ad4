/**
 * Review 29: the record of a task out of attempts (or failed for good) on a mail that another run
 * of the same key (an enqueue of the key, an operator's retry) sent meanwhile. The `emails` table is
 * a twin holding one row: reads answer it, updates apply their `set` to it where their `where`s hold.
 */
import { describe, expect, it } from 'vitest';
import type { EmailId, UserId } from '../../../protocol/src/ids.js';
import type { EmailRow } from '../../db/repositories/outbox.repo.js';
import { createLogger } from '../../platform/logger.js';
import { type EmailWorkerDeps, recordFinalEmailFailure } from './processor.js';

function emailsTwin(row: Record<string, unknown>) {
  const query = (): unknown => {
    let values: Record<string, unknown> | undefined;
    const conditions: [string, string, unknown][] = [];
    const holds = () =>
      conditions.every(([column, op, value]) =>
        op === '=' ? row[column] === value : op === 'in' ? (value as unknown[]).includes(row[column]) : false,
      );
    const builder: unknown = new Proxy(
      {},
      {
        get: (_target, property) => {
          switch (property) {
            case 'then':
              return undefined;
            case 'set':
              return (set: unknown) => {
                values =
                  typeof set === 'function'
                    ? set((column: string, op: string, by: number) =>
                        column === 'attempts' && op === '+' ? (row.attempts as number) + by : undefined,
                      )
                    : (set as Record<string, unknown>);
                return builder;
              };
            case 'where':
              return (column: string, op: string, value: unknown) => {
                conditions.push([column, op, value]);
                return builder;
              };
            case 'executeTakeFirst':
            case 'executeTakeFirstOrThrow':
              return async () => (holds() ? row : undefined);
            case 'execute':
              return async () => {
                if (values !== undefined && holds()) Object.assign(row, values);
                return [];
              };
            default:
              return () => builder;
          }
        },
      },
    );
    return builder;
  };
  return { selectFrom: query, updateTable: query } as unknown as EmailWorkerDeps['db'];
}

const log = createLogger({ level: 'fatal', pretty: false, destination: { write: () => undefined } });

describe('a task out of attempts whose mail another run of its key sent meanwhile', () => {
  it('leaves the mail sent (a mail recorded failed would be sent again by a retry); a pending one becomes failed', async () => {
    const stored = (status: EmailRow['status']) => ({
      id: '6f1c2a8e-0c1d-4b6e-9a53-1d2f3e4a5b6c' as EmailId,
      idempotency_key: 'r29.welcome',
      template: 'welcome',
      user_id: '0b6a3f2e-5d4c-4e1b-8a9f-7c6d5e4f3a2b' as UserId,
      to_address: 'someone@example.test',
      subject: 'a mail',
      text_body: status === 'sent' ? null : 'text',
      html_body: status === 'sent' ? null : '<p>html</p>',
      status,
      attempts: 1,
      last_error: null,
      sent_at: status === 'sent' ? new Date() : null,
      created_at: new Date(Date.now() - 60_000),
    });
    const job = {
      id: 'emails.send:r29.welcome',
      data: { template: 'welcome', userId: '0b6a3f2e-5d4c-4e1b-8a9f-7c6d5e4f3a2b', key: 'r29.welcome' },
    };
    const failure = new Error('Connection terminated unexpectedly');

    const sent = stored('sent');
    await recordFinalEmailFailure(
      { db: emailsTwin(sent), clock: { now: () => new Date() }, log },
      job,
      failure,
    );
    expect(sent).toMatchObject({ status: 'sent', last_error: null, attempts: 1 });

    const pending = stored('pending');
    await recordFinalEmailFailure(
      { db: emailsTwin(pending), clock: { now: () => new Date() }, log },
      job,
      failure,
    );
    expect(pending).toMatchObject({ status: 'failed', last_error: failure.message, attempts: 2 });
  });
});
