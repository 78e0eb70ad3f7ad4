/**
 * The bus bridge: what this gateway node does with each topic of the bus catalogue that concerns
 * the sockets it holds (presence, revocations, membership, contacts, wallets, notifications,
 * marketplace). Payloads arrive typed and already parsed (platform/bus/topics.ts); each handler
 * only routes them to the hub, a user actor or the room router. Room frames are not here: room
 * delivery subscribes per joined room (room-joins.ts).
 */

import { CloseCode } from '../../protocol/src/codes.js';
import type { WalletPayload } from '../../protocol/src/frames.js';
import type { RoomId, UserId } from '../../protocol/src/ids.js';
import type { UserMessage } from '../actors/user/user-actor.js';
import type { Bus } from '../platform/bus/bus.js';
import {
  ACCOUNT_LOCKED_REASON,
  CONTACT_REMOVED_TOPIC,
  JOB_POSTED_TOPIC,
  MARKET_EVENT_TOPIC,
  NOTIFICATIONS_READ_TOPIC,
  NOTIFICATIONS_TOPIC,
  PRESENCE_BATCH_TOPIC,
  PRESENCE_TOPIC,
  ROOM_MEMBERSHIP_TOPIC,
  SESSIONS_REVOKED_TOPIC,
  WALLET_CHANGED_TOPIC,
} from '../platform/bus/topics.js';
import type { Logger } from '../platform/logger.js';
import { systemTimers, type Timers } from '../platform/timers.js';
import type { Connection } from './connection.js';
import type { Hub } from './hub.js';
import type { JobBoard } from './job-board.js';

export interface BusBridgeDeps {
  readonly bus: Pick<Bus, 'subscribe' | 'onResubscribed'>;
  readonly hub: Hub;
  readonly jobBoard: Pick<JobBoard<Connection>, 'watchersOf'>;
  readonly log: Logger;
  /** A personal push through the user's actor, which orders it with their other pushes. */
  readonly tellUser: (userId: UserId, message: UserMessage) => void;
  /** A room's membership changed: drop cached access, reload the hosted actor. */
  readonly onMembershipChanged: (roomId: RoomId) => void;
  /** Counted, so a presence subscription racing a removal re-checks (handlers.ts). */
  readonly onContactRemoved: () => void;
  /**
   * Which of `userIds` are the watcher's mutual contacts now (read from the store): after the bus
   * connection came back, watches of users who stopped being contacts meanwhile are dropped.
   * Absent: no such check.
   */
  readonly mutualContactsAmong?: (
    watcher: UserId,
    userIds: readonly UserId[],
  ) => Promise<ReadonlySet<UserId>>;
  /** The user's current balance, for `wallet` pushes; absent: no wallet pushes. */
  readonly walletOf?: (userId: UserId) => Promise<WalletPayload>;
  /**
   * After the bus connection came back and the watches were checked (so no ex-contact is told
   * anything): pushes watchers the current presence of those they watch, lost meanwhile.
   */
  readonly refreshWatchedPresence?: () => Promise<void>;
  /** Schedules the retries of a watch check the store failed (default real time). */
  readonly timers?: Timers;
}

/** Watching users whose contacts are read at once when the bus came back (recheckWatches). */
const RECHECK_WATCHERS_AT_ONCE = 8;
/**
 * Attempts of that check when the store fails it (the database down as the bus comes back): a
 * delay of WATCH_RECHECK_RETRY_MS doubling up to 30 s between them, about four minutes in all.
 */
export const WATCH_RECHECK_ATTEMPTS = 12;
export const WATCH_RECHECK_RETRY_MS = 1_000;
const WATCH_RECHECK_RETRY_MAX_MS = 30_000;

