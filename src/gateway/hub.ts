/**
 * The node-local registry of open connections: by id, by user, by watched user (presence), and by
 * the second their access token expires. Fan-out encodes a frame once per encoding, however many
 * connections receive it. Token expiry is swept once a second for the whole node (no timer per
 * socket): an unrefreshed connection is closed 4001 within a second of its token's `exp`, and any
 * connection within a second of its session's absolute end (known from the session row its token
 * was checked against: no read of its own).
 *
 * Room messages: a connection that has caught up with a room is subscribed to the room's native
 * topic (one per encoding) when its transport has topics (uWebSockets.js), so each message is one
 * `publish` whatever the number of receivers; the fallback transport's connections get the same
 * bytes one by one. Connections still catching up hold live messages and are never subscribed
 * until their backlog is out, so seq order holds on both paths.
 */
import type { Codec } from '../../protocol/src/codec.js';
import { CloseCode } from '../../protocol/src/codes.js';
import type { PresenceState, RoomMessage, ServerFrame } from '../../protocol/src/frames.js';
import type { RoomId, SessionId, UserId } from '../../protocol/src/ids.js';
import { Encoding } from '../../protocol/src/version.js';
import { estimatedMessageBytes } from '../domain/rooms/message-size.js';
import type { Connection } from './connection.js';
import { encodedBytes } from './send-budget.js';
import type { TopicPublisher } from './transport.js';

/** A connection's place in a room: the highest seq delivered, and what waits while it catches up. */
interface RoomCursor {
  seq: number;
  /** Live messages held back while the join backlog is delivered; undefined once caught up. */
  held: RoomMessage[] | undefined;
  /** Estimated bytes of `held` (domain/rooms/message-size.ts). */
  heldBytes: number;
  /** The native topic this connection receives the room's messages through, once caught up. */
  topic: string | undefined;
}

/** A room as this node sees it: its local joiners and the newest message fanned out here. */
interface LocalRoom {
  readonly members: Map<Connection, RoomCursor>;
  /** Highest seq published to the room's topics (a message at or below it is a duplicate). */
  publishedSeq: number;
  /** Topic subscribers per encoding: a topic with none is not published to. */
  readonly subscribers: Record<Encoding, number>;
  /** Bytes published to the room's topics since its subscribers' buffers were last checked. */
  topicBytes: number;
}

/**
 * What ended a join before it registered: a later join of the same connection and room, a leave, a
 * removal of the user from the room, or the connection's close.
 */
export type JoinCancel = 'replaced' | 'left' | 'removed' | 'closed';

/**
 * A `room.join` between its start (`beginJoin`, before membership is checked) and its registration
 * (`joinRoom`). A leave or a removal processed in that window finds no cursor to remove: it cancels
 * the pending join instead, so the join, when its checks come back, does not register.
 */
export interface PendingJoin {
  cancelled: JoinCancel | undefined;
}

/**
 * A `presence.subscribe` between its start (`beginWatch`, before contacts are checked) and its
 * end: a `presence.unsubscribe` of the same connection handled meanwhile withdraws its ids here,
 * so the subscribe, when its check comes back, does not watch them (the unsubscribe was sent
 * later and is the client's latest word; the SDK sends it without waiting for the subscribe's ok).
 */
export interface PendingWatch {
  readonly userIds: ReadonlySet<UserId>;
  readonly withdrawn: Set<UserId>;
  /**
   * The last `presence` push of each of its users sent to the connection while it waited: the
   * reply, sent after such a push, must not carry an older state (a snapshot read before the
   * transition but answered after its push would leave the client on the old state).
   */
  readonly pushed: Map<UserId, PresenceState>;
  /**
   * The users this request started watching (`watch`): what it takes back if it fails
   * (`takeBackWatch`). Another request of the connection for the same user answered `ok` meanwhile
   * takes them out of it (that `ok` promised the watch); one still waiting is handed them when
   * this one fails (its answer decides). Before, a failed request took back a watch another one's
   * `ok` had just promised (review 27).
   */
  readonly added: Set<UserId>;
}

