/**
 * createGateway: the WebSocket edge of a node, composed of small parts that each read one way:
 * both transports (uWebSockets.js on WS_PORT when a native build loads, @fastify/websocket at /ws
 * on PORT always) feed one connection layer (connection.ts, handlers.ts); the hub holds this node's
 * sockets; rooms are reached through the room router (room-router.ts: the owner node by placement,
 * local or over the bus) and delivered per joined room (room-joins.ts); what arrives on the bus for
 * this node's sockets is routed by the bus bridge (bus-bridge.ts); the node's lease and the reaper
 * are node-presence.ts. Builds without listening: bin/ registers `actorKinds` on the actor system,
 * calls `start`, `registerFastify` and, at shutdown, the steps of `shutdownSteps` in order.
 *
 * May import everything below it: protocol, config, platform, db, domain, http, actors.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { Counter, Gauge, type Registry } from 'prom-client';
import { createCodec } from '../../protocol/src/codec.js';
import { CloseCode, type ErrorCode } from '../../protocol/src/codes.js';
import type { ClientFrame, NotificationsReadPayload, WalletPayload } from '../../protocol/src/frames.js';
import { RoomId, UserId } from '../../protocol/src/ids.js';
import { type Encoding, PROTOCOL_VERSION } from '../../protocol/src/version.js';
import { roomActorKind } from '../actors/room/room-actor.js';
import { createRoomStore, type RoomStore } from '../actors/room/room-store.js';
import { type ActorSystem, createRemoteActors, DEFAULT_ASK_TIMEOUT_MS } from '../actors/runtime/index.js';
import { type UserMessage, userActorKind } from '../actors/user/user-actor.js';
import type { Database } from '../db/database.js';
import { memberKey, membershipsAmong } from '../db/repositories/rooms.repo.js';
import { mutualContactIdsAmong } from '../db/repositories/users.repo.js';
import type { AuthService } from '../domain/auth/service.js';
import { NOTIFICATIONS_TOPIC, type NotificationsApi } from '../domain/notifications/service.js';
import type { OnRoomMessagesStored } from '../domain/notifications/unread-scheduler.js';
import type { PresenceService } from '../domain/presence/service.js';
import { toRoomMessage } from '../domain/rooms/service.js';
import type { Bus } from '../platform/bus/bus.js';
import { createFanOutQueue } from '../platform/bus/fanout-queue.js';
import { clientNetwork } from '../platform/client-network.js';
import { AppError, isAppError, isDependencyUnavailable } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { createPlacement } from '../platform/placement.js';
import type { PresenceStore } from '../platform/presence-store.js';
import type { ShutdownStep } from '../platform/shutdown.js';
import { createTickBatcher } from '../platform/tick-batcher.js';
import { type CancelTimer, every, systemTimers } from '../platform/timers.js';
import { withTrace } from '../platform/trace.js';
import { subscribeBusBridge } from './bus-bridge.js';
import { Connection, type ConnectionLimits, createBucketCarry, createStrikeCarry } from './connection.js';
import type { WebSocketEngine } from './engine.js';
import { registerFastifyWebSocket } from './fastify-ws.js';
import { startFdGuard } from './fd-guard.js';
import { createHandlers, dispatchThrough } from './handlers.js';
import { BACKPRESSURE_SWEEP_SLICES, createHub } from './hub.js';
import { createJobBoard } from './job-board.js';
import { watchLoopStalls } from './loop-stalls.js';
import { createNodePresence, createSocketPresence } from './node-presence.js';
import { createRoomAccess } from './room-access.js';
import { createRoomJoins, TAIL_SWEEP_MS } from './room-joins.js';
import { createRoomReads } from './room-reads.js';
import { createRoomRouter } from './room-router.js';
import { fitMessages, sendBudget } from './send-budget.js';
import { decideAtSocketCap, socketCapClose } from './socket-cap.js';
import type { GatewayCore } from './transport.js';
import { createUpgradeAuthenticator } from './upgrade.js';
import {
  clientAddressResolver,
  createConnectionCap,
  createUpgradeRateLimiter,
  type TrustProxy,
} from './upgrade-limits.js';
import { listenUws, type UwsListener } from './uws.js';

/** Bus topic of personal notifications: `{ userId, notification }`, delivered to every node. */
export { NOTIFICATIONS_TOPIC };

