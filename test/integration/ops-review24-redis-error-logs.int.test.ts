/**
 * Ops review 24: an ioredis error carries the command it answered, arguments included, and the
 * logger's `err` serializer wrote every property of an error. So a node whose Redis refused its
 * password (rotated on the server, then a restart or a network blip made every node reconnect) wrote
 * `"command":{"name":"hello","args":["3","AUTH","default","<password>"]}` into its logs every 10 s
 * per connection, and a failed command wrote its values (a room message's publish, a key's data).
 * Now an error's command is logged by name only. Against the run's real Redis.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { closeRedisClient, createRedisClient } from '../../src/platform/redis.js';
import { captureLogs, sharedRedisUrl } from '../support/context.js';

describe('logged Redis errors', () => {
  it('never write the password of a refused AUTH', async () => {
    const logs = captureLogs();
    const url = new URL(sharedRedisUrl());
    url.username = 'review24-nobody';
    url.password = 'Hunter2-Rotated-Secret';
    const client = createRedisClient({ endpoint: url.toString(), name: 'main', log: logs.log });
    try {
      for (let i = 0; i < 200 && !logs.text().includes('redis connection error'); i++) await sleep(25);
      expect(logs.text()).toContain('WRONGPASS');
      expect(logs.text()).not.toContain('Hunter2-Rotated-Secret');
      const line = logs.lines().find((entry) => entry.msg === 'redis connection error');
      expect(line?.err).toMatchObject({ command: { name: 'hello' } });
    } finally {
      await closeRedisClient(client);
      client.disconnect();
    }
  });

  it('never write the values of a failed command', async () => {
    const logs = captureLogs();
    const client = createRedisClient({ endpoint: sharedRedisUrl(), name: 'main', log: logs.log });
    try {
      const error = await client.call('set', 'review24:key', 'a private message body', 'XX', 'NX').then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(Error);
      logs.log.warn({ err: error }, 'publish failed');
      expect(logs.text()).toContain('syntax error');
      expect(logs.text()).not.toContain('a private message body');
    } finally {
      await closeRedisClient(client);
    }
  });
});
