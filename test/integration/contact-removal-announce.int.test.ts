/**
 * Removing a contact ends the former contact's presence watch through a bus announcement. When
 * that announcement fails (Redis unreachable for a moment: the client gets a 5xx and retries the
 * idempotent DELETE), the retry must announce it, although the row is already gone. Real
 * PostgreSQL; the bus is the in-memory one, made to fail its first publish.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserId } from '../../protocol/src/ids.js';
import { addContactWithin, insertUser } from '../../src/db/repositories/users.repo.js';
import { createUserService } from '../../src/domain/users/service.js';
import { type Bus, createMemoryBus } from '../../src/platform/bus/bus.js';
import { CONTACT_REMOVED_TOPIC } from '../../src/platform/bus/topics.js';
import { openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';

describe('contact removal announcement', () => {
  let handle: PaymentsTestDb;

  beforeAll(async () => {
    handle = await openPaymentsTestDb(2);
  });
  afterAll(async () => {
    await handle?.close();
  });

  it('is announced by the retry of a DELETE whose first announcement failed', async () => {
    const memory = createMemoryBus();
    const heard: unknown[] = [];
    await memory.subscribe(CONTACT_REMOVED_TOPIC, (payload) => {
      heard.push(payload);
    });
    let failNext = true;
    const bus: Bus = {
      ...memory,
      publish: (topic, payload) => {
        if (failNext) {
          failNext = false;
          return Promise.reject(new Error('redis unreachable'));
        }
        return memory.publish(topic, payload);
      },
    };
    const users = createUserService({
      db: handle.db,
      isOnline: async (ids) => ids.map(() => false),
      bus,
      maxContactsPerUser: 10,
      currency: 'USD',
    });
    const newUser = async (name: string) =>
      (
        await insertUser(handle.db, {
          username: name,
          email: `${name}@example.com`,
          passwordHash: 'x',
          roles: [],
        })
      ).id as UserId;
    const [owner, contact] = [await newUser('owner1'), await newUser('contact1')];
    expect(await addContactWithin(handle.db, owner, contact, 10)).toBe('added');
    await expect(users.removeContact(owner, contact)).rejects.toThrow(/redis unreachable/);
    expect(heard).toEqual([]);
    await users.removeContact(owner, contact);
    expect(heard).toEqual([{ userId: owner, contactId: contact }]);
  });
});
