/**
 * Records the golden frames of protocol v1 in protocol/test/golden/v1/: one file per frame type
 * (and a few variants), `{name, json, msgpackHex}`. protocol/src/golden.test.ts proves each still
 * decodes to its object and encodes to its bytes.
 *
 * Goldens are a promise to deployed clients, so existing files are never rewritten: a frame whose
 * bytes would change is a breaking change, not a refresh. Delete a file by hand only if you mean it.
 *
 *   node --import tsx scripts/gen-protocol-golden.ts
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { type AnyFrame, createCodec } from '../protocol/src/codec.js';
import { ClientFrameType, ReplyPayloads } from '../protocol/src/frames.js';

export const GOLDEN_DIR = fileURLToPath(new URL('../protocol/test/golden/v1/', import.meta.url));

const me = '0b6f7c1e-1f0e-4a53-9d55-0c8e2a1b7f10';
const alice = '5d2c8f3a-9b1e-4c7d-8a6f-2e4b9c1d7a35';
const bob = 'a3e1f9b2-6c4d-4e8a-b7f1-9d2c5e8a3b60';
/** 2026-01-01T00:00:00Z in ms: above 2^32, so it exercises the int64 encoding. */
const now = 1_767_225_600_000;
/** A group room the three of them share. */
const room = 'c7d4e2a1-5b3f-4e6a-9c8d-1f2e3a4b5c6d';
/** A marketplace job of alice's, its category, and a bid on it. */
const job = '3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a98';
const category = 'd1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6';
const bid = '7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d';
/** A stored notification of alice's (the `notification` push's id). */
const notification = '9e1c4b7a-2d3f-4a8e-b5c6-7f8091a2b3c4';
/** Chosen by the sending client (here a ULID); any 1..64 characters unique per sender and room. */
const clientMsgId = '01JGX7K2M3N4P5Q6R7S8T9V0WX';
/** Shape of an access JWT (not a valid signature). */
const accessToken =
  'eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0.' +
  'eyJzdWIiOiIwYjZmN2MxZS0xZjBlLTRhNTMtOWQ1NS0wYzhlMmExYjdmMTAiLCJleHAiOjE3NjcyMjY1MDB9.' +
  'c2lnbmF0dXJlLW9mLWV4YW1wbGU';