/** Subscribes this node; resolves with the unsubscribe functions. */
export async function subscribeBusBridge(deps: BusBridgeDeps): Promise<(() => Promise<void>)[]> {
  const { bus, hub, log, tellUser } = deps;
  const hasSockets = (userId: UserId) => hub.connectionsOf(userId).size > 0;
  /**
   * Wallet reads in flight per user, numbered as they start: a read that started later sees at
   * least as new a balance, so a result older than the last one pushed is dropped (two reads that
   * finish in the other order would otherwise leave the older balance on the user's screens).
   */
  const walletReads = new Map<UserId, { started: number; pushed: number; inFlight: number }>();
  const pushWallet = (walletOf: (userId: UserId) => Promise<WalletPayload>, userId: UserId) => {
    const reads = walletReads.get(userId) ?? { started: 0, pushed: 0, inFlight: 0 };
    walletReads.set(userId, reads);
    reads.started += 1;
    reads.inFlight += 1;
    const mine = reads.started;
    walletOf(userId)
      .then(
        (wallet) => {
          if (mine < reads.pushed) return;
          reads.pushed = mine;
          tellUser(userId, { type: 'wallet', wallet });
        },
        (error: unknown) => log.warn({ err: error, userId }, 'wallet push skipped'),
      )
      .catch((error: unknown) => log.warn({ err: error, userId }, 'wallet push failed'))
      .finally(() => {
        reads.inFlight -= 1;
        if (reads.inFlight === 0) walletReads.delete(userId);
      });
  };
  /**
   * A contact removal announced while this node's bus subscriber was away never reached it, and
   * its watches between the two users went on: the ex-contact's every transition was pushed to a
   * user who may no longer see it. Once the subscriber is back, each watching user's watches here
   * are checked against the store (one query per user) and those of non-contacts end.
   */
  const mutualContactsAmong = deps.mutualContactsAmong;
  const recheckWatches = async () => {
    if (mutualContactsAmong === undefined) return;
    const byWatcher = new Map<UserId, [Connection, UserId[]][]>();
    for (const watch of hub.watches()) {
      const entries = byWatcher.get(watch[0].userId) ?? [];
      entries.push(watch);
      byWatcher.set(watch[0].userId, entries);
    }
    // A few users at a time: after a blip of the bus, the node's other queries are not held behind
    // one query per watching user.
    const watching = [...byWatcher];
    for (let i = 0; i < watching.length; i += RECHECK_WATCHERS_AT_ONCE) {
      await Promise.all(
        watching.slice(i, i + RECHECK_WATCHERS_AT_ONCE).map(async ([watcher, entries]) => {
          const ids = [...new Set(entries.flatMap(([, userIds]) => userIds))];
          const contacts = await mutualContactsAmong(watcher, ids);
          for (const [connection, userIds] of entries) {
            hub.unwatch(
              connection,
              userIds.filter((userId) => !contacts.has(userId)),
            );
          }
        }),
      );
    }
  };
  /**
   * A check the store failed is tried again (bounded), and watchers are told the current presence
   * only after a check succeeded: before, a failed check was given up at once and the refresh went
   * ahead, pushing a former contact's presence, and the watch went on pushing every later change.
   * A new drop of the bus starts over; stopping the bridge ends it.
   */
  const timers = deps.timers ?? systemTimers;
  let recheckRetry: (() => void) | undefined;
  let comebacks = 0;
  let stopped = false;
  const recheck = (attempt: number, comeback: number) => {
    recheckRetry = undefined;
    recheckWatches().then(
      () => {
        if (comeback !== comebacks || stopped) return;
        deps
          .refreshWatchedPresence?.()
          .catch((error: unknown) => log.warn({ err: error }, 'watched presence not refreshed'));
      },
      (error: unknown) => {
        const retry = attempt < WATCH_RECHECK_ATTEMPTS && !stopped && comeback === comebacks;
        log.warn({ err: error, attempt, retry }, 'presence watches not checked after the bus came back');
        if (!retry) return;
        const delay = Math.min(WATCH_RECHECK_RETRY_MS * 2 ** (attempt - 1), WATCH_RECHECK_RETRY_MAX_MS);
        recheckRetry = timers.schedule(delay, () => recheck(attempt + 1, comeback));
      },
    );
  };
  const unlisten = bus.onResubscribed?.(() => {
    comebacks += 1;
    recheckRetry?.();
    recheck(1, comebacks);
  });
  const stopRechecks = () => {
    stopped = true;
    unlisten?.();
    recheckRetry?.();
  };
  return [
    async () => stopRechecks(),
    await bus.subscribe(PRESENCE_BATCH_TOPIC, ({ states }) => {
      for (const state of states) hub.pushToWatchers(state.userId, { t: 'presence', d: state });
    }),
    // What older nodes publish during a rolling deploy (one message per transition).
    await bus.subscribe(PRESENCE_TOPIC, (state) => {
      hub.pushToWatchers(state.userId, { t: 'presence', d: state });
    }),
    await bus.subscribe(SESSIONS_REVOKED_TOPIC, ({ userId, sessionId, reason }) => {
      if (reason === ACCOUNT_LOCKED_REASON && sessionId === undefined) {
        // A locked account's presence is shown to nobody (its profile is 404, presence.subscribe
        // refuses it as a non-contact): watches of it end before its sockets' offline is pushed.
        // Counted as a removal, so a subscription checked just before the lock checks again.
        deps.onContactRemoved();
        for (const [connection, watched] of hub.watches()) {
          if (watched.includes(userId)) hub.unwatch(connection, [userId]);
        }
      }
      const closed = hub.closeUser(userId, sessionId, CloseCode.AUTH_EXPIRED, 'session revoked');
      if (closed > 0) log.info({ userId, closed }, 'closed sockets of revoked sessions');
    }),
    await bus.subscribe(ROOM_MEMBERSHIP_TOPIC, ({ roomId }) => deps.onMembershipChanged(roomId)),
    await bus.subscribe(CONTACT_REMOVED_TOPIC, ({ userId, contactId }) => {
      // Presence is for mutual contacts: once either side removes the other, neither watches.
      deps.onContactRemoved();
      for (const connection of hub.connectionsOf(userId)) hub.unwatch(connection, [contactId]);
      for (const connection of hub.connectionsOf(contactId)) hub.unwatch(connection, [userId]);
    }),
    await bus.subscribe(WALLET_CHANGED_TOPIC, ({ userIds }) => {
      // Read here, after the commit that announced it: the push carries the whole balance, and a
      // read finishing after a later one is dropped (pushWallet), so screens end on the truth.
      const walletOf = deps.walletOf;
      if (walletOf === undefined) return;
      for (const userId of userIds) if (hasSockets(userId)) pushWallet(walletOf, userId);
    }),
    await bus.subscribe(NOTIFICATIONS_TOPIC, ({ userId, notification }) => {
      if (hasSockets(userId)) tellUser(userId, { type: 'notify', notification });
    }),
    await bus.subscribe(NOTIFICATIONS_READ_TOPIC, ({ userId, exceptConnectionId, ...read }) => {
      // Every socket of the user but the one that asked (it has its reply) clears its badge.
      for (const connection of hub.connectionsOf(userId)) {
        if (connection.id !== exceptConnectionId) connection.sendFrame({ t: 'notifications.read', d: read });
      }
    }),
    // Marketplace (the relay's half is src/domain/events/live.ts): users without a socket here are
    // some other node's (or nobody's), so no actor is woken for them.
    await bus.subscribe(MARKET_EVENT_TOPIC, ({ userIds, event }) => {
      for (const userId of userIds) if (hasSockets(userId)) tellUser(userId, { type: 'market', event });
    }),
    await bus.subscribe(JOB_POSTED_TOPIC, ({ job }) => {
      const watchers = deps.jobBoard.watchersOf(job);
      if (watchers.length > 0) hub.pushTo(watchers, { t: 'job.posted', d: job });
    }),
  ];
}
