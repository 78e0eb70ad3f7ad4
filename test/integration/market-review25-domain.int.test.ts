/**
 * Marketplace review 25, on real PostgreSQL through the domain services (no server):
 *
 * - The worker search (GET /v1/users?q=) cut the query into words at every character that is not a
 *   letter or a digit, while PostgreSQL's parser keeps `jane.smith` (a username may hold dots),
 *   `node.js` or `asp.net` as one lexeme of the profile: searched as "jane" & "smith", a worker's
 *   own username found nobody. The cut fell on combining marks too, which Devanagari, Tamil or Thai
 *   write their vowels with: "राहुल" was searched as "र" & "ह" & "ल". And JavaScript lower-cased
 *   "İstanbul" as "i" + U+0307 + "stanbul", which matched no "istanbul".
 * - A contract transition's note of at most 2 000 characters (what the REST schema takes, counted in
 *   code points) was cut at 2 000 UTF-16 units: an emoji-rich note lost its end, and one cut inside
 *   an emoji left half of it, which the jsonb transition log refused (22P02): a 500, and the worker
 *   could not deliver.
 */
import { randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CategoryId, ContractId, UserId } from '../../protocol/src/ids.js';
import { TransitionRequest } from '../../protocol/src/rest/contracts.js';
import { createDb, type DbHandle } from '../../src/db/create-db.js';
import * as userSearchTagsAndPaths from '../../src/db/migrations/0025_user_search_tags_and_paths.js';
import { insertBid } from '../../src/db/repositories/bids.repo.js';
import { insertContract } from '../../src/db/repositories/contracts.repo.js';
import { insertJob, listCategories } from '../../src/db/repositories/jobs.repo.js';
import { insertRoom } from '../../src/db/repositories/rooms.repo.js';
import { insertUser, searchUsers, type UserSearch } from '../../src/db/repositories/users.repo.js';
import { fire, getContract } from '../../src/domain/marketplace/contracts.js';
import { createUserService, type UserService } from '../../src/domain/users/service.js';
import { createMemoryBus } from '../../src/platform/bus/bus.js';
import { systemClock } from '../../src/platform/clock.js';
import { captureLogs, createMigratedDatabase, type TestDatabase } from '../support/context.js';
import { capturingDb, explain } from '../support/explain.js';

let database: TestDatabase;
let handle: DbHandle;

beforeAll(async () => {
  database = await createMigratedDatabase();
  handle = await createDb({ kind: 'postgres', url: database.url, poolMax: 2 }, captureLogs().log);
}, 60_000);

afterAll(async () => {
  await handle?.close();
  await database?.drop();
});

const newUser = async (username: string, roles: string[]) =>
  (await insertUser(handle.db, { username, email: `${username}@example.test`, passwordHash: 'x', roles }))
    .id as UserId;

