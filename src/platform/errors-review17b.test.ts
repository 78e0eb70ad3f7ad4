/**
 * isDependencyUnavailable counts what the room actor's classifyWriteFailure counts as "the database
 * cannot take this now" (less class 40), so REST and WebSocket answer the same outage the same way:
 * a read-only database (class 25), a lock timeout (55P03), and a statement pg gave up on after its
 * `query_timeout` (db/create-db.ts). Other class-55 states, and an AppError wrapping a lock timeout
 * (an Idempotency-Key in flight is CONFLICT), are not.
 */
import { ReplyError } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { AppError, isDependencyUnavailable } from './errors.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('isDependencyUnavailable: a database that cannot take writes now', () => {
  it.each([
    [
      '25006 read_only_sql_transaction',
      withCode('cannot execute UPDATE in a read-only transaction', '25006'),
    ],
    ['55P03 lock_not_available', withCode('canceling statement due to lock timeout', '55P03')],
    ['pg: no answer within query_timeout', new Error('Query read timeout')],
  ])('%s: yes', (_label, error) => {
    expect(isDependencyUnavailable(error)).toBe(true);
  });

  it.each([
    ['55000 object_not_in_prerequisite_state', withCode('not in prerequisite state', '55000')],
    ['55006 object_in_use', withCode('database is being accessed by other users', '55006')],
    [
      'CONFLICT wrapping a lock timeout (an Idempotency-Key in flight)',
      new AppError('CONFLICT', 'in flight', { cause: withCode('lock timeout', '55P03') }),
    ],
  ])('%s: no', (_label, error) => {
    expect(isDependencyUnavailable(error)).toBe(false);
  });
});

describe('isDependencyUnavailable: a Redis that cannot serve now', () => {
  const reply = (message: string) => new ReplyError(message);

  it.each([
    ['READONLY (a replica after a failover)', reply("READONLY You can't write against a read only replica.")],
    ['LOADING', reply('LOADING Redis is loading the dataset in memory')],
    ['MASTERDOWN', reply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.")],
    ['OOM', reply("OOM command not allowed when used memory > 'maxmemory'.")],
    ['CLUSTERDOWN', reply('CLUSTERDOWN The cluster is down')],
    [
      'EXECABORT because of a READONLY inside the MULTI',
      Object.assign(reply('EXECABORT Transaction discarded because of previous errors.'), {
        previousErrors: [reply("READONLY You can't write against a read only replica.")],
      }),
    ],
  ])('%s: yes', (_label, error) => {
    expect(isDependencyUnavailable(error)).toBe(true);
  });

  it.each([
    ['ERR (our command)', reply("ERR wrong number of arguments for 'get' command")],
    ['WRONGTYPE', reply('WRONGTYPE Operation against a key holding the wrong kind of value')],
    ['BUSYKEY', reply('BUSYKEY Target key name already exists.')],
    [
      'EXECABORT because of our own command',
      Object.assign(reply('EXECABORT Transaction discarded because of previous errors.'), {
        previousErrors: [reply('ERR unknown command')],
      }),
    ],
    ['a plain error whose text starts READONLY', new Error('READONLY something')],
  ])('%s: no', (_label, error) => {
    expect(isDependencyUnavailable(error)).toBe(false);
  });
});
