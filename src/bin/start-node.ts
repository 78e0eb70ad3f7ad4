/**
 * Composition root of one gigwire process: wires the concrete parts for the configured role, listens,
 * and returns the ordered shutdown steps. Only bin/ listens and handles signals (ARCHITECTURE.md §3.10).
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { Counter } from 'prom-client';
import { createRoomStore, type RoomStore } from '../actors/room/room-store.js';
import { createActorSystem } from '../actors/runtime/index.js';
import type { Config, Role } from '../config/index.js';
import { createDb, type DbHandle } from '../db/create-db.js';
import type { Database } from '../db/database.js';
import { isDatabaseStartingUp } from '../db/errors.js';
import { migrateToLatest } from '../db/migrate.js';
import { ensureInstallation } from '../db/repositories/installation.repo.js';
import { createAdminService } from '../domain/admin/service.js';
import { createPasswordHasher } from '../domain/auth/passwords.js';
import { createAuthService, SESSIONS_REVOKED_TOPIC } from '../domain/auth/service.js';
import { createTokenService } from '../domain/auth/tokens.js';
import { createConsoleSessions } from '../domain/console/sessions.js';
import { startOutboxRelay } from '../domain/events/relay.js';
import { startRetention } from '../domain/maintenance/retention.js';
import type { ContractDeps } from '../domain/marketplace/contracts.js';
import { createNotificationsApi, type NotificationsDeps } from '../domain/notifications/service.js';
import { createUnreadScheduler } from '../domain/notifications/unread-scheduler.js';
import { auditLedger } from '../domain/payments/audit.js';
import { startLedgerAuditor } from '../domain/payments/auditor.js';
import type { PaymentsDeps } from '../domain/payments/ledger.js';
import { createPaymentsApi } from '../domain/payments/payments-service.js';
import { startPaymentReconciler } from '../domain/payments/reconciler.js';
import { createWalletApi, walletAnnouncer } from '../domain/payments/wallet-service.js';
import { createPresenceService } from '../domain/presence/service.js';
import { createRoomService } from '../domain/rooms/service.js';
import { createUserService } from '../domain/users/service.js';
import { loadWebSocketEngine } from '../gateway/engine.js';
import { createGateway } from '../gateway/index.js';
import { buildApp } from '../http/app.js';
import type { Bus } from '../platform/bus/bus.js';
import { createRedisBus } from '../platform/bus/redis-bus.js';
import { systemClock } from '../platform/clock.js';
import { lockDataDir } from '../platform/data-dir-lock.js';
import type { Logger } from '../platform/logger.js';
import { type ManagedRedis, startManagedRedis } from '../platform/managed-redis.js';
import { createMetricsRegistry } from '../platform/metrics.js';
import { createRedisPresenceStore, type PresenceStore } from '../platform/presence-store.js';
import { closeWorkers } from '../platform/queues/close-worker.js';
import { registerQueueMetrics } from '../platform/queues/metrics.js';
import { createTaskQueue, type TaskQueue } from '../platform/queues/tasks.js';
import { closeRedisClient, createRedisClient, type Redis } from '../platform/redis.js';
import type { ShutdownStep } from '../platform/shutdown.js';
import { ensureProgram } from '../platform/system-packages.js';
import { systemTimers } from '../platform/timers.js';
import { createRedisWindowCounter } from '../platform/window-counter.js';
import { startEmailWorker } from '../workers/emails/processor.js';
import { createMailTransport } from '../workers/emails/transport.js';
import { startMarketplaceWorker } from '../workers/marketplace/processor.js';
import { startNotificationsWorker } from '../workers/notifications/processor.js';
import { startPaymentsWorker } from '../workers/payments/processor.js';
import { createProcessProvider } from '../workers/payments/provider.js';
import { ensureConfiguredAdmin } from './configured-admin.js';
import { copyMetricsExposition } from './copy-metrics.js';
import { checkDatabaseUrl, checkRedisUrl, inDataDir, listening, withDataDir } from './startup-errors.js';
import { endpointOf, isRedisStartupFailure, waitForDependency } from './startup-wait.js';

export interface RunningNode {
  readonly app: FastifyInstance;
  /** ws://host:WS_PORT/ws when the uWebSockets.js listener runs (gateway roles with a native build). */
  readonly uwsUrl: string | undefined;
  /** Base URL of the HTTP server, e.g. http://127.0.0.1:3000. */
  readonly baseUrl: string;
  /** In the order they must run. */
  readonly shutdownSteps: readonly ShutdownStep[];
}

