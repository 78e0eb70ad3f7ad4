/**
 * Marketplace review 32, on real PostgreSQL through the domain services (no server):
 *
 * - The bids an account lock withdrew counted toward the worker's 5 bids per job
 *   (MAX_BIDS_PER_WORKER_PER_JOB): once unlocked, a worker at 4 bids of their own was refused a 5th.
 * - A DELETE of a room membership by somebody who is no member announced the removal to the room's
 *   members (who then saw somebody never in the room "removed"): it is now marked `userOnly`,
 *   for the removed user's own sockets alone (the gateway side: room-joins-review32.test.ts).
 * - Search: "½" (a blank to PostgreSQL's text parser) was searched as a word and found nothing.
 */
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CategoryId, RoomId, UserId } from '../../protocol/src/ids.js';
import type { Database } from '../../src/db/database.js';
import { findCategoryBySlug } from '../../src/db/repositories/jobs.repo.js';
import { addRoomMembers, insertRoom } from '../../src/db/repositories/rooms.repo.js';
import { updateUser } from '../../src/db/repositories/users.repo.js';
import { MAX_BIDS_PER_WORKER_PER_JOB, placeBid, withdrawBid } from '../../src/domain/marketplace/bids.js';
import { createJob, type MarketplaceDeps, searchJobs } from '../../src/domain/marketplace/jobs.js';
import { retireLockedAccount } from '../../src/domain/marketplace/locked-accounts.js';
import { createRoomService, roomTopic } from '../../src/domain/rooms/service.js';
import { createMemoryBus } from '../../src/platform/bus/bus.js';
import type { RoomFramePayload } from '../../src/platform/bus/topics.js';
import { insertActor, openPaymentsTestDb, type PaymentsTestDb } from '../support/payments-db.js';
import { refusalOf } from '../support/refusal.js';

let testDb: PaymentsTestDb;
let db: Kysely<Database>;
let deps: MarketplaceDeps;
let design: CategoryId;

beforeAll(async () => {
  testDb = await openPaymentsTestDb(2);
  db = testDb.db;
  deps = { db, clock: testDb.deps.clock, settings: { currency: 'USD' } };
  design = (await findCategoryBySlug(db, 'design'))?.id as CategoryId;
}, 60_000);

afterAll(async () => {
  await testDb?.close();
});

const postJob = async (title: string) =>
  createJob(deps, await insertActor(db, 'hirer32', 'hirer'), {
    categoryId: design,
    title,
    description: 'Two days of work.',
    skills: [],
    budget: { kind: 'fixed', amount: 50_000n, currency: 'USD' },
    remote: true,
  });

describe('bids an account lock withdrew', () => {
  it('do not count toward the worker’s bids on the job once the account is unlocked', async () => {
    const job = await postJob('Logo');
    const worker = await insertActor(db, 'worker32', 'worker');
    const bid = () => placeBid(deps, worker, job.id, { amount: 40_000n, deliveryDays: 5, coverLetter: '' });
    // Four bids withdrawn by the worker, a fifth pending when the account is locked.
    for (let i = 1; i < MAX_BIDS_PER_WORKER_PER_JOB; i++) await withdrawBid(deps, worker, (await bid()).id);
    await bid();
    await updateUser(db, worker.userId, { locked_at: new Date() });
    expect(await retireLockedAccount(deps, worker.userId)).toEqual({ closedJobs: 0, withdrawnBids: 1 });
    await updateUser(db, worker.userId, { locked_at: null });

    // Before: 409 BID_LIMIT, the lock's withdrawal counted as the worker's own.
    const again = await bid();
    expect(again.status).toBe('pending');
    // The limit still holds for what the worker did themself.
    await withdrawBid(deps, worker, again.id);
    expect(await refusalOf(bid())).toMatchObject({ code: 'CONFLICT', details: { reason: 'BID_LIMIT' } });
  });
});

describe('a DELETE of a room membership by somebody who is no member', () => {
  it('announces no removal to the room’s members; a member’s leave still does', async () => {
    const bus = createMemoryBus();
    const rooms = createRoomService({ db, bus, maxRoomsPerUser: 10 });
    const [owner, member, stranger] = await Promise.all(
      ['owner32', 'member32', 'stranger32'].map(async (p) => (await insertActor(db, p, 'worker')).userId),
    );
    const roomId = (
      await insertRoom(db, { kind: 'group', title: 'g', createdBy: owner as UserId, directKey: null })
    ).id as RoomId;
    await addRoomMembers(db, roomId, [owner as UserId, member as UserId]);
    const heard: RoomFramePayload[] = [];
    await bus.subscribe(roomTopic(roomId), (payload) => void heard.push(payload));

    await rooms.removeMember(stranger as UserId, roomId, stranger as UserId);
    // Before: a plain `room.member removed` of the stranger, pushed to every joined member.
    expect(heard.filter((payload) => payload.userOnly !== true)).toEqual([]);

    await rooms.removeMember(member as UserId, roomId, member as UserId);
    expect(heard.filter((payload) => payload.userOnly !== true)).toEqual([
      { frame: { t: 'room.member', d: { roomId, userId: member, change: 'removed' } } },
    ]);
  });
});

describe('a job search for ½', () => {
  it('searches as if no text was given (the parser reads ½ as a blank), as for "the"', async () => {
    const job = await postJob('Fix a ½ inch pipe');
    const found = async (text: string) =>
      (await searchJobs(deps, { text, hirerId: job.hirerId, limit: 10 })).data.map((j) => j.id);
    expect(await found('½')).toEqual([job.id]);
    expect(await found('pipe')).toEqual([job.id]);
    expect(await found('plumbing')).toEqual([]);
  });
});