export interface GatewaySettings {
  readonly host: string;
  readonly wsPort: number;
  readonly maxFrameBytes: number;
  readonly maxMessagesPerSecond: number;
  readonly maxBurst: number;
  readonly maxBufferedBytes: number;
  readonly idleTimeoutS: number;
  readonly presenceLeaseMs: number;
  /**
   * Open sockets per user on this node; one more replaces a silent one or is closed right after
   * opening (4101 while the others are pinged, 1008 once they all answered): socket-cap.ts.
   */
  readonly maxSocketsPerUser: number;
  /** Upgrade requests per client IP on this node: sustained per second, and at once. */
  readonly upgradesPerIpPerSecond: number;
  readonly upgradeBurstPerIp: number;
  /** Open sockets and upgrades in progress per client IP on this node, both transports (upgrade-limits.ts). */
  readonly maxConnectionsPerIp: number;
  /** WS_FD_RESERVE: free descriptors below which WS_PORT stops accepting (fd-guard.ts); absent = off. */
  readonly fdReserve?: number;
  /** TRUST_PROXY: which X-Forwarded-For hops name the client of an upgrade on the uWS port. */
  readonly trustProxy: TrustProxy;
  /** BUS_FANOUT_QUEUE_MAX: room fan-out publishes that may wait for the bus; more drops the oldest. */
  readonly fanOutQueueMax?: number;
  /** Milliseconds a fan-out publish may stay unanswered before its slot is freed. */
  readonly fanOutTimeoutMs?: number;
}

export interface GatewayDeps {
  /** This node's id in the node registry: placement gives rooms to gateway nodes by it. */
  readonly nodeId: string;
  readonly settings: GatewaySettings;
  readonly engine: WebSocketEngine;
  readonly auth: AuthService;
  readonly presence: PresenceService;
  readonly presenceStore: PresenceStore;
  readonly bus: Bus;
  readonly actors: ActorSystem;
  /** Test seam: the descriptor limit fd-guard.ts counts against instead of the process's. */
  readonly openFileLimit?: () => number;
  readonly metrics: Registry;
  readonly log: Logger;
  readonly db: Kysely<Database>;
  /** Storage of rooms; default: the rooms repository on `db`. Tests wrap the real one. */
  readonly roomStore?: RoomStore;
  /** `notifications.read` requests; absent: they fail UNAVAILABLE. */
  readonly notifications?: Pick<NotificationsApi, 'read'>;
  /**
   * Makes what is told after each committed room write (unread-message reminders for offline
   * members), given whether a user has a socket on this node (online without a presence read).
   */
  readonly onRoomMessagesStored?: (here: {
    readonly isConnected: (userId: UserId) => boolean;
  }) => OnRoomMessagesStored;
  /** The user's current balance, for `wallet` pushes; absent: no wallet pushes. */
  readonly walletOf?: (userId: UserId) => Promise<WalletPayload>;
}

/** Retry-After of an upgrade refused at WS_MAX_CONNECTIONS_PER_IP (nothing says when a socket closes). */
const CONNECTION_CAP_RETRY_AFTER_S = 5;

/** Room fan-out publishes waiting for the bus, by default (BUS_FANOUT_QUEUE_MAX). */
const DEFAULT_FANOUT_QUEUE_MAX = 10_000;
/** Unanswered fan-out publishes at once (ioredis pipelines them on one connection). */
const FANOUT_MAX_IN_FLIGHT = 1_000;
/** A publish unanswered this long frees its slot (the Redis command timeout normally ends it first). */
const DEFAULT_FANOUT_TIMEOUT_MS = 5_000;

