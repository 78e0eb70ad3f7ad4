/**
 * Room fan-out in the hub: caught-up connections on a transport with native topics get each
 * message through one publish per encoding; fallback connections get the same bytes one by one;
 * connections still catching up are held back and never subscribed early. The sockets here are
 * recording transports (the real uWS path is covered by test/integration/rooms.int.test.ts).
 */
import { queryObjects } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../protocol/src/codec.js';
import type { RoomMessage } from '../../protocol/src/frames.js';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import { type Encoding, Encoding as Encodings } from '../../protocol/src/version.js';
import { Connection } from './connection.js';
import { testConnectionEnvironment, testPrincipal } from './connection-testing.js';
import { BACKPRESSURE_SWEEP_SLICES, createHub, roomMessageTopic } from './hub.js';
import type { SocketTransport } from './transport.js';

const codec = createCodec();
const roomId = 'c0000000-0000-4000-8000-000000000000' as RoomId;
const environment = testConnectionEnvironment(codec);

interface RecordingSocket {
  readonly connection: Connection;
  /** Seqs of room messages written straight to this socket. */
  readonly direct: number[];
  readonly topics: Set<string>;
}

/** What a socket has waiting to be written, how often that was asked, and the code it was closed with. */
interface Backlog {
  bytes: number;
  asked: number;
  closedWith?: number;
}

let nextUser = 1;
function socket(encoding: Encoding, withTopics: boolean, backlog?: Backlog): RecordingSocket {
  const direct: number[] = [];
  const topics = new Set<string>();
  const transport: SocketTransport = {
    kind: withTopics ? 'uws' : 'fastify-ws',
    send: (data) => {
      const decoded = codec.decodeServer(data, encoding);
      if (decoded.ok && decoded.frame.t === 'room.message') direct.push(decoded.frame.d.seq);
      return true;
    },
    bufferedAmount: () => {
      if (backlog === undefined) return 0;
      backlog.asked += 1;
      return backlog.bytes;
    },
    close: (code) => {
      if (backlog !== undefined) backlog.closedWith = code;
    },
    ...(withTopics
      ? {
          subscribe: (topic: string) => {
            topics.add(topic);
            return true;
          },
          unsubscribe: (topic: string) => void topics.delete(topic),
        }
      : {}),
  };
  const userId = `d0000000-0000-4000-8000-${String(nextUser++).padStart(12, '0')}` as UserId;
  const principal = testPrincipal(userId);
  return { connection: new Connection(userId, principal, encoding, transport, environment), direct, topics };
}

const message = (seq: number): RoomMessage => ({
  roomId,
  seq,
  senderId: 'a0000000-0000-4000-8000-000000000001' as UserId,
  clientMsgId: `m${seq}`,
  body: `body ${seq}`,
  sentAt: new Date(0).toISOString(),
});

function hubWithTopics() {
  const hub = createHub(codec);
  const published: { topic: string; seq: number }[] = [];
  hub.useTopics((topic, data) => {
    const encoding = topic.endsWith(Encodings.JSON) ? Encodings.JSON : Encodings.MSGPACK;
    const decoded = codec.decodeServer(data, encoding);
    if (decoded.ok && decoded.frame.t === 'room.message') published.push({ topic, seq: decoded.frame.d.seq });
  });
  const join = (s: RecordingSocket, sinceSeq = 0) => {
    hub.add(s.connection);
    hub.joinRoom(roomId, s.connection, sinceSeq);
    hub.finishCatchUp(roomId, s.connection);
  };
  const push = (...seqs: number[]) => {
    for (const seq of seqs) hub.pushToRoom(roomId, { t: 'room.message', d: message(seq) });
  };
  return { hub, published, join, push };
}