export interface StartNodeOptions {
  readonly pid: number;
  /**
   * Aborted when the process begins to shut down (main.ts, on the first signal): from then on the
   * managed redis-server is never restarted, even before its own stop step runs.
   */
  readonly shutdown?: AbortSignal;
  /**
   * Test seam: wraps the room store the gateway uses (the real one is passed in), e.g. to make
   * the real database refuse a chosen send. Never set in production.
   */
  readonly wrapRoomStore?: (store: RoomStore) => RoomStore;
  /**
   * Test seam: wraps the real Redis bus everything on this node uses, e.g. to drop one topic's
   * messages (a lost bus message). Never set in production.
   */
  readonly wrapBus?: (bus: Bus) => Bus;
  /**
   * Test seam: the file-descriptor limit the WS_PORT guard (gateway/fd-guard.ts) counts against,
   * instead of the process's. Never set in production.
   */
  readonly openFileLimit?: () => number;
}

/** gigwire's version from package.json (found upwards from here: src/bin under tsx, dist/src/bin built). */
function packageVersion(): string {
  let dir = import.meta.dirname;
  for (let depth = 0; depth < 5; depth++, dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file))
      return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? '0.0.0';
  }
  return '0.0.0';
}

/** The web app's build (web/dist beside package.json), served at `/` by REST roles. */
function webRoot(): string {
  let dir = import.meta.dirname;
  for (let depth = 0; depth < 5; depth++, dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'web', 'dist');
  }
  return join(process.cwd(), 'web', 'dist');
}

const runsRest = (role: Role) => role === 'all' || role === 'api';
const runsWorkers = (role: Role) => role === 'all' || role === 'worker';
const runsGateway = (role: Role) => role === 'all' || role === 'gateway';

const presenceStore = (config: Config, redis: Redis) =>
  createRedisPresenceStore({
    redis,
    prefix: config.redisPrefix,
    nodeId: config.nodeId,
    leaseMs: config.presenceLeaseMs,
  });

const redisEndpoint = (config: Config, managed: ManagedRedis | undefined): string =>
  config.redisUrl ?? managed?.endpoint ?? '';

/** The domain services every role shares, wired to this process's storage. */
function createServices(
  config: Config,
  db: Kysely<Database>,
  redis: Redis,
  bus: Bus,
  presence: PresenceStore,
  log: Logger,
) {
  const tokens = createTokenService(db, { ...config.jwt, privateKey: config.jwt.privateKey }, systemClock);
  const auth = createAuthService({
    db,
    clock: systemClock,
    log: log.child({ component: 'auth' }),
    tokens,
    passwords: createPasswordHasher({ perSourceMax: config.login.passwordHashesPerIp }),
    counters: createRedisWindowCounter(redis, config.redisPrefix),
    settings: { refresh: config.refresh, login: config.login },
    announceRevocation: async (event) => {
      await bus.publish(SESSIONS_REVOKED_TOPIC, { ...event });
    },
  });
  return {
    tokens,
    auth,
    users: createUserService({
      db,
      isOnline: (ids) => presence.isOnline(ids),
      bus,
      maxContactsPerUser: config.contactsMaxPerUser,
      currency: config.payments.currency,
    }),
    admin: createAdminService({ db }),
    rooms: createRoomService({ db, bus, maxRoomsPerUser: config.roomsMaxPerUser }),
  };
}

/**
 * Starts everything this process runs. On failure, what was already started is stopped before the
 * error propagates, so a failed start leaves no child process behind.
 */