/** Watched users whose presence one read refreshes after the bus connection came back. */
const PRESENCE_REFRESH_CHUNK = 500;
/** Reads of that refresh before it gives up, a second apart. */
const PRESENCE_REFRESH_ATTEMPTS = 10;
/** Expired presence watches and slow consumers are looked for this often. */
const SWEEP_EVERY_MS = 1_000;
/** How often placement reads the node registry (and so how soon a lapsed or new lease moves rooms). */
const PLACEMENT_REFRESH_MS = 1_000;
/** A remote room request waits a little longer than the owner's own ask, so the owner's answer wins. */
const REMOTE_ASK_TIMEOUT_MS = DEFAULT_ASK_TIMEOUT_MS + 1_000;

export function createGateway(deps: GatewayDeps) {
  const { settings, log, bus } = deps;
  const codec = createCodec();
  // Between the sweep's visits, a topic subscriber's buffer grows at most a quarter of the bound
  // before it is checked: a slow consumer is closed 1013 by us, with its close frame queued, long
  // before uWS's own limit (twice the bound) would drop it without one.
  const hub = createHub(codec, { topicCheckBytes: Math.floor(settings.maxBufferedBytes / 4) });
  const now = () => Date.now();
  // Rate buckets, strike windows and cache lifetimes measure elapsed time: a wall clock stepped back
  // (NTP, a VM resumed) would empty every bucket and keep cached answers alive past their bound.
  const elapsedMs = () => performance.now();
  const limits: ConnectionLimits = {
    maxFrameBytes: settings.maxFrameBytes,
    maxMessagesPerSecond: settings.maxMessagesPerSecond,
    maxBurst: settings.maxBurst,
    maxBufferedBytes: settings.maxBufferedBytes,
    maxStrikes: 20,
    strikeWindowMs: 10_000,
  };
  const heartbeatMs = Math.floor((settings.idleTimeoutS * 1000) / 2);
  const helloLimits = {
    maxFrameBytes: limits.maxFrameBytes,
    maxMessagesPerSecond: limits.maxMessagesPerSecond,
    maxBurst: limits.maxBurst,
    maxBufferedBytes: limits.maxBufferedBytes,
  };

  const userKind = userActorKind({
    sink: { pushToUser: (userId, frame) => hub.pushToUser(userId, frame) },
    toUserId: (id) => UserId.parse(id),
  });
  const userActor = (userId: string) => deps.actors.ref<UserMessage>(userKind, userId);
  const tellUser = (userId: string, message: UserMessage) => {
    try {
      userActor(userId).tell(message);
    } catch (error) {
      log.error({ err: error, userId, message: message.type }, 'user actor refused a message');
    }
  };

  // Presence of this node's sockets: counted and announced per batch, no actor per connect.
  const socketPresence = createSocketPresence({ presence: deps.presence, log });

  /**
   * Pushes the current presence of every user watched here to their watchers (after this node's
   * bus connection came back: announcements made meanwhile were lost), PRESENCE_REFRESH_CHUNK users
   * per read. A user whose live announcement arrives while their state is read keeps that one. A
   * failed read (the main Redis connection not back yet) is tried again a second later, a few times.
   */
  const refreshWatchedPresence = async (attempt = 1): Promise<void> => {
    const users = hub.watchedUsers();
    for (let i = 0; i < users.length; i += PRESENCE_REFRESH_CHUNK) {
      const recording = hub.recordWatcherPushes();
      try {
        const states = await deps.presence.snapshot(users.slice(i, i + PRESENCE_REFRESH_CHUNK));
        for (const state of states) {
          if (!recording.heard.has(state.userId))
            hub.pushToWatchers(state.userId, { t: 'presence', d: state });
        }
      } catch (error) {
        log.warn({ err: error, users: users.length, attempt }, 'presence of watched users not refreshed');
        if (attempt < PRESENCE_REFRESH_ATTEMPTS && !draining) {
          setTimeout(() => void refreshWatchedPresence(attempt + 1), 1_000).unref();
        }
        return;
      } finally {
        recording.stop();
      }
    }
  };

  const connectionsGauge = new Gauge({
    name: 'gigwire_ws_connections',
    help: 'Open WebSocket connections on this node, by transport.',
    labelNames: ['transport'],
    registers: [deps.metrics],
  });
  const upgradeDecisions = new Counter({
    name: 'gigwire_ws_upgrade_decisions_total',
    help: 'WebSocket upgrade credential checks by path: memory (decided without waiting: a connect token whose key and session row were cached; uWS then upgrades synchronously) or waited (the asynchronous check: a session read, an Ed25519 signature, keys loading).',
    labelNames: ['path'],
    registers: [deps.metrics],
  });
  const authenticateUpgrade = createUpgradeAuthenticator(deps.auth);
  new Gauge({
    name: 'gigwire_ws_engine_info',
    help: 'Constant 1, labelled with the WebSocket engine that serves WS_PORT.',
    labelNames: ['engine'],
    registers: [deps.metrics],
  }).set({ engine: deps.engine.name }, 1);

  // Rooms: the room actor is the single writer; its fan-out leaves through a bounded queue, never
  // awaited in its turn; joins (bus subscription + backlog pages) run in room-joins.ts.
  const roomStore = deps.roomStore ?? createRoomStore(deps.db, deps.nodeId, { metrics: deps.metrics });
  // One owner per room across gateway nodes (room-router.ts): placement over the presence leases.
  const placement = createPlacement({
    nodeId: deps.nodeId,
    liveNodes: () => deps.presenceStore.liveNodes(),
    refreshMs: PLACEMENT_REFRESH_MS,
    timers: systemTimers,
    log: log.child({ component: 'placement' }),
  });
  const remoteActors = createRemoteActors({
    bus,
    nodeId: deps.nodeId,
    timers: systemTimers,
    log,
    askTimeoutMs: REMOTE_ASK_TIMEOUT_MS,
  });
  const fanOut = createFanOutQueue({
    bus,
    log,
    timers: systemTimers,
    metrics: deps.metrics,
    capacity: settings.fanOutQueueMax ?? DEFAULT_FANOUT_QUEUE_MAX,
    maxInFlight: FANOUT_MAX_IN_FLIGHT,
    publishTimeoutMs: settings.fanOutTimeoutMs ?? DEFAULT_FANOUT_TIMEOUT_MS,
  });
  const roomKind = roomActorKind({
    store: roomStore,
    fanOut: fanOut.enqueue,
    metrics: deps.metrics,
    toRoomId: (id) => RoomId.parse(id),
    now: elapsedMs,
    isOwner: (roomId) => placement.isMine(roomId),
    onFenced: () => {
      void placement.refresh();
    },
    ...(deps.onRoomMessagesStored === undefined
      ? {}
      : { onStored: deps.onRoomMessagesStored({ isConnected: hub.hasUser }) }),
  });
  const rooms = createRoomRouter({
    nodeId: deps.nodeId,
    placement,
    actors: deps.actors,
    roomKind,
    remote: remoteActors,
    timers: systemTimers,
    log,
  });
  // History pages and join backlogs share the node's bounds on room reads (room-reads.ts).
  const roomReads = createRoomReads();
  const isMemberNow = async (userId: UserId, roomId: RoomId) =>
    (await membershipOf(memberKey(roomId, userId))) === true;
  // Room replies and join backlogs are written in bursts well under the socket's bound (send-budget.ts).
  const { burstBytes, lowWaterBytes } = sendBudget(settings.maxBufferedBytes);
  const roomJoins = createRoomJoins({
    burstBytes,
    lowWaterBytes,
    codec,
    hub,
    bus,
    store: roomStore,
    reads: roomReads,
    log,
    room: rooms.room,
    connectionsOf: (userId) => hub.connectionsOf(userId),
    isMember: isMemberNow,
  });
  const leaveRoom = roomJoins.leave;

  // Membership checks of one event-loop turn share one query (a reconnect storm rejoins thousands).
  const membershipOf = createTickBatcher<string, true>({
    load: async (keys) => {
      const pairs = keys.map((key) => {
        const [roomId, userId] = key.split('/') as [RoomId, UserId];
        return { roomId, userId };
      });
      const found = await membershipsAmong(deps.db, pairs);
      return new Map(keys.filter((key) => found.has(key)).map((key) => [key, true as const]));
    },
  });
  const roomAccess = createRoomAccess({
    isMember: async (userId, roomId) => (await membershipOf(memberKey(roomId, userId))) === true,
    now: elapsedMs,
  });
  let contactRemovals = 0;
  const jobBoard = createJobBoard<Connection>();
  const notificationsApi = deps.notifications;
  const readHistory = (
    userId: UserId,
    roomId: RoomId,
    beforeSeq: number | undefined,
    limit: number,
    wanted: () => boolean,
    encoding: Encoding,
  ) =>
    roomReads.read(
      userId,
      async () => {
        // Asked of the database again: history never reaches the room actor, and the access cache
        // may still say "member" for a while after a removal whose bus message this node missed.
        if (!(await isMemberNow(userId, roomId)))
          throw new AppError('FORBIDDEN', 'not a member of this room');
        const page = (await roomStore.messagesBefore(roomId, beforeSeq, limit)).map(toRoomMessage);
        // Cut at a byte budget (send-budget.ts): only the messages sent count against the budget.
        return { messages: fitMessages(codec, encoding, page, burstBytes) };
      },
      (page) => page.messages.length,
      wanted,
    );
  const handlers = createHandlers({
    auth: deps.auth,
    presence: deps.presence,
    hub,
    now,
    room: rooms.room,
    mayUseRoom: (userId, roomId) => roomAccess.mayUse(userId, roomId),
    contactRemovals: () => contactRemovals,
    joinRoom: roomJoins.join,
    readHistory,
    leaveRoom,
    ...(notificationsApi === undefined
      ? {}
      : {
          readNotifications: (connection: Connection, request: NotificationsReadPayload) =>
            notificationsApi.read(connection.userId, request, connection.id),
        }),
    jobBoard,
  });
  const describeError = (
    error: unknown,
    connection: Connection,
  ): { code: ErrorCode; message: string; details?: Record<string, unknown> } => {
    if (isAppError(error) && error.code === 'INTERNAL' && isDependencyUnavailable(error.cause)) {
      // An actor (or a room's owner node) wraps what it threw as INTERNAL: an outage under it is
      // still UNAVAILABLE, as REST answers it.
      log.warn({ err: error, connId: connection.id, userId: connection.userId }, 'dependency unavailable');
      return { code: 'UNAVAILABLE', message: 'a service this request needs is unavailable; retry later' };
    }
    if (isAppError(error)) {
      return {
        code: error.code,
        message: error.message,
        ...(error.details === undefined ? {} : { details: { ...error.details } }),
      };
    }
    if (isDependencyUnavailable(error)) {
      // The same answer REST gives (503 UNAVAILABLE): a degraded dependency, retry later; what failed
      // is logged, not sent (the message may name hosts or SQL).
      log.warn({ err: error, connId: connection.id, userId: connection.userId }, 'dependency unavailable');
      return { code: 'UNAVAILABLE', message: 'a service this request needs is unavailable; retry later' };
    }
    log.error({ err: error, connId: connection.id, userId: connection.userId }, 'request handler failed');
    return { code: 'INTERNAL', message: 'internal error' };
  };
  const dispatchTo = dispatchThrough(handlers);
  const loopStalls = watchLoopStalls(systemTimers, elapsedMs);
  const environment = {
    codec,
    limits,
    log,
    now: elapsedMs,
    buckets: createBucketCarry(limits, elapsedMs),
    strikes: createStrikeCarry(limits, elapsedMs),
    recentlyStalled: loopStalls.recentlyStalled,
    // A request's trace id (connection and frame id) follows what it causes: outbox events, tasks, logs.
    dispatch: (connection: Connection, frame: ClientFrame) =>
      withTrace(`ws.${connection.id}.${frame.id ?? '-'}`, () => dispatchTo(connection, frame)),
    describeError,
    onClosed: (connection: Connection) => {
      const joined = hub.roomsOfConnection(connection);
      hub.remove(connection);
      jobBoard.unwatch(connection);
      roomJoins.dropUnused(joined);
      roomJoins.closed(connection);
      connectionsGauge.dec({ transport: connection.transportKind });
      socketPresence.closed(connection.userId);
    },
  };

  const upgradeRate = createUpgradeRateLimiter({
    perSecond: settings.upgradesPerIpPerSecond,
    burst: settings.upgradeBurstPerIp,
    now: elapsedMs,
  });
  const connectionCap = createConnectionCap(settings.maxConnectionsPerIp);
  const upgradesRefused = new Counter({
    name: 'gigwire_ws_upgrades_refused_total',
    help: 'WebSocket upgrades answered 429 before any auth work: rate = over WS_UPGRADES_PER_IP_PER_SECOND/WS_UPGRADE_BURST_PER_IP, connections_per_ip = over WS_MAX_CONNECTIONS_PER_IP.',
    labelNames: ['reason'],
    registers: [deps.metrics],
  });
  upgradesRefused.inc({ reason: 'rate' }, 0);
  upgradesRefused.inc({ reason: 'connections_per_ip' }, 0);
  const clientAddress = clientAddressResolver(settings.trustProxy);
  /** Set by the first shutdown step: no socket is admitted from then on. */
  let draining = false;
  const core: GatewayCore = {
    // One bucket per client network (an IPv6 /64 is one client), as login throttling counts them.
    admitUpgrade: (remoteAddress, forwardedFor) => {
      const client = clientNetwork(clientAddress(remoteAddress, forwardedFor));
      const rate = upgradeRate.admit(client);
      if (!rate.ok) {
        upgradesRefused.inc({ reason: 'rate' });
        return {
          ok: false,
          retryAfterS: rate.retryAfterS,
          message: 'too many WebSocket upgrades from this address',
        };
      }
      const release = connectionCap.acquire(client);
      if (release === undefined) {
        upgradesRefused.inc({ reason: 'connections_per_ip' });
        return {
          ok: false,
          retryAfterS: CONNECTION_CAP_RETRY_AFTER_S,
          message: `too many open WebSockets from this address (at most ${settings.maxConnectionsPerIp})`,
        };
      }
      return { ok: true, release };
    },
    authenticateUpgrade: (input) => {
      // A refusal decided from memory (it throws) counts as decided there too.
      let path: 'memory' | 'waited' = 'memory';
      try {
        const decision = authenticateUpgrade(input);
        if (decision instanceof Promise) path = 'waited';
        return decision;
      } finally {
        upgradeDecisions.inc({ path });
      }
    },
    open: (upgrade, transport) => {
      // The node is shutting down: a socket opened now (the HTTP port's /ws still answers until
      // HTTP stops, and a uWS upgrade may have been decided before its listener closed) would say
      // hello on a node whose rooms and presence are going away, and end in a 1005/1006 later.
      // Closed 1012 at once, before hello, as the sockets open at the start of the drain were.
      if (draining) {
        transport.close(CloseCode.SERVICE_RESTART, 'server restarting');
        return { onMessage: () => undefined, onClose: () => undefined };
      }
      // Checked when the socket opens (synchronously, so parallel upgrades cannot all pass): at the
      // cap, a silent socket of the same user is replaced, or the extra socket is closed before it
      // is registered anywhere or says hello (socket-cap.ts).
      const userId = upgrade.principal.userId;
      const decision = decideAtSocketCap(
        hub.connectionsOf(userId),
        settings.maxSocketsPerUser,
        elapsedMs(),
        loopStalls.recentlyStalled(),
      );
      if (decision.kind === 'replace') {
        log.info(
          {
            userId,
            connId: decision.victim.id,
            silentMs: Math.round(elapsedMs() - decision.victim.lastHeardAt),
          },
          'silent socket replaced by a newer socket of its user',
        );
        decision.victim.close(socketCapClose.replaced.code, socketCapClose.replaced.reason);
      } else if (decision.kind !== 'admit') {
        log.info({ userId, decision: decision.kind }, 'socket refused: too many sockets for this user');
        const { code, reason } = socketCapClose[decision.kind];
        transport.close(code, reason);
        return { onMessage: () => undefined, onClose: () => undefined };
      }
      const connection = new Connection(
        randomUUID(),
        upgrade.principal,
        upgrade.encoding,
        transport,
        environment,
      );
      hub.add(connection);
      connectionsGauge.inc({ transport: transport.kind });
      socketPresence.opened(connection.userId);
      connection.sendFrame({
        t: 'hello',
        d: {
          connectionId: connection.id,
          userId: connection.userId,
          serverTime: now(),
          heartbeatMs,
          protocolVersion: PROTOCOL_VERSION,
          encoding: upgrade.encoding,
          limits: helloLimits,
        },
      });
      return connection;
    },
  };

  const unsubscribes: (() => Promise<void>)[] = [];
  let stopSweeps: CancelTimer = () => undefined;
  let uwsListener: UwsListener | undefined;
  let fastifyWs: { stopHeartbeat: () => void } | undefined;
  const nodePresence = createNodePresence({
    nodeId: deps.nodeId,
    store: deps.presenceStore,
    presence: deps.presence,
    timers: systemTimers,
    leaseMs: settings.presenceLeaseMs,
    log,
    onLeaseLost: socketPresence.resync,
  });

  return {
    core,
    engine: deps.engine,
    /**
     * The kinds of actor this edge runs (per-user presence and pushes, per-room writers): the
     * composition root registers them on the node's actor system before `start`.
     */
    actorKinds: { user: userKind, room: roomKind },
    /** Open connections on this node. */
    size: () => hub.size(),

    /** Registers /ws on the Fastify app (call before the app is ready). */
    registerFastify: async (app: FastifyInstance) => {
      fastifyWs = await registerFastifyWebSocket(app, core, {
        maxFrameBytes: settings.maxFrameBytes,
        idleTimeoutS: settings.idleTimeoutS,
      });
    },

    /** Subscribes to the bus, takes the presence lease, starts uWS when a native build loaded. */
    start: async (): Promise<{ wsPort: number | undefined }> => {
      await nodePresence.join();
      await remoteActors.start();
      await placement.start();
      // What the revocation feed's poll reports closes the sockets of the sessions it names, so a
      // lost bus message costs an open socket at most a poll, not the rest of its token's life.
      // A user-level row (version, lock, roles, an earlier session end) cannot tell the user's
      // older sessions from one opened after the change (a re-login after logout-all must stay
      // open): each of the user's sockets here is checked again instead (`recheck`: its session
      // row, read once per tick for all of them, against its own token's version), so an
      // operator's SQL lock or version bump, which revokes no session, closes them too (review 33).
      const stopFeedClosing = deps.auth.revocations.onPolled(({ userId, sessionId }) => {
        if (sessionId !== undefined) {
          const closed = hub.closeUser(userId, sessionId, CloseCode.AUTH_EXPIRED, 'session revoked');
          if (closed > 0) log.info({ userId, closed }, 'closed sockets the revocation feed named');
          return;
        }
        for (const connection of hub.connectionsOf(userId)) {
          const principal = connection.principal;
          deps.auth.recheck(principal).then(
            (fresh) => {
              // An `auth.refresh` answered meanwhile decided with a newer token: it stands.
              if (connection.principal !== principal) return;
              if (fresh === undefined) {
                log.info({ userId }, 'closed a socket the revocation feed ended (user changed)');
                connection.close(CloseCode.AUTH_EXPIRED, 'session revoked');
                return;
              }
              // Its session's end may have moved earlier, its roles changed.
              connection.principal = fresh;
              hub.rescheduleExpiry(connection);
            },
            (error: unknown) => log.warn({ err: error, userId }, 'could not recheck a socket the feed named'),
          );
        }
      });
      unsubscribes.push(async () => stopFeedClosing());
      unsubscribes.push(
        ...(await subscribeBusBridge({
          bus,
          hub,
          jobBoard,
          log,
          tellUser,
          onMembershipChanged: (roomId) => {
            // Every node forgets its cached access; the owner's actor (if this node hosts it) reloads.
            roomAccess.forget(roomId);
            try {
              rooms.tellResident(roomId, { type: 'reload-members' });
            } catch (error) {
              log.warn({ err: error, roomId }, 'room actor refused a membership reload');
            }
          },
          onContactRemoved: () => {
            contactRemovals += 1;
          },
          mutualContactsAmong: (watcher, userIds) => mutualContactIdsAmong(deps.db, watcher, userIds),
          // Presence announced while this node's bus connection was down never reached it (room
          // tails have the tail sweep): once its subscriptions are back and the watches checked,
          // watchers here are told the current state of everyone they watch.
          refreshWatchedPresence: () => refreshWatchedPresence(),
          ...(deps.walletOf === undefined ? {} : { walletOf: deps.walletOf }),
        })),
      );
      const stopExpirySweep = every(systemTimers, SWEEP_EVERY_MS, () => hub.sweepExpired(now()));
      const stopBackpressureSweep = every(systemTimers, SWEEP_EVERY_MS / BACKPRESSURE_SWEEP_SLICES, () =>
        hub.sweepBackpressure(),
      );
      // Room tails whose push was lost (room-joins.ts): one query per sweep, never two at once.
      let sweepingTails = false;
      const stopTailSweep = every(systemTimers, TAIL_SWEEP_MS, () => {
        if (sweepingTails) return;
        sweepingTails = true;
        void roomJoins.sweepTails().finally(() => {
          sweepingTails = false;
        });
      });
      stopSweeps = () => {
        stopExpirySweep();
        stopBackpressureSweep();
        stopTailSweep();
      };
      if (deps.engine.uws !== undefined) {
        uwsListener = await listenUws({
          uws: deps.engine.uws,
          host: settings.host,
          port: settings.wsPort,
          core,
          limits: {
            maxFrameBytes: settings.maxFrameBytes,
            maxBufferedBytes: settings.maxBufferedBytes,
            idleTimeoutS: settings.idleTimeoutS,
          },
          log,
        });
        hub.useTopics(uwsListener.publish);
        const fdGuard = startFdGuard({
          listener: uwsListener,
          reserve: settings.fdReserve ?? 0,
          log,
          metrics: deps.metrics,
          ...(deps.openFileLimit === undefined ? {} : { maxFiles: deps.openFileLimit }),
        });
        const stopOtherSweeps = stopSweeps;
        stopSweeps = () => {
          fdGuard.stop();
          stopOtherSweeps();
        };
      } else {
        log.warn(
          { detail: deps.engine.detail },
          'no native uWebSockets.js: WebSockets are served at /ws on the HTTP port only',
        );
      }
      return { wsPort: uwsListener?.port };
    },

    /**
     * Shutdown in the order of ARCHITECTURE.md §3.10: stop accepting sockets, close the open ones
     * with 1012 (clients reconnect elsewhere), let the actors drain (presence counts go down),
     * then leave the presence registry and the bus.
     */
    shutdownSteps: (): ShutdownStep[] => [
      {
        name: 'stop accepting WebSockets',
        run: async () => {
          draining = true;
          uwsListener?.stopListening();
          stopSweeps();
          loopStalls.stop();
          // Rooms leave first: this node owns nothing from here on (its actors hand off, forwarded
          // requests are refused ROOM_MOVED and resent), and other nodes stop choosing it as soon
          // as they read the lapsed lease, instead of after the whole drain.
          placement.leave();
          await nodePresence.withdraw();
        },
      },
      {
        name: 'close sockets with 1012',
        run: async () => {
          hub.closeAll(CloseCode.SERVICE_RESTART, 'server restarting');
          fastifyWs?.stopHeartbeat();
          // Sockets report their close asynchronously; give them a moment to reach the actors.
          for (let waited = 0; hub.size() > 0 && waited < 2_000; waited += 20) {
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        },
      },
      {
        name: 'drain actor mailboxes',
        run: async () => {
          await deps.actors.stop(3_000);
          // The closed sockets' presence changes are counted before the node leaves the registry
          // (bounded: Redis may be gone; leaving clears this node's counts anyway).
          await Promise.race([
            deps.presence.drained(),
            new Promise((resolve) => setTimeout(resolve, 3_000).unref()),
          ]);
          deps.presence.stop();
          // What the rooms committed last is still announced (bounded: Redis may be gone).
          await fanOut.drain(2_000);
        },
      },
      {
        name: 'leave presence and bus',
        run: async () => {
          placement.stop();
          await remoteActors.close();
          await nodePresence.leave();
          for (const unsubscribe of unsubscribes) await unsubscribe();
          await roomJoins.closeAll();
        },
      },
    ],
  };
}

export type Gateway = ReturnType<typeof createGateway>;