describe('worker search by the words of a profile as written there', () => {
  let users: UserService;
  let workerId: UserId;

  beforeAll(async () => {
    users = createUserService({
      db: handle.db,
      isOnline: async (ids) => ids.map(() => false),
      bus: createMemoryBus(),
      maxContactsPerUser: 10,
      currency: 'USD',
    });
    workerId = await newUser('rahul.sharma25', ['worker']);
    await users.updateMe(workerId, {
      displayName: 'राहुल शर्मा',
      bio: 'Translator: हिन्दी, தமிழ், ภาษาไทย',
      location: 'İstanbul',
      skills: ['Node.js', 'ASP.NET'],
    });
  });

  it('finds the worker by their username, a dotted skill, a Hindi, Tamil or Thai word, İstanbul as written', async () => {
    for (const q of [
      'rahul.sharma25',
      'Rahul.Sh',
      'node.js',
      'asp.net rahul',
      'राहुल शर्मा',
      'हिन्दी',
      'தமிழ்',
      'ภาษาไทย',
      'İstanbul',
      'istanbul',
      "!!! rahul ' \\",
    ]) {
      const page = await users.searchWorkers({ q, limit: 20 });
      expect(
        page.data.map((worker) => worker.id),
        q,
      ).toEqual([workerId]);
    }
    // Still a search: another word finds nobody, and quotes or backslashes are text, not syntax.
    for (const q of ['मोहन', 'rahul.sharma26', "o'brien\\ xy:* & (yz"]) {
      expect((await users.searchWorkers({ q, limit: 20 })).data, q).toEqual([]);
    }
  });

  // Review 30: the parser dropped `<word …>` as an HTML tag and kept `UI/UX` as one file-path token.
  it('finds words written between < and > or joined by /, in profiles saved before migration 0025 too', async () => {
    const id = await newUser('tagged30', ['worker']);
    await users.updateMe(id, { bio: 'UI/UX designer: <canvas> games in React/Redux', skills: ['ci/cd'] });
    const found = async (q: string) => (await users.searchWorkers({ q, limit: 20 })).data.map((w) => w.id);
    for (const q of ['ux', 'UI/UX', 'designer ui', 'canvas', '<canvas>', 'redux', 'react/red', 'cd'])
      expect(await found(q), q).toEqual([id]);
    // A profile saved before migration 0025 (its document as written) is found once it ran.
    await sql`update users set search_document = 'tagged30 UI/UX <canvas>' where id = ${id}`.execute(
      handle.db,
    );
    expect(await found('canvas')).toEqual([]);
    await userSearchTagsAndPaths.up(handle.db as unknown as Kysely<unknown>);
    expect(await found('canvas')).toEqual([id]);
    expect(await found('ux')).toEqual([id]);
  });

  // Review 26: words and skills were filters no index served as written (`$1 = any(skills)`; the
  // tsquery as a filter of the newest-first walk), so a word or skill nobody has walked every user,
  // recomputing to_tsvector of each profile: 50 000 users with long bios took ~10 s a request.
  it('looks words and skills up in their GIN indexes, never recomputing every profile', async () => {
    expect((await users.searchWorkers({ skill: 'node.js', limit: 20 })).data.map((w) => w.id)).toEqual([
      workerId,
    ]);
    expect((await users.searchWorkers({ skill: 'cobol', limit: 20 })).data).toEqual([]);
    const search: UserSearch = {
      terms: [],
      skill: undefined,
      location: undefined,
      role: 'worker',
      after: undefined,
      limit: 21,
    };
    const planOf = async (shape: Partial<UserSearch>, settings: Record<string, string>) => {
      const captured = capturingDb(handle.db);
      await searchUsers(captured.db, { ...search, ...shape });
      const [query] = captured.take();
      return explain(handle.db, query as NonNullable<typeof query>, settings);
    };
    // Plain index scans off: the newest-first walk of users_created_idx is not what this checks.
    const bySkill = await planOf({ skill: 'cobol' }, { enable_seqscan: 'off', enable_indexscan: 'off' });
    expect(bySkill, bySkill).toMatch(/users_skills_idx/);
    // Enough workers for the planner to weigh the walk against the index (as a real table is).
    await sql`insert into users (username, email, password_hash, roles, search_document)
      select 'seeded26_' || i, 'seeded26_' || i || '@example.test', 'x', '{worker}', 'seeded26_' || i
      from generate_series(1, 3000) i`.execute(handle.db);
    await sql`analyze users`.execute(handle.db);
    // A word every seeded worker has: the walk finds 21 at once, the plan the old query got for
    // any word the planner deemed common (and then ran against a word nobody has).
    const byWord = await planOf({ terms: ['seeded26'] }, { enable_seqscan: 'off' });
    expect(byWord, byWord).toMatch(/users_search_idx/);
    expect(byWord, byWord).not.toMatch(/Filter: .*to_tsvector/);
  });
});

describe('a transition note of 2 000 characters', () => {
  it('is kept whole, emoji and all, in the log and the job room', async () => {
    const hirerId = await newUser('hirer25', ['hirer']);
    const worker = { userId: await newUser('worker25', ['worker']), roles: ['worker' as const] };
    const categoryId = (await listCategories(handle.db))[0]?.id as CategoryId;
    const now = new Date();
    const job = await insertJob(handle.db, {
      hirerId,
      categoryId,
      title: 'Logo',
      description: 'A logo',
      skills: [],
      budgetKind: 'fixed',
      budgetAmount: 5_000n,
      currency: 'USD',
      location: null,
      remote: true,
      deadline: null,
      now,
    });
    const bid = await insertBid(handle.db, {
      jobId: job.id,
      workerId: worker.userId,
      amount: 4_000n,
      deliveryDays: 3,
      coverLetter: '',
      now,
    });
    const room = await insertRoom(handle.db, {
      kind: 'job',
      title: 'Logo',
      createdBy: hirerId,
      directKey: null,
    });
    const contract = await insertContract(handle.db, {
      id: randomUUID() as ContractId,
      jobId: job.id,
      bidId: bid.id,
      hirerId,
      workerId: worker.userId,
      title: 'Logo',
      amount: 4_000n,
      currency: 'USD',
      deliveryDays: 3,
      roomId: room.id,
      dueAt: new Date(now.getTime() + 3 * 86_400_000),
      now,
    });
    // 2 000 characters as the REST schema counts them (3 999 UTF-16 units); unit 2 000 is inside an emoji.
    const { message = '' } = TransitionRequest.parse({ message: `x${'🎨'.repeat(1999)}` });
    const deps = {
      db: handle.db,
      clock: systemClock,
      settings: { currency: 'USD', platformFeeBps: 0, autoApproveMs: 60_000, reviewWindowMs: 60_000 },
    };
    const delivered = await fire(deps, worker, contract.id, 'deliver', { message });
    expect(delivered.state).toBe('delivered');
    const detail = await getContract(deps, worker, contract.id);
    expect(detail.transitions.at(-1)?.payload.message).toBe(message);
    const sent = await handle.db
      .selectFrom('messages')
      .select('body')
      .where('room_id', '=', room.id)
      .executeTakeFirstOrThrow();
    expect(sent.body.endsWith(message)).toBe(true);
  });
});