/** Named sample frames; the name is the file name and says who sends it. */
export const goldenSamples: Readonly<Record<string, unknown>> = {
  'client.ping': { t: 'ping', id: 1 },
  'client.ping.without-id': { t: 'ping' },
  'client.auth.refresh': { t: 'auth.refresh', id: 2, d: { accessToken } },
  'client.presence.subscribe': { t: 'presence.subscribe', id: 3, d: { userIds: [alice, bob] } },
  'client.presence.unsubscribe': { t: 'presence.unsubscribe', id: 4, d: { userIds: [bob] } },
  'client.room.join': { t: 'room.join', id: 6, d: { roomId: room, sinceSeq: 40 } },
  'client.room.join.without-since-seq': { t: 'room.join', id: 6, d: { roomId: room } },
  'client.room.leave': { t: 'room.leave', id: 7, d: { roomId: room } },
  'client.room.send': {
    t: 'room.send',
    id: 8,
    d: { roomId: room, clientMsgId, body: 'Can you start on Monday?', meta: { replyToSeq: 42 } },
  },
  // limit is written out: the server fills in its default 50 when it is absent.
  'client.room.history': { t: 'room.history', id: 9, d: { roomId: room, beforeSeq: 43, limit: 2 } },
  'client.room.typing': { t: 'room.typing', d: { roomId: room } },
  'client.room.read': { t: 'room.read', id: 10, d: { roomId: room, seq: 43 } },
  'client.jobs.watch': { t: 'jobs.watch', id: 11, d: { categoryId: category, skills: ['kotlin', 'gradle'] } },
  'client.jobs.unwatch': { t: 'jobs.unwatch', id: 12 },
  'client.notifications.read': { t: 'notifications.read', id: 13, d: { ids: [notification] } },
  'client.notifications.read.all': { t: 'notifications.read', id: 14, d: { all: true } },
  'server.hello': {
    t: 'hello',
    d: {
      connectionId: 'gw-1.6f3a9c2e',
      userId: me,
      serverTime: now,
      heartbeatMs: 30_000,
      protocolVersion: 1,
      encoding: 'msgpack',
      limits: { maxFrameBytes: 65_536, maxMessagesPerSecond: 50, maxBurst: 100, maxBufferedBytes: 1_048_576 },
    },
  },
  'server.ok.ping': { t: 'ok', id: 1, d: { serverTime: now } },
  'server.ok.auth.refresh': { t: 'ok', id: 2, d: { expiresAt: now + 900_000 } },
  'server.ok.presence.subscribe': {
    t: 'ok',
    id: 3,
    d: {
      presence: [
        { userId: alice, status: 'online', lastSeenAt: null },
        { userId: bob, status: 'offline', lastSeenAt: '2025-12-31T23:41:07.512Z' },
      ],
    },
  },
  'server.ok.presence.unsubscribe': { t: 'ok', id: 4 },
  'server.ok.room.join': { t: 'ok', id: 6, d: { lastSeq: 42 } },
  'server.ok.room.send': { t: 'ok', id: 8, d: { seq: 43, sentAt: '2026-01-01T00:00:00.000Z' } },
  'server.ok.room.history': {
    t: 'ok',
    id: 9,
    d: {
      messages: [
        {
          roomId: room,
          seq: 42,
          senderId: alice,
          clientMsgId: 'a-1f9c',
          body: 'Hi! The job is yours if you want it.',
          sentAt: '2025-12-31T23:59:41.207Z',
        },
        {
          roomId: room,
          seq: 41,
          senderId: me,
          clientMsgId: '01JGX6Z8Q1R2S3T4V5W6X7Y8Z9',
          body: 'Here is my portfolio.',
          meta: { attachment: { kind: 'link', url: 'https://example.com/portfolio' } },
          sentAt: '2025-12-31T23:58:02.950Z',
        },
      ],
    },
  },
  'server.ok.room.read': { t: 'ok', id: 10, d: { seq: 43 } },
  'server.ok.notifications.read': { t: 'ok', id: 13, d: { updated: 1, unreadCount: 4 } },
  'server.error': {
    t: 'error',
    id: 5,
    d: {
      code: 'VALIDATION_FAILED',
      message: 'invalid "presence.subscribe" frame: d.userIds.0: Invalid UUID',
      details: { errors: [{ path: 'd.userIds.0', message: 'Invalid UUID' }] },
    },
  },
  'server.error.without-id': {
    t: 'error',
    d: { code: 'BAD_FRAME', message: 'frame is not a single valid MessagePack value' },
  },
  'server.presence.online': { t: 'presence', d: { userId: alice, status: 'online', lastSeenAt: null } },
  'server.presence.offline': {
    t: 'presence',
    d: { userId: bob, status: 'offline', lastSeenAt: '2026-01-01T00:00:00.000Z' },
  },
  'server.notification': {
    t: 'notification',
    d: {
      id: '9e1c4b7a-2d3f-4a8e-b5c6-7f8091a2b3c4',
      kind: 'bid.received',
      title: 'New bid on "Logo design"',
      body: 'Alice bid 250.00 EUR',
      data: { jobId: '3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a98', bidId: '7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d' },
      createdAt: '2026-01-01T00:00:00.000Z',
    },
  },
  'server.wallet': { t: 'wallet', d: { currency: 'USD', available: 12_500, pending: 2_000 } },
  // What nodes send since `parked` was added (server.wallet above is a node older than that field).
  'server.wallet.parked': {
    t: 'wallet',
    d: { currency: 'USD', available: 12_500, pending: 2_000, parked: 0 },
  },
  'server.notifications.read': { t: 'notifications.read', d: { ids: [notification], unreadCount: 4 } },
  'server.notifications.read.all': { t: 'notifications.read', d: { all: true, unreadCount: 0 } },
  'server.market': {
    t: 'market',
    d: {
      id: '4f8e2d1c-7b6a-4c5d-9e3f-2a1b0c9d8e7f',
      type: 'bid.placed',
      jobId: job,
      bidId: bid,
      state: 'pending',
      at: '2026-01-01T00:00:00.000Z',
    },
  },
  'server.market.contract': {
    t: 'market',
    d: {
      id: '6a5b4c3d-2e1f-4a0b-8c7d-6e5f4a3b2c1d',
      type: 'contract.deliver',
      jobId: job,
      contractId: 'e2d3c4b5-a6f7-4e8d-9c0b-1a2f3e4d5c6b',
      state: 'delivered',
      version: 2,
      at: '2026-01-01T00:00:00.000Z',
    },
  },
  'server.job.posted': {
    t: 'job.posted',
    d: {
      id: job,
      title: 'Port a Kotlin build to Gradle 9',
      categoryId: category,
      skills: ['kotlin', 'gradle'],
      budget: { kind: 'fixed', amount: 40_000, currency: 'USD' },
      remote: true,
      location: null,
      hirerId: alice,
      createdAt: '2026-01-01T00:00:00.000Z',
    },
  },
  'server.pong': { t: 'pong', d: { serverTime: now } },
  'server.room.message': {
    t: 'room.message',
    d: {
      roomId: room,
      seq: 43,
      senderId: me,
      clientMsgId,
      body: 'Can you start on Monday?',
      meta: { replyToSeq: 42 },
      sentAt: '2026-01-01T00:00:00.000Z',
    },
  },
  'server.room.typing': { t: 'room.typing', d: { roomId: room, userId: alice } },
  'server.room.read': { t: 'room.read', d: { roomId: room, userId: alice, seq: 43 } },
  'server.room.member': { t: 'room.member', d: { roomId: room, userId: bob, change: 'added' } },
  'server.room.member.removed': { t: 'room.member', d: { roomId: room, userId: bob, change: 'removed' } },
};