describe('room fan-out', () => {
  it('publishes once per encoding to caught-up topic sockets and writes to fallback sockets one by one', () => {
    const { published, join, push } = hubWithTopics();
    const topicSockets = [1, 2, 3].map(() => socket(Encodings.MSGPACK, true));
    const jsonTopicSocket = socket(Encodings.JSON, true);
    const fallback = socket(Encodings.MSGPACK, false);
    for (const s of [...topicSockets, jsonTopicSocket, fallback]) join(s);

    push(1, 2);

    expect(published).toEqual([
      { topic: roomMessageTopic(roomId, Encodings.MSGPACK), seq: 1 },
      { topic: roomMessageTopic(roomId, Encodings.JSON), seq: 1 },
      { topic: roomMessageTopic(roomId, Encodings.MSGPACK), seq: 2 },
      { topic: roomMessageTopic(roomId, Encodings.JSON), seq: 2 },
    ]);
    for (const s of topicSockets) expect(s.direct).toEqual([]);
    expect(fallback.direct).toEqual([1, 2]);
  });

  it('publishes a seq once, however often the bus repeats it', () => {
    const { published, join, push } = hubWithTopics();
    join(socket(Encodings.MSGPACK, true));
    push(1, 1, 2, 1);
    expect(published.map((p) => p.seq)).toEqual([1, 2]);
  });

  it('holds live messages for a connection catching up and subscribes it only after its backlog', () => {
    const { hub, published, join, push } = hubWithTopics();
    join(socket(Encodings.MSGPACK, true));
    push(1, 2, 3);
    const late = socket(Encodings.MSGPACK, true);
    hub.add(late.connection);
    hub.joinRoom(roomId, late.connection, 1);
    push(4);
    expect(late.topics.size).toBe(0);
    hub.deliverBacklog(roomId, late.connection, [message(2), message(3), message(4)]);
    hub.finishCatchUp(roomId, late.connection);
    push(5);

    expect(late.direct).toEqual([2, 3, 4]);
    expect(late.topics).toEqual(new Set([roomMessageTopic(roomId, Encodings.MSGPACK)]));
    expect(published.map((p) => p.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('keeps a connection whose backlog ran ahead of the topic on direct writes until they are level', () => {
    const { hub, published, push } = hubWithTopics();
    // The database already had seq 100 when this node's first joiner caught up; the bus is late.
    const early = socket(Encodings.MSGPACK, true);
    hub.add(early.connection);
    hub.joinRoom(roomId, early.connection, 98);
    hub.deliverBacklog(roomId, early.connection, [message(99), message(100)]);
    hub.finishCatchUp(roomId, early.connection);
    expect(early.topics.size).toBe(0);

    push(100, 101, 102);

    expect(early.direct).toEqual([99, 100, 101]);
    expect(published.map((p) => p.seq)).toEqual([102]);
    expect(early.topics.size).toBe(1);
  });

  it('stops publishing to a topic when its last subscriber leaves or closes', () => {
    const { hub, published, join, push } = hubWithTopics();
    const leaving = socket(Encodings.MSGPACK, true);
    const closing = socket(Encodings.JSON, true);
    const staying = socket(Encodings.MSGPACK, false);
    for (const s of [leaving, closing, staying]) join(s);
    hub.leaveRoom(roomId, leaving.connection);
    hub.remove(closing.connection);
    push(1);

    expect(leaving.topics.size).toBe(0);
    expect(published).toEqual([]);
    expect(staying.direct).toEqual([1]);
  });

  it('without topics (no uWebSockets.js) every connection is written to directly', () => {
    const hub = createHub(codec);
    const a = socket(Encodings.MSGPACK, true);
    hub.add(a.connection);
    hub.joinRoom(roomId, a.connection, 0);
    hub.finishCatchUp(roomId, a.connection);
    hub.pushToRoom(roomId, { t: 'room.message', d: message(1) });
    expect(a.topics.size).toBe(0);
    expect(a.direct).toEqual([1]);
  });
});

describe('pending joins', () => {
  it('a leave, a removal or a close cancels a pending join, which then registers nothing', () => {
    const hub = createHub(codec);
    const left = socket(Encodings.MSGPACK, false);
    const removed = socket(Encodings.MSGPACK, false);
    const closed = socket(Encodings.MSGPACK, false);
    const begin = (s: RecordingSocket) => {
      hub.add(s.connection);
      return hub.beginJoin(roomId, s.connection);
    };
    const joins = { left: begin(left), removed: begin(removed), closed: begin(closed) };
    hub.leaveRoom(roomId, left.connection);
    hub.leaveRoom(roomId, removed.connection, 'removed');
    hub.remove(closed.connection);

    expect([joins.left.cancelled, joins.removed.cancelled, joins.closed.cancelled]).toEqual([
      'left',
      'removed',
      'closed',
    ]);
    expect(hub.joinRoom(roomId, left.connection, 0, joins.left)).toBeUndefined();
    expect(hub.joinRoom(roomId, removed.connection, 0, joins.removed)).toBeUndefined();
    expect(hub.joinRoom(roomId, closed.connection, 0, joins.closed)).toBeUndefined();
    expect(hub.hasRoom(roomId)).toBe(false);
  });

  it('a later join of the same room replaces the pending one; a registered join is pending no more', () => {
    const hub = createHub(codec);
    const s = socket(Encodings.MSGPACK, false);
    hub.add(s.connection);
    const first = hub.beginJoin(roomId, s.connection);
    const second = hub.beginJoin(roomId, s.connection);
    expect(first.cancelled).toBe('replaced');

    expect(hub.joinRoom(roomId, s.connection, 0, second)).toBeDefined();
    expect(hub.hasPendingJoin(roomId, s.connection)).toBe(false);
    // A leave after the registration takes the connection out as before.
    hub.leaveRoom(roomId, s.connection);
    expect(second.cancelled).toBeUndefined();
    expect(hub.hasRoom(roomId)).toBe(false);
  });

  it('undoing a join that could not finish leaves a newer pending join of the connection alone', () => {
    const hub = createHub(codec);
    const s = socket(Encodings.MSGPACK, false);
    hub.add(s.connection);
    const failing = hub.joinRoom(roomId, s.connection, 0, hub.beginJoin(roomId, s.connection));
    const newer = hub.beginJoin(roomId, s.connection);
    if (failing === undefined) throw new Error('the first join registers');

    hub.dropJoin(roomId, s.connection, failing);
    expect(hub.hasRoom(roomId)).toBe(false);
    expect(newer.cancelled).toBeUndefined();
    expect(hub.joinRoom(roomId, s.connection, 0, newer)).toBeDefined();
  });
});

describe('backpressure sweep', () => {
  const over = environment.limits.maxBufferedBytes + 1;

  it('closes slow topic-fed connections 1013 within one round of calls, each call checking only its slice', () => {
    const { hub, join } = hubWithTopics();
    const backlogs = Array.from(
      { length: 45 },
      (_, i): Backlog => ({ bytes: i % 9 === 0 ? over : 10, asked: 0 }),
    );
    for (const backlog of backlogs) join(socket(Encodings.MSGPACK, true, backlog));
    // Not fed by a topic: its own sends check it, the sweep leaves it alone.
    const direct: Backlog = { bytes: over, asked: 0 };
    join(socket(Encodings.MSGPACK, false, direct));

    const perCall: number[] = [];
    for (let call = 0; call < BACKPRESSURE_SWEEP_SLICES; call++) {
      const before = backlogs.map((b) => b.asked);
      hub.sweepBackpressure();
      perCall.push(backlogs.filter((b, i) => b.asked > (before[i] ?? 0)).length);
    }

    const slice = Math.ceil(46 / BACKPRESSURE_SWEEP_SLICES);
    expect(Math.max(...perCall)).toBeLessThanOrEqual(slice);
    for (const backlog of backlogs) expect(backlog.asked).toBeGreaterThanOrEqual(1);
    expect(backlogs.filter((b) => b.closedWith === 1013)).toHaveLength(5);
    expect(backlogs.filter((b) => b.bytes === 10 && b.closedWith !== undefined)).toEqual([]);
    expect(direct.closedWith).toBeUndefined();
  });

  it('reaches connections that joined during a round, and forgets ones that left', () => {
    const { hub, join } = hubWithTopics();
    const early = Array.from({ length: 20 }, (): Backlog => ({ bytes: 10, asked: 0 }));
    const sockets = early.map((backlog) => socket(Encodings.MSGPACK, true, backlog));
    for (const s of sockets) join(s);
    hub.sweepBackpressure();
    const late: Backlog = { bytes: over, asked: 0 };
    join(socket(Encodings.JSON, true, late));
    const gone = sockets[19] as RecordingSocket;
    const goneBacklog = early[19] as Backlog;
    hub.leaveRoom(roomId, gone.connection);
    goneBacklog.bytes = over;

    for (let call = 0; call < 2 * BACKPRESSURE_SWEEP_SLICES; call++) hub.sweepBackpressure();

    expect(late.closedWith).toBe(1013);
    expect(goneBacklog.closedWith).toBeUndefined();
  });
});

describe('topic subscribers checked by a busy room (review 21)', () => {
  it('closes a slow topic subscriber 1013 once topicCheckBytes were published to its room, before any sweep', () => {
    const hub = createHub(codec, { topicCheckBytes: 4_096 });
    hub.useTopics(() => undefined);
    const slow: Backlog = { bytes: environment.limits.maxBufferedBytes + 1, asked: 0 };
    const fast: Backlog = { bytes: 10, asked: 0 };
    for (const backlog of [slow, fast]) {
      const s = socket(Encodings.MSGPACK, true, backlog);
      hub.add(s.connection);
      hub.joinRoom(roomId, s.connection, 0);
      hub.finishCatchUp(roomId, s.connection);
    }
    const body = 'x'.repeat(1_000);
    const push = (seq: number) => hub.pushToRoom(roomId, { t: 'room.message', d: { ...message(seq), body } });
    push(1); // written directly, then both are promoted to the topic
    push(2);
    expect(slow.closedWith).toBeUndefined();
    for (let seq = 3; seq <= 8; seq++) push(seq); // past 4 KiB published
    expect(slow.closedWith).toBe(1013);
    expect(fast.closedWith).toBeUndefined();
  });
});

describe('a request that finishes after its socket closed', () => {
  /** Live Connection objects (queryObjects collects garbage first, so only reachable ones count). */
  const liveConnections = () => queryObjects(Connection, { format: 'count' }) as number;

  it('registers nothing: a late watch or expiry reschedule keeps no closed connection', () => {
    const hub = createHub(codec);
    const watched = 'd0000000-0000-4000-8000-ffffffffffff' as UserId;
    const before = liveConnections();
    // In a scope of its own, so the test itself holds no reference once it returns.
    (() => {
      for (let i = 0; i < 3; i++) {
        const { connection } = socket(Encodings.MSGPACK, false);
        hub.add(connection);
        hub.remove(connection);
        // What `presence.subscribe` and `auth.refresh` do once their awaits come back.
        hub.watch(connection, [watched]);
        hub.rescheduleExpiry(connection);
      }
    })();
    expect(liveConnections()).toBe(before);
  });

  it('still watches and reschedules a connection that is open', () => {
    const hub = createHub(codec);
    const watched = 'd0000000-0000-4000-8000-fffffffffffe' as UserId;
    const s = socket(Encodings.MSGPACK, false);
    hub.add(s.connection);
    hub.watch(s.connection, [watched]);
    s.connection.principal = { ...s.connection.principal, expiresAt: 5_000 };
    hub.rescheduleExpiry(s.connection);
    hub.pushToWatchers(watched, { t: 'room.message', d: message(7) });
    expect(s.direct).toEqual([7]);
  });
});