/**
 * Binds REDIS_PREFIX to this installation (its database) the first time, and refuses to start
 * against a prefix another installation holds: two deployments sharing one Redis under one prefix
 * would share presence leases (each placing rooms on the other's gateways), bus channels and task
 * queues (one's workers taking the other's mail and payments), and fail half their requests with no
 * error anywhere.
 */
async function claimRedisPrefix(redis: Redis, prefix: string, installationId: string): Promise<void> {
  const key = `${prefix}:installation`;
  await redis.set(key, installationId, 'NX');
  const holder = await redis.get(key);
  if (holder !== installationId) {
    throw new Error(
      `REDIS_PREFIX "${prefix}" belongs to another installation (${holder}) on this Redis: give this deployment its own REDIS_PREFIX, or, if that installation is gone for good, delete the key ${key}`,
    );
  }
}

export async function startNode(
  config: Config,
  log: Logger,
  options: StartNodeOptions,
): Promise<RunningNode> {
  // Each part pushes its closer as it starts; shutdown runs them newest first, which is the order of
  // ARCHITECTURE.md §3.10: stop accepting → quit Redis clients → close the database → stop the
  // managed redis-server → release DATA_DIR. A failed start runs the same list.
  const started: ShutdownStep[] = [];
  const shutdownSteps = () => [...started].reverse();
  let draining = false;
  try {
    if (config.databaseUrl === undefined || config.redisUrl === undefined) {
      const release = withDataDir(config.dataDir, () => lockDataDir(config.dataDir, options.pid));
      started.push({ name: 'release data directory', run: async () => release() });
    }

    let managedRedis: ManagedRedis | undefined;
    if (config.redisUrl === undefined) {
      const redisServerPath = await ensureProgram(
        { command: 'redis-server', debianPackage: 'redis-server', alternative: 'or set REDIS_URL' },
        {
          install: config.installSystemPackages,
          searchPath: config.searchPath,
          onInstall: (pkg) => log.info({ package: pkg }, 'installing a missing system package with apt-get'),
        },
      );
      const redisDir = join(config.dataDir, 'redis');
      const managed = await inDataDir(config.dataDir, redisDir, () =>
        startManagedRedis({
          redisServerPath,
          dir: redisDir,
          log,
          ...(options.shutdown === undefined ? {} : { shutdown: options.shutdown }),
        }),
      );
      managedRedis = managed;
      started.push({ name: 'stop managed redis-server', run: () => managed.stop() });
    }

    const pgliteDir = join(config.dataDir, 'pglite');
    const dbHandle: DbHandle =
      config.databaseUrl === undefined
        ? await inDataDir(config.dataDir, pgliteDir, () => createDb({ kind: 'pglite', dir: pgliteDir }, log))
        : await createDb(
            {
              kind: 'postgres',
              url: config.databaseUrl,
              poolMax: config.dbPoolMax,
              queryTimeoutMs: config.databaseQueryTimeoutMs,
            },
            log,
          );
    started.push({ name: 'close database', run: () => dbHandle.close() });
    // A PostgreSQL or Redis started together with this node may not be up yet: waited for, up to
    // STARTUP_WAIT_S, from the first connection through the migrations (startup-wait.ts).
    const waitSettings = { boundMs: config.startupWaitMs, log, signal: options.shutdown };
    const databaseWait =
      config.databaseUrl === undefined
        ? undefined
        : waitForDependency(
            waitSettings,
            `PostgreSQL at ${endpointOf(config.databaseUrl, 5432)}`,
            isDatabaseStartingUp,
          );
    if (config.databaseUrl !== undefined) {
      await checkDatabaseUrl(dbHandle, config.databaseUrl, databaseWait);
    }

    const redis: Redis = createRedisClient({
      endpoint: redisEndpoint(config, managedRedis),
      name: 'main',
      log,
      // Request paths (bus publishes, counters, presence) fail instead of hanging on a stalled Redis.
      commandTimeoutMs: config.redisCommandTimeoutMs,
    });
    started.push({ name: 'quit redis clients', run: () => closeRedisClient(redis) });
    if (config.redisUrl !== undefined) {
      const redisWait = waitForDependency(
        waitSettings,
        `Redis at ${endpointOf(config.redisUrl, 6379)}`,
        isRedisStartupFailure,
      );
      await checkRedisUrl(redis, config.redisUrl, redisWait);
    }

    // Unbounded by DATABASE_QUERY_TIMEOUT_MS: an index build or another process's migration may take
    // longer. All in one transaction, so a PostgreSQL restarting under it is waited out and retried.
    const migrate = () => dbHandle.unbounded((db) => migrateToLatest(db, log));
    await (databaseWait === undefined ? migrate() : databaseWait.run(migrate));
    const installation = await ensureInstallation(dbHandle.db);
    await claimRedisPrefix(redis, config.redisPrefix, installation.id);
    const boots = await redis.incr(`${config.redisPrefix}:boots`);
    const redisKind = managedRedis === undefined ? 'external' : 'managed';
    log.info(
      { installationId: installation.id, boots, database: dbHandle.dialect, redis: redisKind },
      'storage ready',
    );

    const busSubscriber = createRedisClient({
      endpoint: redisEndpoint(config, managedRedis),
      name: 'bus',
      log,
      // A room join waits for its SUBSCRIBE: bounded, so a stalled Redis fails the join instead
      // of holding it (the connection itself still reconnects forever and resubscribes).
      commandTimeoutMs: config.redisCommandTimeoutMs,
    });
    started.push({ name: 'quit bus redis client', run: () => closeRedisClient(busSubscriber) });
    const redisBus = createRedisBus({
      publisher: redis,
      subscriber: busSubscriber,
      prefix: config.redisPrefix,
      log,
    });
    started.push({ name: 'close bus', run: () => redisBus.close() });
    const bus = options.wrapBus?.(redisBus) ?? redisBus;

    const logQueueError = (error: Error, queue: string, heldBack: number) =>
      log.warn({ err: error, queue, heldBack }, 'task queue connection error');
    const presence = presenceStore(config, redis);
    const services = createServices(config, dbHandle.db, redis, bus, presence, log);
    // A revocation made on any node drops this node's cached session checks at once (a lost
    // message costs at most the cache's 1 s bound). API-only nodes need it as much as gateways.
    const stopRevocations = await bus.subscribe(SESSIONS_REVOKED_TOPIC, (payload) => {
      services.auth.forgetRevokedSessions(payload);
    });
    started.push({ name: 'stop session revocation listener', run: () => stopRevocations() });
    // Polls what ended (one query per node every 250 ms), so authenticate reads no session row.
    await services.auth.revocations.start();
    started.push({ name: 'stop revocation feed', run: async () => services.auth.revocations.stop() });
    // Loads (or, on the very first start, creates) the signing keys before any request needs them.
    await services.tokens.jwks();
    if (config.admin !== undefined) await ensureConfiguredAdmin(services.auth, config.admin, log);
    if (config.mail.smtpUrl === undefined) {
      log.warn(
        'development mode: SMTP_URL is unset, so mail is kept in the outbox and admins read it, live reset and verification links included, at GET /v1/admin/emails; set SMTP_URL in production',
      );
    }

    const paymentsDeps: PaymentsDeps = {
      db: dbHandle.db,
      clock: systemClock,
      settings: { currency: config.payments.currency, platformFeeBps: config.payments.platformFeeBps },
      log: log.child({ component: 'payments' }),
    };
    const walletApi = createWalletApi(paymentsDeps);
    const contractDeps: ContractDeps = {
      db: dbHandle.db,
      clock: systemClock,
      settings: {
        currency: config.payments.currency,
        platformFeeBps: config.payments.platformFeeBps,
        autoApproveMs: config.marketplace.autoApproveMs,
        reviewWindowMs: config.marketplace.reviewWindowMs,
      },
    };
    const announceWalletChange = walletAnnouncer(bus, log.child({ component: 'payments' }));
    if (config.payments.developmentWebhookSecret && (runsRest(config.role) || runsWorkers(config.role))) {
      log.warn(
        'development mode: PAYMENTS_WEBHOOK_SECRETS is unset, so payment webhooks are signed and checked with the public development secret; set your own in production',
      );
    }
    // Where the sandbox provider sends its webhooks when PUBLIC_URL is unset: this node, once it listens.
    let ownBaseUrl: string | undefined;
    if (config.role === 'worker' && config.payments.webhookBaseUrl === undefined) {
      log.warn(
        'PUBLIC_URL is unset on a worker process: the sandbox payment provider sends its webhooks to this process, which serves no REST; set PUBLIC_URL to the API address',
      );
    }

    const metrics = createMetricsRegistry({
      nodeId: config.nodeId,
      role: config.role,
      collectProcessMetrics: true,
    });

    // The task queues: workers and the relay use them; REST roles show them in the operators'
    // console. Wherever they exist, /metrics reports them (queue metrics).
    const taskQueues = runsWorkers(config.role) || runsRest(config.role) ? openTaskQueues() : undefined;
    function openTaskQueues() {
      const tasksConnection = createRedisClient({
        endpoint: redisEndpoint(config, managedRedis),
        name: 'tasks',
        log,
        // BullMQ requires it: blocking commands wait through reconnects.
        maxRetriesPerRequest: null,
      });
      started.push({ name: 'quit task redis client', run: () => closeRedisClient(tasksConnection) });
      const taskQueue = createTaskQueue(tasksConnection, config.redisPrefix, logQueueError);
      started.push({ name: 'close task queues', run: () => taskQueue.close() });
      const queueMetrics = registerQueueMetrics(metrics, () => taskQueue.queues(), {
        connected: () => tasksConnection.status === 'ready',
      });
      return { tasksConnection, taskQueue, queueMetrics, consoleQueues: openConsoleQueues() };
    }
    // The console's view of the same queues, on a connection of its own that gives up: on the tasks
    // connection (which waits through reconnects, as BullMQ's workers need) a console request made
    // while Redis was unreachable hung until Redis came back, instead of answering 503.
    function openConsoleQueues() {
      if (!runsRest(config.role)) return undefined;
      const consoleConnection = createRedisClient({
        endpoint: redisEndpoint(config, managedRedis),
        name: 'console',
        log,
        commandTimeoutMs: config.redisCommandTimeoutMs,
      });
      started.push({ name: 'quit console redis client', run: () => closeRedisClient(consoleConnection) });
      const consoleQueue = createTaskQueue(consoleConnection, config.redisPrefix, logQueueError);
      started.push({ name: 'close console queues', run: () => consoleQueue.close() });
      return consoleQueue.queues();
    }

    // Notifications (issue 13): what the worker, the REST routes and the gateway share.
    const notificationsLog = log.child({ component: 'notifications' });
    const notificationsDeps = (tasks: Pick<TaskQueue, 'enqueue'>): NotificationsDeps => ({
      db: dbHandle.db,
      bus,
      clock: systemClock,
      log: notificationsLog,
      tasks,
      isOnline: async (userId) => (await presence.isOnline([userId]))[0] === true,
      settings: {
        digestMs: config.notifications.digestMs,
        unreadAfterMs: config.notifications.unreadAfterMs,
        currency: config.payments.currency,
      },
    });
    const notificationsApi = createNotificationsApi({
      db: dbHandle.db,
      bus,
      clock: systemClock,
      log: notificationsLog,
    });
    // A gateway stores room messages and schedules unread reminders: it needs a producer even alone.
    let reminderTasks: Pick<TaskQueue, 'enqueue'> | undefined = taskQueues?.taskQueue;
    if (reminderTasks === undefined && runsGateway(config.role)) {
      const producer = createTaskQueue(redis, config.redisPrefix, logQueueError);
      started.push({ name: 'close reminder task queue', run: () => producer.close() });
      reminderTasks = producer;
    }

    if (taskQueues !== undefined && runsWorkers(config.role)) {
      // Every worker started here goes through queueMetrics.observeWorker (completed/failed/duration).
      const { tasksConnection, taskQueue, queueMetrics } = taskQueues;
      const transport = createMailTransport(config.mail.smtpUrl);
      started.push({ name: 'close mail transport', run: async () => transport.close() });
      const emailWorker = startEmailWorker({
        db: dbHandle.db,
        auth: services.auth,
        transport,
        clock: systemClock,
        log: log.child({ queue: 'emails' }),
        connection: tasksConnection,
        redisPrefix: config.redisPrefix,
        publicUrl: config.publicUrl,
        mailFrom: config.mail.from,
        lockMs: config.taskLockMs,
      });
      queueMetrics.observeWorker(emailWorker);
      const paymentProvider = createProcessProvider({
        settings: config.payments,
        ownBaseUrl: () => ownBaseUrl,
        clock: systemClock,
        timers: systemTimers,
        log: log.child({ component: 'payment-provider', provider: config.payments.provider }),
      });
      started.push({ name: 'stop payment provider', run: async () => paymentProvider.stop() });
      if (config.payments.reconcileAfterMs > 0) {
        const reconciler = startPaymentReconciler({
          db: dbHandle.db,
          provider: paymentProvider.provider,
          timers: systemTimers,
          log: log.child({ component: 'payments-reconcile' }),
          afterMs: config.payments.reconcileAfterMs,
          payoutReturnWindowMs: config.payments.payoutReturnWindowMs,
          announce: announceWalletChange,
        });
        started.push({ name: 'stop payments reconciliation', run: () => reconciler.stop() });
      }
      const paymentsWorker = startPaymentsWorker({
        payments: paymentsDeps,
        announce: announceWalletChange,
        provider: paymentProvider.provider,
        log: log.child({ queue: 'payments' }),
        connection: tasksConnection,
        redisPrefix: config.redisPrefix,
        lockMs: config.taskLockMs,
      });
      const notificationsWorker = startNotificationsWorker({
        notifications: notificationsDeps(taskQueue),
        publicUrl: config.publicUrl,
        connection: tasksConnection,
        redisPrefix: config.redisPrefix,
        lockMs: config.taskLockMs,
      });
      queueMetrics.observeWorker(notificationsWorker);
      const marketplaceWorker = startMarketplaceWorker({
        contracts: contractDeps,
        log: log.child({ queue: 'marketplace' }),
        connection: tasksConnection,
        redisPrefix: config.redisPrefix,
        lockMs: config.taskLockMs,
      });
      // close() lets active tasks finish (ARCHITECTURE.md §3.10: workers finish before Redis quits);
      // all at once, before the payment provider and the mail transport they use are stopped.
      const workers = [emailWorker, paymentsWorker, notificationsWorker, marketplaceWorker];
      started.push({ name: 'close workers', run: () => closeWorkers(workers, log) });
      queueMetrics.observeWorker(marketplaceWorker);
      queueMetrics.observeWorker(paymentsWorker);
      const relay = startOutboxRelay({
        db: dbHandle.db,
        taskQueue,
        clock: systemClock,
        log: log.child({ component: 'outbox-relay' }),
        pollMs: config.outboxPollMs,
        bus,
        queueData: { redis: tasksConnection, redisPrefix: config.redisPrefix },
      });
      started.push({ name: 'stop outbox relay', run: () => relay.stop() });
      log.info({ mail: transport.kind }, 'task workers started');
    }

    if (runsWorkers(config.role) && config.retentionIntervalMs > 0) {
      const retention = startRetention({
        db: dbHandle.db,
        timers: systemTimers,
        log: log.child({ component: 'retention' }),
        intervalMs: config.retentionIntervalMs,
      });
      started.push({ name: 'stop retention', run: () => retention.stop() });
    }

    if (runsWorkers(config.role) && config.payments.auditIntervalMs > 0) {
      // Every worker audits: the audit is read-only, and an operator should see findings on any of them.
      const auditFailures = new Counter({
        name: 'gigwire_ledger_audit_failures_total',
        help: 'Violated ledger invariants found by the scheduled audit (each finding of each run).',
        registers: [metrics],
      });
      const auditor = startLedgerAuditor({
        // Whole-ledger scans may outlast DATABASE_QUERY_TIMEOUT_MS on a large ledger: not bounded by it.
        audit: () => dbHandle.unbounded((db) => auditLedger(db)),
        timers: systemTimers,
        log: log.child({ component: 'ledger-audit' }),
        intervalMs: config.payments.auditIntervalMs,
        onRun: (run) => auditFailures.inc(run.findings.length),
      });
      started.push({ name: 'stop ledger auditor', run: () => auditor.stop() });
    }

    // The actor system of this node; the kinds that run on it are registered below, here, where
    // the whole node is composed.
    const actors = runsGateway(config.role)
      ? createActorSystem({ log: log.child({ component: 'actors' }), timers: systemTimers, metrics })
      : undefined;
    const gateway =
      actors === undefined
        ? undefined
        : createGateway({
            nodeId: config.nodeId,
            settings: {
              host: config.host,
              wsPort: config.ws.port,
              presenceLeaseMs: config.presenceLeaseMs,
              trustProxy: config.trustProxy,
              fanOutQueueMax: config.busFanOutQueueMax,
              fanOutTimeoutMs: config.redisCommandTimeoutMs * 2,
              ...config.ws,
            },
            engine: loadWebSocketEngine(),
            auth: services.auth,
            presence: createPresenceService({
              db: dbHandle.db,
              store: presence,
              bus,
              clock: systemClock,
            }),
            presenceStore: presence,
            bus,
            actors,
            metrics,
            ...(options.openFileLimit === undefined ? {} : { openFileLimit: options.openFileLimit }),
            log: log.child({ component: 'gateway' }),
            db: dbHandle.db,
            walletOf: async (userId) => {
              const { currency, available, pending, parked } = await walletApi.balance(userId);
              return { currency, available, pending, parked };
            },
            notifications: notificationsApi,
            ...(reminderTasks === undefined
              ? {}
              : {
                  onRoomMessagesStored: (here) =>
                    createUnreadScheduler({
                      tasks: reminderTasks,
                      isOnline: (userIds) => presence.isOnline(userIds),
                      isConnectedHere: here.isConnected,
                      delayMs: config.notifications.unreadAfterMs,
                      log: notificationsLog,
                      now: () => performance.now(),
                    }),
                }),
            ...(options.wrapRoomStore === undefined
              ? {}
              : {
                  roomStore: options.wrapRoomStore(createRoomStore(dbHandle.db, config.nodeId, { metrics })),
                }),
          });
    if (actors !== undefined && gateway !== undefined) {
      actors.register(gateway.actorKinds.user);
      actors.register(gateway.actorKinds.room);
    }
    let wsPort: number | undefined;
    /** Until the WebSocket edge listens, /health/ready answers 503 (HTTP listens first). */
    let gatewayStarting = gateway !== undefined;
    const copyExposition = copyMetricsExposition(metrics);
    const app = await buildApp({
      log,
      metrics,
      ...(copyExposition === undefined ? {} : { metricsExposition: copyExposition }),
      httpEdge: config.httpEdge,
      trustProxy: config.trustProxy,
      // Half the shutdown's deadline for the requests in flight, the rest for the steps after HTTP
      // (Redis, the database pool, the managed redis-server): a request still arriving then would
      // otherwise hold the shutdown past it (Node no longer times requests out once closing).
      closeGraceMs: Math.floor(config.shutdownTimeoutMs / 2),
      health: {
        info: () => ({
          nodeId: config.nodeId,
          role: config.role,
          installationId: installation.id,
          boots,
          database: dbHandle.dialect,
          redis: redisKind,
          ...(gateway === undefined
            ? {}
            : { websocket: { engine: gateway.engine.name, detail: gateway.engine.detail, wsPort } }),
        }),
        checks: {
          postgres: () => dbHandle.ping(config.readyCheckTimeoutMs),
          redis: async () => {
            // A dropped connection fails at once instead of waiting in ioredis' offline queue.
            if (redis.status !== 'ready') throw new Error(`connection ${redis.status}`);
            // The bus has a connection of its own: down (Redis refusing its reconnects at
            // maxclients, say) while the main one works, this process hears no bus message at all
            // (no room pushes, no forwarded room requests, no revocations), so it is not ready.
            if (busSubscriber.status !== 'ready') {
              throw new Error(`bus connection ${busSubscriber.status}`);
            }
            await redis.ping();
          },
        },
        timeoutMs: config.readyCheckTimeoutMs,
        isDraining: () => draining,
        isStarting: () => gatewayStarting,
      },
      ...(runsRest(config.role)
        ? {
            rest: {
              ...services,
              rooms: {
                rooms: services.rooms,
                idempotency: { db: dbHandle.db, clock: systemClock, waitMs: 5_000 },
              },
              payments: {
                payments: createPaymentsApi({
                  ...paymentsDeps,
                  webhookSecrets: config.payments.webhookSecrets,
                }),
                idempotency: { db: dbHandle.db, clock: systemClock, waitMs: 5_000 },
                announce: announceWalletChange,
              },
              wallet: {
                wallet: walletApi,
                idempotency: { db: dbHandle.db, clock: systemClock, waitMs: 5_000 },
                announce: announceWalletChange,
                transferLimit: {
                  counter: createRedisWindowCounter(redis, config.redisPrefix),
                  perMinute: config.payments.transfersPerMinute,
                },
              },
              contracts: {
                contracts: contractDeps,
                idempotency: { db: dbHandle.db, clock: systemClock, waitMs: 5_000 },
                announce: announceWalletChange,
              },
              jobs: {
                marketplace: {
                  db: dbHandle.db,
                  clock: systemClock,
                  settings: { currency: config.payments.currency },
                },
                idempotency: { db: dbHandle.db, clock: systemClock, waitMs: 5_000 },
              },
              reviews: {
                marketplace: {
                  db: dbHandle.db,
                  clock: systemClock,
                  settings: { currency: config.payments.currency },
                },
                idempotency: { db: dbHandle.db, clock: systemClock, waitMs: 5_000 },
              },
              ...(taskQueues?.consoleQueues === undefined
                ? {}
                : {
                    console: {
                      sessions: createConsoleSessions({
                        db: dbHandle.db,
                        clock: systemClock,
                        auth: services.auth,
                      }),
                      auth: services.auth,
                      queues: taskQueues.consoleQueues,
                      publicUrl: config.publicUrl,
                    },
                  }),
              notifications: notificationsApi,
              version: packageVersion(),
              web: { root: webRoot() },
              security: {
                corsOrigins: config.corsOrigins,
                rateLimitPerMinute: config.rateLimitPerMinute,
              },
            },
          }
        : {}),
      ...(gateway === undefined
        ? {}
        : { websocket: (fastify: FastifyInstance) => gateway.registerFastify(fastify) }),
    });
    started.push({
      name: 'stop accepting HTTP',
      run: async () => {
        draining = true;
        await app.close();
      },
    });
    await listening(`HOST ${config.host} PORT ${config.port}`, () =>
      app.listen({ host: config.host, port: config.port }),
    );
    if (gateway !== undefined) {
      // Pushed last, so they run first at shutdown: sockets close 1012 before HTTP stops.
      started.push(...gateway.shutdownSteps().reverse(), {
        name: 'mark draining',
        run: async () => {
          draining = true;
        },
      });
      wsPort = (await listening(`HOST ${config.host} WS_PORT ${config.ws.port}`, () => gateway.start()))
        .wsPort;
      gatewayStarting = false;
    }
    const address = app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : config.port;
    const listenHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
    // An IPv6 address goes in brackets (`http://[::1]:3000`): unbracketed it is no URL, and the
    // sandbox provider, which posts webhooks here when PUBLIC_URL is unset, credited no top-up.
    const shownHost = isIP(listenHost) === 6 ? `[${listenHost}]` : listenHost;
    ownBaseUrl = `http://${shownHost}:${port}`;
    return {
      app,
      baseUrl: ownBaseUrl,
      uwsUrl: wsPort === undefined ? undefined : `ws://${shownHost}:${wsPort}/ws`,
      shutdownSteps: shutdownSteps(),
    };
  } catch (error) {
    for (const step of shutdownSteps()) await step.run().catch(() => undefined);
    throw error;
  }
}