/**
 * The request type a `server.ok.<type>[.<variant>]` sample answers (the longest matching type), or
 * undefined for other samples. An `ok` frame only decodes `d` as unknown, so its payload is checked
 * against the request type's result schema separately.
 */
export function answeredType(name: string): ClientFrameType | undefined {
  if (!name.startsWith('server.ok.')) return undefined;
  const rest = name.slice('server.ok.'.length);
  return Object.values(ClientFrameType)
    .filter((type) => rest === type || rest.startsWith(`${type}.`))
    .sort((a, b) => b.length - a.length)[0];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const codec = createCodec();
  mkdirSync(GOLDEN_DIR, { recursive: true });
  let written = 0;
  for (const [name, frame] of Object.entries(goldenSamples)) {
    const decode = name.startsWith('client.') ? codec.decodeClient : codec.decodeServer;
    const check = decode(JSON.stringify(frame), 'json');
    if (!check.ok) throw new Error(`golden sample ${name} is not a valid frame: ${check.message}`);
    if (!isDeepStrictEqual(check.frame, frame)) {
      throw new Error(
        `golden sample ${name} does not decode to itself (a default filled in or a key dropped)`,
      );
    }
    if (name.startsWith('server.ok.')) {
      const type = answeredType(name);
      if (type === undefined) throw new Error(`golden sample ${name} names no request type`);
      const d = (frame as { d?: unknown }).d;
      const result = ReplyPayloads[type].safeParse(d);
      if (!result.success || !isDeepStrictEqual(result.data, d)) {
        throw new Error(`golden sample ${name} is not a valid ok reply to ${type}`);
      }
    }
    const path = `${GOLDEN_DIR}${name}.json`;
    if (existsSync(path)) continue;
    const msgpackHex = Buffer.from(codec.encode(frame as AnyFrame, 'msgpack')).toString('hex');
    writeFileSync(path, `${JSON.stringify({ name, json: frame, msgpackHex }, null, 2)}\n`);
    written += 1;
  }
  console.log(`${written} golden frame(s) written to ${GOLDEN_DIR}`);
}