/** The native topic of a room's messages in one encoding. */
export const roomMessageTopic = (roomId: RoomId, encoding: Encoding) => `room/${roomId}/${encoding}`;

/**
 * Live messages one connection may hold while it catches up with a room (as many as a join replays
 * at most, MAX_BACKLOG): past it the connection is a slow consumer, closed 1013, and its client
 * rejoins from where it got to. Without a bound, a reader whose buffer goes down now and then (so
 * its catch-up never counts as stalled) kept every message of a busy room in memory.
 */
export const MAX_HELD_PER_JOIN = 10_000;
/**
 * ...and at most this many bytes of them (estimated heap): one message is not one size. A `meta` of
 * 4 096 characters can be ~90 KB once parsed, so 10 000 held messages could pin ~900 MB for one
 * joiner that reads just enough never to stall (review 24). Typical messages reach the count first.
 */
export const MAX_HELD_BYTES_PER_JOIN = 8 * 1024 * 1024;
/**
 * ...and what all the joins of one connection hold together (review 30). A connection may catch up
 * with every room of its user at once (up to ROOMS_MAX_PER_USER, 1 000), each join waiting for the
 * socket to drain: a reader keeping its buffer just above the low-water mark, joined to its 1 000
 * rooms while its other sockets sent the largest messages round them, pinned up to 1 000 times the
 * bound of one join for one socket, and the node ran out of heap.
 */
export const MAX_HELD_BYTES_PER_CONNECTION = 8 * 1024 * 1024;

/** Calls of `sweepBackpressure` that together check every connection once (one call per 1/N s). */
export const BACKPRESSURE_SWEEP_SLICES = 10;

