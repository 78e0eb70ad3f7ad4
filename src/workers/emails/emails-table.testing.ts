/**
 * Test scaffolding of the email worker's unit tests: a twin of the `emails` table holding one row.
 * It answers the query-builder calls the worker makes: a read answers the row where its `where`s
 * hold (`=` and `in`), an update applies its `set` to the row where they hold (`attempts + n`
 * included) and is recorded in `updates`.
 */
import type { EmailId, UserId } from '../../../protocol/src/ids.js';
import type { EmailRow } from '../../db/repositories/outbox.repo.js';
import { createLogger } from '../../platform/logger.js';
import type { Redis } from '../../platform/redis.js';
import type { EmailWorkerDeps } from './processor.js';
import type { OutgoingMail } from './transport.js';

export function emailsTableTwin(row: Record<string, unknown>): {
  readonly db: EmailWorkerDeps['db'];
  readonly updates: Record<string, unknown>[];
} {
  const updates: Record<string, unknown>[] = [];
  const increment = (column: string, op: string, by: unknown) =>
    op === '+' && typeof row[column] === 'number' && typeof by === 'number'
      ? row[column] + by
      : { expression: [column, op, by] };
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
                values = typeof set === 'function' ? set(increment) : (set as Record<string, unknown>);
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
                if (values !== undefined && holds()) {
                  updates.push(values);
                  Object.assign(row, values);
                }
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
  return { db: { selectFrom: query, updateTable: query } as unknown as EmailWorkerDeps['db'], updates };
}

/** A pending welcome mail of one user under idempotency key `key`, created `ageMs` ago. */
export function pendingWelcomeMail(key: string, ageMs: number): EmailRow {
  return {
    id: '6f1c2a8e-0c1d-4b6e-9a53-1d2f3e4a5b6c' as EmailId,
    idempotency_key: key,
    template: 'welcome',
    user_id: '0b6a3f2e-5d4c-4e1b-8a9f-7c6d5e4f3a2b' as UserId,
    to_address: 'someone@example.test',
    subject: 'a mail',
    text_body: 'text',
    html_body: '<p>html</p>',
    status: 'pending',
    attempts: 0,
    last_error: null,
    sent_at: null,
    created_at: new Date(Date.now() - ageMs),
  } as EmailRow;
}

/**
 * Worker deps over `db` whose SMTP transport records what it sends in `sent`, and whose Redis
 * holds no "sent" note (writing one succeeds).
 */
export function recordingWorkerDeps(
  db: EmailWorkerDeps['db'],
  redisPrefix: string,
): { readonly deps: EmailWorkerDeps; readonly sent: OutgoingMail[] } {
  const sent: OutgoingMail[] = [];
  const deps: EmailWorkerDeps = {
    db,
    auth: {} as EmailWorkerDeps['auth'],
    transport: { kind: 'smtp', send: async (mail) => void sent.push(mail), close: () => undefined },
    clock: { now: () => new Date() },
    log: createLogger({ level: 'fatal', pretty: false, destination: { write: () => undefined } }),
    connection: { exists: async () => 0, del: async () => 0, set: async () => 'OK' } as unknown as Redis,
    redisPrefix,
    publicUrl: 'https://gigwire.example',
    mailFrom: 'gigwire <noreply@gigwire.example>',
    lockMs: 30_000,
  };
  return { deps, sent };
}