export function createHub(
  codec: Codec,
  options: {
    /**
     * Bytes published to a room's topics after which its topic subscribers are checked for slow
     * consumers at once, not only by the sweep (about a second apart): a busy room can queue
     * megabytes per subscriber in that second, and uWS closes a socket past its own limit without a
     * close frame (the client sees 1006, not 1013). At most a quarter of maxBufferedBytes.
     */
    readonly topicCheckBytes?: number;
    /** Estimated bytes of live messages one join may hold while it catches up (default MAX_HELD_BYTES_PER_JOIN). */
    readonly maxHeldBytes?: number;
    /** ...and all the joins of one connection together (default MAX_HELD_BYTES_PER_CONNECTION). */
    readonly maxHeldBytesPerConnection?: number;
  } = {},
) {
  const topicCheckBytes = options.topicCheckBytes ?? 256 * 1024;
  const maxHeldBytes = options.maxHeldBytes ?? MAX_HELD_BYTES_PER_JOIN;
  const maxHeldBytesPerConnection = options.maxHeldBytesPerConnection ?? MAX_HELD_BYTES_PER_CONNECTION;
  const rooms = new Map<RoomId, LocalRoom>();
  let publish: TopicPublisher | undefined;
  const roomsOf = new Map<Connection, Set<RoomId>>();
  /** Joins started but not registered yet, per connection and room (at most one each: the newest). */
  const pendingJoins = new Map<Connection, Map<RoomId, PendingJoin>>();
  const connections = new Map<string, Connection>();
  const byUser = new Map<UserId, Set<Connection>>();
  const watchers = new Map<UserId, Set<Connection>>();
  const watchedBy = new Map<Connection, Set<UserId>>();
  /** Users pushed to watchers, one set per `recordWatcherPushes` in progress. */
  const watcherPushRecords = new Set<Set<UserId>>();
  /** presence.subscribe requests of each connection still checking (see PendingWatch). */
  const pendingWatches = new Map<Connection, Set<PendingWatch>>();
  const expiring = new Map<number, Set<Connection>>();
  const expirySecond = new Map<Connection, number>();
  /** How many room topics each topic-fed connection receives through (absent: none). */
  const topicsOf = new Map<Connection, number>();
  /** Estimated bytes held by all the catch-ups of each connection (absent: none). */
  const heldOf = new Map<Connection, number>();
  /** Where the backpressure sweep goes on from at its next call. */
  let sweepCursor: Iterator<Connection> | undefined;
  /**
   * Registered joins (their cursors, the tokens `joinRoom` returns) ended by a removal of their
   * user: a join still catching up answers FORBIDDEN then, not `ok` for a room it is out of.
   */
  const removedJoins = new WeakSet<object>();

  const addTo = <K, V>(map: Map<K, Set<V>>, key: K, value: V) => {
    let set = map.get(key);
    if (set === undefined) {
      set = new Set();
      map.set(key, set);
    }
    set.add(value);
  };
  const removeFrom = <K, V>(map: Map<K, Set<V>>, key: K, value: V) => {
    const set = map.get(key);
    if (set === undefined) return;
    set.delete(value);
    if (set.size === 0) map.delete(key);
  };

  /** Moves a cursor's held bytes (and its connection's total) by `delta`. */
  const changeHeld = (connection: Connection, cursor: RoomCursor, delta: number) => {
    cursor.heldBytes += delta;
    const total = (heldOf.get(connection) ?? 0) + delta;
    if (total > 0) heldOf.set(connection, total);
    else heldOf.delete(connection);
  };
  /** Drops what a cursor holds (its catch-up goes on holding later messages, if any). */
  const dropHeld = (connection: Connection, cursor: RoomCursor) =>
    changeHeld(connection, cursor, -cursor.heldBytes);

  /** Sends one frame to many connections, encoding it at most once per encoding; returns the encodings made. */
  const fanOut = (targets: Iterable<Connection>, frame: ServerFrame) => {
    let msgpack: Uint8Array | undefined;
    let json: string | undefined;
    for (const connection of targets) {
      if (connection.encoding === Encoding.MSGPACK) {
        msgpack ??= codec.encode(frame, Encoding.MSGPACK);
        connection.sendEncoded(msgpack);
      } else {
        json ??= codec.encode(frame, Encoding.JSON);
        connection.sendEncoded(json);
      }
    }
    return { msgpack, json };
  };

  /**
   * Moves a caught-up connection from one-by-one writes to the room's topic, but only when it stands
   * exactly where the topic does: behind, it would miss messages; ahead (its backlog came from the
   * database while a message was still on its way here), it would get one twice. Otherwise it
   * stays on the direct path and is promoted once a message brings the two level.
   */
  const promote = (room: LocalRoom, roomId: RoomId, connection: Connection, cursor: RoomCursor) => {
    if (publish === undefined || cursor.topic !== undefined || cursor.held !== undefined) return;
    if (cursor.seq !== room.publishedSeq) return;
    const topic = roomMessageTopic(roomId, connection.encoding);
    if (connection.subscribe(topic)) {
      cursor.topic = topic;
      room.subscribers[connection.encoding] += 1;
      topicsOf.set(connection, (topicsOf.get(connection) ?? 0) + 1);
    }
  };

  /**
   * Sends `messages` above the cursor's seq to the connection, in order, until the next one would
   * take the burst past `maxBytes` (the first one always goes). Returns how many it went through.
   */
  const sendWithin = (
    connection: Connection,
    cursor: RoomCursor,
    messages: readonly RoomMessage[],
    maxBytes: number,
  ) => {
    let bytes = 0;
    for (const [i, message] of messages.entries()) {
      if (message.seq <= cursor.seq) continue;
      const data = codec.encode({ t: 'room.message', d: message }, connection.encoding);
      const size = encodedBytes(data);
      if (bytes > 0 && bytes + size > maxBytes) return i;
      bytes += size;
      cursor.seq = message.seq;
      connection.sendEncoded(data);
    }
    return messages.length;
  };

  /** Drops the connection's pending join of the room, if it is `join` (any, without `join`). */
  const forgetJoin = (roomId: RoomId, connection: Connection, join?: PendingJoin) => {
    const pending = pendingJoins.get(connection);
    const current = pending?.get(roomId);
    if (pending === undefined || current === undefined || (join !== undefined && current !== join)) {
      return undefined;
    }
    pending.delete(roomId);
    if (pending.size === 0) pendingJoins.delete(connection);
    return current;
  };

  /** Ends the connection's pending join of the room, if any, telling its joiner why. */
  const cancelJoin = (roomId: RoomId, connection: Connection, why: JoinCancel) => {
    const join = forgetJoin(roomId, connection);
    if (join !== undefined) join.cancelled = why;
  };

  /** Takes a connection out of a room: its topic, its cursor, and the room when it was the last. */
  const detach = (roomId: RoomId, connection: Connection) => {
    const room = rooms.get(roomId);
    const cursor = room?.members.get(connection);
    if (room === undefined || cursor === undefined) return;
    dropHeld(connection, cursor);
    if (cursor.topic !== undefined) {
      connection.unsubscribe(cursor.topic);
      room.subscribers[connection.encoding] -= 1;
      const left = (topicsOf.get(connection) ?? 1) - 1;
      if (left > 0) topicsOf.set(connection, left);
      else topicsOf.delete(connection);
    }
    room.members.delete(connection);
    if (room.members.size === 0) rooms.delete(roomId);
  };

  /**
   * Whether the connection is still open here. A handler that awaited (an `auth.refresh`, a
   * `presence.subscribe`) may come back after its socket closed and `remove` ran: registering it
   * then would keep the closed connection in a map nothing clears again.
   */
  const isRegistered = (connection: Connection) => connections.get(connection.id) === connection;

  const scheduleExpiry = (connection: Connection) => {
    if (!isRegistered(connection)) return;
    const previous = expirySecond.get(connection);
    if (previous !== undefined) removeFrom(expiring, previous, connection);
    const second = Math.ceil(connection.authExpiresAt / 1000);
    expirySecond.set(connection, second);
    addTo(expiring, second, connection);
  };

  return {
    size: () => connections.size,

    add(connection: Connection): void {
      connections.set(connection.id, connection);
      addTo(byUser, connection.userId, connection);
      scheduleExpiry(connection);
    },

    /** Room messages go through native topics from now on (uWebSockets.js is listening). */
    useTopics(publisher: TopicPublisher): void {
      publish = publisher;
    },

    remove(connection: Connection): void {
      connections.delete(connection.id);
      removeFrom(byUser, connection.userId, connection);
      for (const watched of watchedBy.get(connection) ?? []) removeFrom(watchers, watched, connection);
      watchedBy.delete(connection);
      pendingWatches.delete(connection);
      for (const roomId of roomsOf.get(connection) ?? []) detach(roomId, connection);
      roomsOf.delete(connection);
      for (const join of pendingJoins.get(connection)?.values() ?? []) join.cancelled = 'closed';
      pendingJoins.delete(connection);
      topicsOf.delete(connection);
      heldOf.delete(connection);
      const second = expirySecond.get(connection);
      if (second !== undefined) removeFrom(expiring, second, connection);
      expirySecond.delete(connection);
    },

    /** After `auth.refresh`: the connection now expires with its new token. */
    rescheduleExpiry: scheduleExpiry,

    connectionsOf: (userId: UserId): ReadonlySet<Connection> => byUser.get(userId) ?? new Set(),

    /** Whether the user has a connection here (no set is kept for a user without one). */
    hasUser: (userId: UserId): boolean => byUser.has(userId),

    pushToUser(userId: UserId, frame: ServerFrame): void {
      const targets = byUser.get(userId);
      if (targets !== undefined) fanOut(targets, frame);
    },

    /** One frame to these connections, encoded at most once per encoding (the live job board). */
    pushTo(targets: Iterable<Connection>, frame: ServerFrame): void {
      fanOut(targets, frame);
    },

    /**
     * Watches the users' presence for the connection; given the `beginWatch` of the request, not
     * those an unsubscribe withdrew since it began.
     */
    watch(connection: Connection, userIds: readonly UserId[], pending?: PendingWatch): void {
      if (!isRegistered(connection)) return;
      for (const userId of userIds) {
        if (pending?.withdrawn.has(userId) === true) continue;
        if (watchedBy.get(connection)?.has(userId) !== true) pending?.added.add(userId);
        addTo(watchers, userId, connection);
        addTo(watchedBy, connection, userId);
      }
    },

    /** Starts a presence.subscribe of the connection, before anything is awaited for it. */
    beginWatch(connection: Connection, userIds: readonly UserId[]): PendingWatch {
      const pending: PendingWatch = {
        userIds: new Set(userIds),
        withdrawn: new Set(),
        pushed: new Map(),
        added: new Set(),
      };
      if (isRegistered(connection)) addTo(pendingWatches, connection, pending);
      return pending;
    },

    /**
     * Ends a presence.subscribe begun with `beginWatch` (answered or failed). `answeredOk`: its `ok`
     * promised its users' watches, so no other request of the connection takes them back.
     */
    endWatch(connection: Connection, pending: PendingWatch, answeredOk = false): void {
      removeFrom(pendingWatches, connection, pending);
      if (!answeredOk) return;
      for (const other of pendingWatches.get(connection) ?? []) {
        for (const userId of pending.userIds) {
          if (!pending.withdrawn.has(userId)) other.added.delete(userId);
        }
      }
    },

    /**
     * A presence.subscribe failed: its error says nothing was subscribed, so what it started
     * watching ends, unless another request of the connection still waiting asks for the same user
     * (that one's answer decides: it takes the watch over).
     */
    takeBackWatch(connection: Connection, pending: PendingWatch): void {
      const others = [...(pendingWatches.get(connection) ?? [])].filter((other) => other !== pending);
      for (const userId of pending.added) {
        const heir = others.find((other) => other.userIds.has(userId) && !other.withdrawn.has(userId));
        if (heir !== undefined) heir.added.add(userId);
        else {
          removeFrom(watchers, userId, connection);
          removeFrom(watchedBy, connection, userId);
        }
      }
      pending.added.clear();
    },

    /**
     * `presence.unsubscribe`: ends the connection's watch of the users, and withdraws them from
     * its presence.subscribe requests still checking (which would otherwise watch them after).
     */
    unsubscribe(connection: Connection, userIds: readonly UserId[]): void {
      for (const pending of pendingWatches.get(connection) ?? []) {
        for (const userId of userIds) pending.withdrawn.add(userId);
      }
      for (const userId of userIds) {
        removeFrom(watchers, userId, connection);
        removeFrom(watchedBy, connection, userId);
      }
    },

    /** Every connection watching someone's presence here, with whom (copies). */
    watches: (): [Connection, UserId[]][] =>
      [...watchedBy].map(([connection, userIds]) => [connection, [...userIds]]),

    /** Whether the connection receives the user's presence pushes. */
    isWatching: (connection: Connection, userId: UserId): boolean =>
      watchedBy.get(connection)?.has(userId) === true,

    unwatch(connection: Connection, userIds: readonly UserId[]): void {
      for (const userId of userIds) {
        removeFrom(watchers, userId, connection);
        removeFrom(watchedBy, connection, userId);
      }
    },

    /** Every user some connection here watches (presence). */
    watchedUsers: (): UserId[] => [...watchers.keys()],

    /**
     * Records the users whose watchers get a push from now until `stop`: a presence state read
     * before such a push is older than it, and must not be pushed after it.
     */
    recordWatcherPushes(): { readonly heard: ReadonlySet<UserId>; readonly stop: () => void } {
      const heard = new Set<UserId>();
      watcherPushRecords.add(heard);
      return { heard, stop: () => watcherPushRecords.delete(heard) };
    },

    pushToWatchers(userId: UserId, frame: ServerFrame): void {
      for (const heard of watcherPushRecords) heard.add(userId);
      const targets = watchers.get(userId);
      if (targets === undefined) return;
      fanOut(targets, frame);
      if (frame.t !== 'presence' || pendingWatches.size === 0) return;
      for (const connection of targets) {
        for (const pending of pendingWatches.get(connection) ?? []) {
          if (pending.userIds.has(userId)) pending.pushed.set(userId, frame.d);
        }
      }
    },

    connectionById: (id: string) => connections.get(id),

    /**
     * Starts a join of the room on this connection, before anything is awaited for it: from now on
     * a leave or a removal (`leaveRoom`), a later join of the same room (`beginJoin` again) or the
     * close cancels it. A closed connection's join is cancelled from the start.
     */
    beginJoin(roomId: RoomId, connection: Connection): PendingJoin {
      if (!isRegistered(connection)) return { cancelled: 'closed' };
      cancelJoin(roomId, connection, 'replaced');
      const join: PendingJoin = { cancelled: undefined };
      let pending = pendingJoins.get(connection);
      if (pending === undefined) {
        pending = new Map();
        pendingJoins.set(connection, pending);
      }
      pending.set(roomId, join);
      return join;
    },

    /** Whether a join of the room on this connection is pending (begun, not registered nor cancelled). */
    hasPendingJoin: (roomId: RoomId, connection: Connection): boolean =>
      pendingJoins.get(connection)?.has(roomId) === true,

    /** Forgets a pending join that failed (membership refused, the room unreachable), if still current. */
    endJoin(roomId: RoomId, connection: Connection, join: PendingJoin): void {
      forgetJoin(roomId, connection, join);
    },

    /**
     * Starts (or restarts) a connection's subscription to a room at `sinceSeq`, holding live
     * messages until `finishCatchUp`. Returns this join's token: a later join, a leave or a close
     * replaces or removes it (see `isJoinedAs`), which tells a backlog reader to stop. Given the
     * `beginJoin` of this join, registers only if nothing cancelled it meanwhile (undefined then).
     */
    joinRoom(
      roomId: RoomId,
      connection: Connection,
      sinceSeq: number,
      pending?: PendingJoin,
    ): object | undefined {
      if (pending !== undefined) {
        if (pending.cancelled !== undefined) return undefined;
        forgetJoin(roomId, connection, pending);
      }
      detach(roomId, connection);
      let room = rooms.get(roomId);
      if (room === undefined) {
        room = { members: new Map(), publishedSeq: 0, subscribers: { msgpack: 0, json: 0 }, topicBytes: 0 };
        rooms.set(roomId, room);
      }
      const cursor: RoomCursor = { seq: sinceSeq, held: [], heldBytes: 0, topic: undefined };
      room.members.set(connection, cursor);
      addTo(roomsOf, connection, roomId);
      return cursor;
    },

    /** Whether the join that returned `token` was ended by a removal of its user from the room. */
    wasRemoved: (token: object): boolean => removedJoins.has(token),

    /** Whether the connection is still in the room through the join that returned `token`. */
    isJoinedAs: (roomId: RoomId, connection: Connection, token: object): boolean =>
      rooms.get(roomId)?.members.get(connection) === token,

    /**
     * Takes the connection out of the room, and cancels its pending join of it (`why` tells the
     * joiner: the connection left, or its user was removed from the room). Returns true when no
     * local connection is left in the room (the node may drop its bus subscription).
     */
    leaveRoom(roomId: RoomId, connection: Connection, why: 'left' | 'removed' = 'left'): boolean {
      cancelJoin(roomId, connection, why);
      const cursor = rooms.get(roomId)?.members.get(connection);
      if (why === 'removed' && cursor !== undefined) removedJoins.add(cursor);
      detach(roomId, connection);
      removeFrom(roomsOf, connection, roomId);
      return !rooms.has(roomId);
    },

    /**
     * Takes out the join that returned `token` (one that could not finish), and nothing else: a
     * newer join of the connection, registered or still pending, stays.
     */
    dropJoin(roomId: RoomId, connection: Connection, token: object): void {
      if (rooms.get(roomId)?.members.get(connection) !== token) return;
      detach(roomId, connection);
      removeFrom(roomsOf, connection, roomId);
    },

    hasRoom: (roomId: RoomId) => rooms.has(roomId),
    /** The connections joined to the room here (caught up or catching up). */
    joinersOf: (roomId: RoomId): Connection[] => [...(rooms.get(roomId)?.members.keys() ?? [])],

    roomsOfConnection: (connection: Connection): RoomId[] => [...(roomsOf.get(connection) ?? [])],

    /**
     * Backlog of a join, in seq order, straight to one connection: at most `maxBytes` of encoded
     * frames (at least one message), so one burst never fills the socket's buffer (send-budget.ts).
     * Returns how many of `messages` it went through; the caller sends the rest in a later burst.
     */
    deliverBacklog(
      roomId: RoomId,
      connection: Connection,
      messages: readonly RoomMessage[],
      maxBytes = Number.POSITIVE_INFINITY,
    ): number {
      const cursor = rooms.get(roomId)?.members.get(connection);
      if (cursor === undefined) return messages.length;
      return sendWithin(connection, cursor, messages, maxBytes);
    },

    /**
     * Sends the live messages held while the connection caught up, in seq order, at most `maxBytes`
     * of them (at least one); they stay held (and later ones keep being held) until
     * `finishCatchUp`. Returns whether none is left to send.
     */
    deliverHeld(roomId: RoomId, connection: Connection, maxBytes: number): boolean {
      const cursor = rooms.get(roomId)?.members.get(connection);
      if (cursor === undefined || cursor.held === undefined) return true;
      const held = cursor.held.sort((a, b) => a.seq - b.seq);
      const done = sendWithin(connection, cursor, held, maxBytes);
      for (const message of held.splice(0, done))
        changeHeld(connection, cursor, -estimatedMessageBytes(message));
      if (held.length === 0) dropHeld(connection, cursor);
      return held.length === 0;
    },

    /** Ends the catch-up: what arrived live meanwhile follows the backlog, duplicates dropped. */
    finishCatchUp(roomId: RoomId, connection: Connection): void {
      const room = rooms.get(roomId);
      const cursor = room?.members.get(connection);
      if (room === undefined || cursor === undefined || cursor.held === undefined) return;
      const held = cursor.held.sort((a, b) => a.seq - b.seq);
      cursor.held = undefined;
      dropHeld(connection, cursor);
      for (const message of held) {
        if (message.seq <= cursor.seq) continue;
        cursor.seq = message.seq;
        connection.sendFrame({ t: 'room.message', d: message });
      }
      promote(room, roomId, connection, cursor);
    },

    /** A room frame from the bus to every local connection in the room, once per connection and seq. */
    pushToRoom(roomId: RoomId, frame: ServerFrame): void {
      const room = rooms.get(roomId);
      if (room === undefined) return;
      if (frame.t !== 'room.message') {
        const skipUser = frame.t === 'room.typing' ? frame.d.userId : undefined;
        fanOut(
          [...room.members.keys()].filter((c) => c.userId !== skipUser),
          frame,
        );
        return;
      }
      const message = frame.d;
      const targets: Connection[] = [];
      /** Estimated bytes of the message, once some connection holds it. */
      let size: number | undefined;
      for (const [connection, cursor] of room.members) {
        if (cursor.topic !== undefined) continue;
        if (cursor.held !== undefined) {
          // Closing (its transport reports the close later): nothing is sent to it any more.
          if (!connection.isOpen) continue;
          size ??= estimatedMessageBytes(message);
          if (
            cursor.held.length >= MAX_HELD_PER_JOIN ||
            cursor.heldBytes + size > maxHeldBytes ||
            (heldOf.get(connection) ?? 0) + size > maxHeldBytesPerConnection
          ) {
            // Catching up slower than the room talks (a reader trickling just enough never to
            // stall): each held message would be kept for as long as it keeps trickling.
            cursor.held = [];
            dropHeld(connection, cursor);
            connection.close(CloseCode.TRY_AGAIN_LATER, 'slow consumer');
            continue;
          }
          cursor.held.push(message);
          changeHeld(connection, cursor, size);
          continue;
        }
        if (message.seq <= cursor.seq) continue;
        cursor.seq = message.seq;
        targets.push(connection);
      }
      const encoded = fanOut(targets, frame);
      if (message.seq <= room.publishedSeq) return;
      room.publishedSeq = message.seq;
      if (publish === undefined) return;
      for (const encoding of [Encoding.MSGPACK, Encoding.JSON] as const) {
        if (room.subscribers[encoding] === 0) continue;
        const bytes = encoded[encoding] ?? codec.encode(frame, encoding);
        publish(roomMessageTopic(roomId, encoding), bytes, encoding === Encoding.MSGPACK);
        // Bytes of a JSON string (at most 3 per UTF-16 unit) or of a msgpack buffer, by excess.
        room.topicBytes += typeof bytes === 'string' ? bytes.length * 3 : bytes.byteLength;
      }
      if (room.topicBytes >= topicCheckBytes) {
        room.topicBytes = 0;
        for (const [connection, cursor] of room.members) {
          if (cursor.topic !== undefined) connection.checkBackpressure();
        }
      }
      // Written to directly just now and level with the topic: from the next message on, the topic.
      for (const connection of targets) {
        const cursor = room.members.get(connection);
        if (cursor !== undefined) promote(room, roomId, connection, cursor);
      }
    },

    /** Closes the user's connections: all, or those of one session. */
    closeUser(userId: UserId, sessionId: SessionId | undefined, code: number, reason: string): number {
      let closed = 0;
      for (const connection of [...(byUser.get(userId) ?? [])]) {
        if (sessionId === undefined || connection.principal.sessionId === sessionId) {
          connection.close(code, reason);
          closed += 1;
        }
      }
      return closed;
    },

    closeAll(code: number, reason: string): void {
      for (const connection of [...connections.values()]) connection.close(code, reason);
    },

    /**
     * Closes slow consumers among connections fed by topics (their frames skip the per-send check).
     * Called BACKPRESSURE_SWEEP_SLICES times a second, each call checks the next slice of the
     * node's connections, so each is checked about once a second and no call holds the event loop
     * for all of them (a walk of 10 000 sockets took 3–5 ms of the loop at once).
     */
    sweepBackpressure(): void {
      let budget = Math.ceil(connections.size / BACKPRESSURE_SWEEP_SLICES);
      while (budget > 0) {
        // A Map iterator survives deletes and sees inserts, so one walk continues across calls.
        sweepCursor ??= connections.values();
        const next = sweepCursor.next();
        if (next.done === true) {
          sweepCursor = undefined;
          return;
        }
        budget -= 1;
        if (topicsOf.has(next.value)) next.value.checkBackpressure();
      }
    },

    /** Closes every connection whose token (or session) expired by `nowMs`; called once a second. */
    sweepExpired(nowMs: number): void {
      const due = Math.floor(nowMs / 1000);
      for (const [second, set] of expiring) {
        if (second > due) continue;
        for (const connection of set) {
          const { expiresAt, sessionExpiresAt } = connection.principal;
          connection.close(
            CloseCode.AUTH_EXPIRED,
            sessionExpiresAt < expiresAt ? 'session expired' : 'access token expired',
          );
        }
        expiring.delete(second);
      }
    },
  };
}

export type Hub = ReturnType<typeof createHub>;
