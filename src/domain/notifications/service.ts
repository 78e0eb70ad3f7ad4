/**
 * The notifications pipeline and what REST and WebSocket call (issue 13). Takes its ports as
 * arguments: the database, the bus (live pushes reach every node's sockets), the task queue
 * (digests and unread checks are delayed tasks), presence (`isOnline`) and the clock.
 *
 * Delivery of one notification, however often its task runs:
 * 1. one transaction stores it once (unique per event and recipient) and, when it is meant for
 *    email, attaches it to the user's open digest (opening one due NOTIFY_EMAIL_DIGEST_S later);
 * 2. after the commit it is pushed through the bus unless `pushed_at` says that happened already
 *    (a crash between push and mark pushes again: clients dedupe by its stable id);
 * 3. the digest task is enqueued, keyed by the digest, so a rerun adds nothing.
 */
import type { Kysely, Transaction } from 'kysely';
import type { NotificationPayload } from '../../../protocol/src/frames.js';
import {
  BidId,
  ContractId,
  type NotificationId,
  OutboxEventId,
  type RoomId,
  type UserId,
} from '../../../protocol/src/ids.js';
import type {
  Notification,
  NotificationPreference,
  NotificationPreferences,
  ReadNotificationsRequest,
  ReadNotificationsResult,
  UnsubscribeResult,
  UpdateNotificationPreferences,
} from '../../../protocol/src/rest/notifications.js';
import type { Database } from '../../db/database.js';
import { findBid } from '../../db/repositories/bids.repo.js';
import { findJob } from '../../db/repositories/jobs.repo.js';
import {
  attachToOpenDigest,
  closeDigest,
  contractTransitionActor,
  countUnread,
  findDigest,
  findOutboxEvent,
  insertNotificationOnce,
  listNotifications,
  listPreferences,
  lockDigest,
  mailableOfDigest,
  mailedTypesOfDigest,
  markAllNotificationsRead,
  markNotificationsRead,
  markPushed,
  memberReadSeq,
  type NotificationRow,
  overdueOpenDigests,
  unmailableOfDigest,
  unreadSummary,
  upsertPreferences,
} from '../../db/repositories/notifications.repo.js';
import { insertEmailOnce } from '../../db/repositories/outbox.repo.js';
import { findPayment } from '../../db/repositories/payments.repo.js';
import { findUserById, lockUserById } from '../../db/repositories/users.repo.js';
import type { EmailPreference } from '../../db/tables/notifications.table.js';
import type { Bus } from '../../platform/bus/bus.js';
import { NOTIFICATIONS_READ_TOPIC, NOTIFICATIONS_TOPIC } from '../../platform/bus/topics.js';
import type { Clock } from '../../platform/clock.js';
import { AppError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import { type TaskQueue, taskId } from '../../platform/queues/tasks.js';
import { CONTRACT_EVENT_PREFIX } from '../marketplace/events.js';
import { decodeCursor, pageOf } from '../pagination.js';
import { type ContentContext, contentOf, linkPathOf } from './content.js';
import { notificationsOf } from './from-events.js';
import {
  ALL_NOTIFICATION_TYPES,
  ALWAYS_EMAILED,
  DEFAULT_PREFERENCES,
  decideDelivery,
  isNotificationType,
  type NotificationIntent,
  type NotificationType,
} from './types.js';
import { unsubscribeTokens } from './unsubscribe.js';

export { NOTIFICATIONS_READ_TOPIC, NOTIFICATIONS_TOPIC };

export interface NotificationSettings {
  /** NOTIFY_EMAIL_DIGEST_S in ms: how long a digest collects before it is sent. */
  readonly digestMs: number;
  /** UNREAD_EMAIL_AFTER_S in ms. */
  readonly unreadAfterMs: number;
  /** The platform currency (amounts of transfers, which carry none). */
  readonly currency: string;
}

export interface NotificationsDeps {
  readonly db: Kysely<Database>;
  readonly bus: Bus;
  readonly clock: Clock;
  readonly log: Logger;
  readonly tasks: Pick<TaskQueue, 'enqueue'>;
  /** Whether the user has a socket open on any node (the presence store). */
  readonly isOnline: (userId: UserId) => Promise<boolean>;
  readonly settings: NotificationSettings;
}

/** One item of a digest mail, with what a template needs and nothing it must look up. */
export interface DigestItem {
  readonly type: NotificationType;
  readonly title: string;
  readonly body: string;
  readonly linkPath: string;
  readonly data: Readonly<Record<string, unknown>>;
  readonly createdAt: Date;
}

/**
 * Most notifications one digest mail lists (security notices first); the rest are counted and
 * linked (the app lists them all). `sendDigest` reads no more rows than this.
 */
export const DIGEST_MAX_ITEMS = 50;

export interface DigestMailInput {
  readonly username: string;
  readonly items: readonly DigestItem[];
  /**
   * How many notifications the digest mails in all, `items` and those beyond DIGEST_MAX_ITEMS not
   * read (`items.length` when absent).
   */
  readonly total?: number;
  /** The one-click unsubscribe token of the recipient (`unsubscribe.ts`), for the link in the body. */
  readonly unsubscribeToken?: string;
}

export interface RenderedMail {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

const toPush = (row: NotificationRow): NotificationPayload => ({
  id: row.id,
  kind: row.type,
  title: row.title,
  body: row.body,
  data: row.data,
  createdAt: row.created_at.toISOString(),
});

/**
 * A stored row as REST answers it. `data` that is no JSON object (a `null` or an array an operator
 * wrote) is answered as `{}`: the response schema requires an object, and one such row made the
 * user's whole list a 500. Rows of unknown types are never listed (`LISTED_TYPES`).
 */
export const toNotification = (row: NotificationRow): Notification => ({
  id: row.id,
  type: row.type as NotificationType,
  title: row.title,
  body: row.body,
  data:
    typeof row.data === 'object' && row.data !== null && !Array.isArray(row.data)
      ? row.data
      : ({} as NotificationRow['data']),
  createdAt: row.created_at.toISOString(),
  readAt: row.read_at?.toISOString() ?? null,
});

/** The user's effective preference for every type (defaults where nothing is stored). */
export async function preferencesOf(
  db: Kysely<Database> | Transaction<Database>,
  userId: UserId,
): Promise<Record<NotificationType, NotificationPreference>> {
  const stored = await listPreferences(db, userId);
  const result = { ...DEFAULT_PREFERENCES };
  for (const row of stored) {
    if ((ALL_NOTIFICATION_TYPES as readonly string[]).includes(row.type)) {
      const type = row.type as NotificationType;
      result[type] = { inApp: row.in_app, email: ALWAYS_EMAILED.has(type) ? 'always' : row.email };
    }
  }
  return result;
}

export type DeliveryOutcome = 'stored' | 'duplicate' | 'not-wanted';

/**
 * Stores, pushes and schedules the mail of one notification, keyed by (eventKey, user). Safe to run
 * any number of times: the second run finds the row and only finishes what the first left undone.
 */
export async function deliver(
  deps: NotificationsDeps,
  eventKey: string,
  intent: NotificationIntent,
  context: ContentContext,
  traceId?: string,
): Promise<DeliveryOutcome> {
  const { db, clock } = deps;
  const preference = (await preferencesOf(db, intent.userId))[intent.type];
  const online = preference.email === 'offline' ? await deps.isOnline(intent.userId) : false;
  const decision = decideDelivery(preference, online);
  const log = deps.log.child({ userId: intent.userId, type: intent.type, ...(traceId ? { traceId } : {}) });
  if (!decision.store) {
    log.debug('notification not wanted (in-app off, email never)');
    return 'not-wanted';
  }
  const content = contentOf(intent.type, intent.data, context);
  const now = clock.now();
  const { row, inserted, digestDueAt } = await db.transaction().execute(async (trx) => {
    const stored = await insertNotificationOnce(trx, {
      userId: intent.userId,
      eventId: eventKey,
      type: intent.type,
      title: content.title,
      body: content.body,
      data: { ...intent.data },
      inApp: decision.inApp,
      traceId: traceId ?? null,
    });
    if (!stored.inserted || !decision.email) return { ...stored, digestDueAt: undefined };
    const digest = await attachToOpenDigest(
      trx,
      stored.row.id,
      intent.userId,
      new Date(now.getTime() + deps.settings.digestMs),
    );
    return { row: { ...stored.row, digest_id: digest.id }, inserted: true, digestDueAt: digest.due_at };
  });
  if (row.in_app && row.pushed_at === null) {
    await deps.bus.publish(NOTIFICATIONS_TOPIC, { userId: intent.userId, notification: toPush(row) });
    await markPushed(db, row.id, clock.now());
  }
  if (row.digest_id !== null) {
    const dueAt = digestDueAt ?? (await findDigest(db, row.digest_id))?.due_at;
    if (dueAt !== undefined) {
      await deps.tasks.enqueue(
        'notifications.digest',
        { digestId: row.digest_id },
        taskId('digest', row.digest_id),
        { delayMs: dueAt.getTime() - clock.now().getTime() },
      );
    }
  }
  log.info(
    { notificationId: row.id, email: row.digest_id !== null, inApp: row.in_app },
    inserted ? 'notification stored' : 'notification was stored before',
  );
  return inserted ? 'stored' : 'duplicate';
}

/** What the delivery context needs: the job's title, the other party's name, the currency. */
async function contextOf(deps: NotificationsDeps, intent: NotificationIntent): Promise<ContentContext> {
  const { data } = intent;
  const str = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const jobId = str(data.jobId);
  const job = jobId === undefined ? undefined : await findJob(deps.db, jobId as never).catch(() => undefined);
  const otherId = str(data.workerId ?? data.fromUserId ?? data.authorId);
  const other =
    otherId === undefined || intent.type === 'bid.accepted' || intent.type === 'bid.rejected'
      ? undefined
      : await findUserById(deps.db, otherId as UserId).catch(() => undefined);
  const paymentId = str(data.paymentId);
  const payment =
    paymentId === undefined ? undefined : await findPayment(deps.db, paymentId).catch(() => undefined);
  return {
    currency: payment?.currency ?? deps.settings.currency,
    ...(job === undefined ? {} : { jobTitle: job.title }),
    ...(other === undefined ? {} : { otherName: other.username }),
  };
}

/** A bid event's amount when its payload has none (bid events carry ids only). */
async function bidAmountOf(
  deps: NotificationsDeps,
  data: Readonly<Record<string, unknown>>,
): Promise<{ amount?: number }> {
  const bidId = BidId.safeParse(data.bidId);
  if (data.amount !== undefined || !bidId.success) return {};
  const bid = await findBid(deps.db, bidId.data);
  const amount = bid === undefined ? Number.NaN : Number(bid.amount);
  return Number.isSafeInteger(amount) ? { amount } : {};
}

/** The `notifications.deliver` task: the event's notification for one of its recipients. */
export async function deliverEventNotification(
  deps: NotificationsDeps,
  task: { readonly eventId: string; readonly userId: UserId; readonly traceId?: string },
): Promise<DeliveryOutcome | 'no-event' | 'no-user'> {
  const eventId = OutboxEventId.safeParse(task.eventId);
  const event = eventId.success ? await findOutboxEvent(deps.db, eventId.data) : undefined;
  if (event === undefined) return 'no-event';
  const intent = notificationsOf(event).find((candidate) => candidate.userId === task.userId);
  if (intent === undefined) return 'not-wanted';
  // An account deleted since the event (an operator's erasure: its rows cascade) cannot be told:
  // the insert would fail its foreign key on every attempt, retried for hours (a driver error).
  // Done, with the outcome in the worker's log line. One deleted after this read fails the insert
  // once; the retry ends here.
  if ((await findUserById(deps.db, task.userId)) === undefined) return 'no-user';
  // Contract events notify both parties (for the live push); the one who acted is not told.
  const contractId = ContractId.safeParse(event.payload.contractId);
  const version = event.payload.version;
  if (event.type.startsWith(CONTRACT_EVENT_PREFIX) && contractId.success && typeof version === 'number') {
    if ((await contractTransitionActor(deps.db, contractId.data, version)) === task.userId)
      return 'not-wanted';
  }
  const context = await contextOf(deps, intent);
  const withAmount = { ...intent.data, ...(await bidAmountOf(deps, intent.data)) };
  // Money amounts are rendered with their currency in receipts: keep it with the data.
  const data =
    typeof withAmount.amount === 'number' ? { ...withAmount, currency: context.currency } : withAmount;
  return deliver(deps, event.id, { ...intent, data }, context, task.traceId ?? event.trace_id ?? undefined);
}

/**
 * Whether a digest can carry this notification: a type this build knows (not one of a newer build
 * during a rolling deploy, a removed one, an operator's insert) with data that is a JSON object.
 * Another is left out and logged, so that one row cannot hold the digest open (its render failing,
 * retried for hours, every later notification joining it) and with it the security notices.
 */
function renderable(
  log: Logger,
  digestId: string,
  row: NotificationRow,
): row is NotificationRow & { readonly type: NotificationType } {
  const known = isNotificationType(row.type);
  const data: unknown = row.data;
  const isObject = typeof data === 'object' && data !== null && !Array.isArray(data);
  if (known && isObject) return true;
  const fields = { digestId, userId: row.user_id, notificationId: row.id, type: row.type };
  if (!isObject) log.error(fields, 'notification left out of its digest: its data is not an object');
  else log.warn(fields, 'notification left out of its digest: a type this build does not know');
  return false;
}

/** Key of a digest's mail in the `emails` table (one mail per digest). */
export const digestEmailKey = (digestId: string) => taskId('digest-mail', digestId);

/** The digest a digest mail's key names (`digestEmailKey`), or undefined for another key. */
const digestIdOfEmailKey = (key: string): string | undefined =>
  /^digest-mail\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i.exec(key)?.[1];

/**
 * Whether a stored digest mail, not sent yet, still carries something its recipient wants mailed
 * under the preferences of now: a security notice (always mailed), or a type whose `email` is not
 * `never`. False once the recipient turned off every other type in it since it was stored (the
 * one-click unsubscribe, `PUT /v1/me/notification-preferences`) while the mail waited for the SMTP
 * server (a deferring or unreachable server keeps it pending for hours): RFC 8058 asks the sender
 * to stop, and `sendDigest` would not have stored it under those preferences. Asked by the email
 * worker before each attempt. True when it cannot tell (a key of another kind, no types found).
 */
export async function digestMailStillWanted(
  db: Kysely<Database>,
  userId: UserId,
  emailKey: string,
): Promise<boolean> {
  const digestId = digestIdOfEmailKey(emailKey);
  if (digestId === undefined) return true;
  const types = await mailedTypesOfDigest(db, digestId, [...ALWAYS_EMAILED]);
  if (types.length === 0) return true;
  const preferences = await preferencesOf(db, userId);
  return types.some((type) => isNotificationType(type) && preferences[type].email !== 'never');
}

/** The CONFLICT reason of a digest task run before its digest is due (retried, see `sendDigest`). */
export const DIGEST_NOT_DUE = 'DIGEST_NOT_DUE';

/**
 * The `notifications.digest` task: closes the digest once — `sent` with a stored mail holding every
 * notification of it still unread, or `empty` when all were read — and hands the stored mail to the
 * `emails.send` task (keyed by the mail, so a rerun sends nothing new).
 *
 * Never before its `due_at`: the task may run early (a failed task retried by an enqueue of its id
 * or by an operator runs at once, a delayed one may be promoted by hand, another node's clock may be
 * ahead), and closing then would cut the digest short: notifications meant to join it would open the
 * next one, a second mail within NOTIFY_EMAIL_DIGEST_S. Early, it throws CONFLICT `DIGEST_NOT_DUE`
 * and changes nothing; the worker retries that reason with the task's back-off (as the marketplace's
 * TIMER_EARLY, src/platform/queues/retry.ts), so it closes at the first attempt at or after due_at.
 */
export async function sendDigest(
  deps: NotificationsDeps & { readonly render: (input: DigestMailInput) => RenderedMail },
  digestId: string,
): Promise<'sent' | 'empty' | 'unknown'> {
  const { db, clock } = deps;
  // The key is read before the transaction: its first read takes a connection of its own.
  const unsubscribe = unsubscribeTokens(db);
  await unsubscribe.ready();
  const outcome = await db.transaction().execute(async (trx) => {
    const digest = await lockDigest(trx, digestId);
    if (digest === undefined) return { kind: 'unknown' as const };
    if (digest.status === 'empty') return { kind: 'empty' as const };
    if (digest.status === 'sent')
      return { kind: 'sent' as const, userId: digest.user_id, key: digest.email_key };
    if (clock.now().getTime() < digest.due_at.getTime()) {
      throw new AppError('CONFLICT', 'the digest is not due yet', {
        details: { reason: DIGEST_NOT_DUE, dueAt: digest.due_at.toISOString() },
      });
    }
    const user = await findUserById(trx, digest.user_id);
    // Nothing is mailed to an address its owner has not verified (anyone can sign up with anyone's
    // address, and notifications carry text other users wrote), nor to a locked account. A type
    // switched to `never` since its notification joined the digest is left out as well.
    const mailable = user !== undefined && user.email_verified_at !== null && user.locked_at === null;
    const preferences = mailable ? await preferencesOf(trx, digest.user_id) : undefined;
    // At most DIGEST_MAX_ITEMS rows read (the mail lists no more), the rest counted: other users'
    // bids and transfers can put any number of rows into one digest. Types this build does not know
    // and data that is no object are left out by the query, and named in the log (`renderable`).
    const { rows, total } =
      preferences === undefined
        ? { rows: [], total: 0 }
        : await mailableOfDigest(trx, digestId, {
            types: ALL_NOTIFICATION_TYPES.filter((type) => preferences[type].email !== 'never'),
            mailedEvenIfRead: [...ALWAYS_EMAILED],
            limit: DIGEST_MAX_ITEMS,
          });
    const items = rows.filter((row) => renderable(deps.log, digestId, row));
    if (preferences !== undefined) {
      // Named in the log, as `renderable` names them (an operator looks for them).
      const unmailable = await unmailableOfDigest(trx, digestId, {
        known: ALL_NOTIFICATION_TYPES,
        mailedEvenIfRead: [...ALWAYS_EMAILED],
        limit: DIGEST_MAX_ITEMS,
      });
      for (const row of unmailable) renderable(deps.log, digestId, row);
    }
    if (items.length === 0 || user === undefined) {
      await closeDigest(trx, digestId, { status: 'empty', at: clock.now(), emailKey: null });
      return { kind: 'empty' as const };
    }
    const key = digestEmailKey(digestId);
    const mail = deps.render({
      username: user.username,
      total: total - (rows.length - items.length),
      unsubscribeToken: await unsubscribe.issue(user.id, clock.now()),
      items: items.map((row) => ({
        type: row.type,
        title: row.title,
        body: row.body,
        linkPath: linkPathOf(row.type, row.data),
        data: row.data,
        createdAt: row.created_at,
      })),
    });
    await insertEmailOnce(trx, {
      idempotencyKey: key,
      template: 'notification-digest',
      userId: user.id,
      to: user.email,
      ...mail,
    });
    await closeDigest(trx, digestId, { status: 'sent', at: clock.now(), emailKey: key });
    deps.log.info({ digestId, userId: user.id, notifications: items.length }, 'notification digest stored');
    return { kind: 'sent' as const, userId: user.id, key };
  });
  if (outcome.kind === 'sent' && outcome.key !== null) {
    await deps.tasks.enqueue(
      'emails.send',
      { template: 'notification-digest', userId: outcome.userId, key: outcome.key },
      outcome.key,
    );
  }
  return outcome.kind;
}

/** How long past its due time an open digest counts as overdue (`requeueOverdueDigests`). */
export const DIGEST_OVERDUE_MS = 10 * 60_000;
/** Overdue digests queued again per run. */
const OVERDUE_BATCH = 500;

/**
 * Queues the digest task again for open digests more than DIGEST_OVERDUE_MS past due. Their task
 * was lost — a Redis restarted without its data (no AOF, a failover to a replica behind), an
 * operator cleaning the failed set — or failed for good (a database outage longer than its 54
 * attempts); until then only the user's next emailable notification re-enqueued it, so a digest
 * holding a security notice could wait for it forever. Harmless when the task still exists: the
 * same task id adds nothing while it is delayed, waiting, retrying or running, and a failed one is
 * retried with a fresh budget (`createTaskQueue`). Worker processes run it every few minutes.
 * Returns how many digests were found overdue.
 */
export async function requeueOverdueDigests(
  deps: Pick<NotificationsDeps, 'db' | 'tasks' | 'clock' | 'log'>,
): Promise<number> {
  const overdue = await overdueOpenDigests(
    deps.db,
    new Date(deps.clock.now().getTime() - DIGEST_OVERDUE_MS),
    OVERDUE_BATCH,
  );
  for (const digest of overdue) {
    await deps.tasks.enqueue('notifications.digest', { digestId: digest.id }, taskId('digest', digest.id));
  }
  if (overdue.length > 0) {
    deps.log.warn(
      { digests: overdue.length, oldestDueAt: overdue[0]?.dueAt.toISOString() },
      'open notification digests overdue: their tasks queued again',
    );
  }
  return overdue.length;
}

/** Key of the `messages.unread` notification of one unread streak: (room, read mark it started from). */
export const unreadEventKey = (roomId: string, readSeq: number) => `unread.${roomId}.${readSeq}`;

/**
 * The `notifications.unread-check` task: if the member's read mark is still where it was when the
 * message reached them offline, and others wrote after it, one `messages.unread` notification for
 * the streak. A read since (any device) moved the mark: nothing (a later check covers later messages).
 */
export async function checkUnreadRoom(
  deps: NotificationsDeps,
  task: { readonly roomId: RoomId; readonly userId: UserId; readonly readSeq: number },
): Promise<DeliveryOutcome | 'read' | 'not-member'> {
  const readSeq = await memberReadSeq(deps.db, task.roomId, task.userId);
  if (readSeq === undefined) return 'not-member';
  if (readSeq !== task.readSeq) return 'read';
  const summary = await unreadSummary(deps.db, task.roomId, task.userId, readSeq);
  if (summary.count === 0) return 'read';
  // "and others" only when someone besides the three named wrote (three senders are all named).
  const more = summary.moreSenders ? ' and others' : '';
  return deliver(
    deps,
    unreadEventKey(task.roomId, readSeq),
    {
      userId: task.userId,
      type: 'messages.unread',
      data: { roomId: task.roomId, count: summary.count, fromSeq: readSeq + 1, lastSeq: summary.lastSeq },
    },
    {
      currency: deps.settings.currency,
      ...(summary.senders.length === 0 ? {} : { otherName: `${summary.senders.join(', ')}${more}` }),
      ...(summary.roomTitle === null ? {} : { roomTitle: summary.roomTitle }),
    },
  );
}

// ---------------------------------------------------------------------------------------------
// What REST and the WebSocket gateway call
// ---------------------------------------------------------------------------------------------

export type NotificationsApi = ReturnType<typeof createNotificationsApi>;

/** The types an unsubscribe link turns off: all but those always emailed (security). */
const MAILABLE_OFF: readonly NotificationType[] = ALL_NOTIFICATION_TYPES.filter(
  (type) => !ALWAYS_EMAILED.has(type),
);

/**
 * The types the list and the unread count answer: those this build knows. The response schema
 * names every type, so a stored row of another (a type a newer build added, read by an older node
 * during a rolling deploy, or left after a rollback) made the user's whole list a 500 on every
 * page holding it; it is left out, and out of the badge, until a build that knows it serves it.
 */
const LISTED_TYPES: readonly string[] = ALL_NOTIFICATION_TYPES;

export function createNotificationsApi(deps: Pick<NotificationsDeps, 'db' | 'bus' | 'clock' | 'log'>) {
  const { db, bus, clock } = deps;
  return {
    list: async (userId: UserId, query: { unread?: boolean; cursor?: string; limit: number }) => {
      const rows = await listNotifications(db, userId, {
        types: LISTED_TYPES,
        unread: query.unread === true,
        after: decodeCursor('notifications', query.cursor),
        limit: query.limit + 1,
      });
      return pageOf('notifications', rows, query.limit, toNotification);
    },

    unreadCount: (userId: UserId) => countUnread(db, userId, LISTED_TYPES),

    /**
     * Marks read and tells the user's sockets on every node (`notifications.read`), except the
     * connection that asked (it has its answer). The push goes out even when nothing changed, so a
     * device that missed an earlier one catches up with the count.
     */
    read: async (
      userId: UserId,
      // REST and WebSocket both validated the ids as UUIDs; someone else's or unknown ones match nothing.
      request:
        | ReadNotificationsRequest
        | { readonly ids: readonly string[] }
        | { readonly all: true; readonly upTo?: string | undefined },
      exceptConnectionId?: string,
    ): Promise<ReadNotificationsResult> =>
      // One user's reads in turn (their row locked): mark, count and announce. Two reads at once
      // (REST and a socket) would otherwise announce their counts in any order, and the other
      // devices could end on the older, higher count.
      db.transaction().execute(async (trx) => {
        if ((await lockUserById(trx, userId)) === undefined) {
          throw new AppError('UNAUTHORIZED', 'invalid access token');
        }
        // `{all: true}` alone marks what arrived after the client listed too (old clients);
        // `upTo` bounds it to what the client saw.
        // `{all: true}` is one statement that answers a count and the newest row it marked, never
        // the ids (100k unread notifications are not loaded); the push then names that newest one as
        // `upTo`, so the other devices clear exactly what was marked, not one that arrived since.
        const marked =
          'all' in request
            ? await markAllNotificationsRead(
                trx,
                userId,
                request.upTo as NotificationId | undefined,
                clock.now(),
              )
            : undefined;
        const upTo =
          'all' in request
            ? ((request.upTo as NotificationId | undefined) ?? marked?.newest ?? undefined)
            : undefined;
        const changed =
          'all' in request
            ? []
            : await markNotificationsRead(trx, userId, { ids: request.ids as NotificationId[] }, clock.now());
        const unreadCount = await countUnread(trx, userId, LISTED_TYPES);
        // Sent while the row is locked, so announcements leave in the order of the reads (the bus
        // writes each publish to Redis as it is called), but not awaited here: a stalled Redis
        // must not hold the transaction (on the embedded database, every request of the node).
        bus
          .publish(NOTIFICATIONS_READ_TOPIC, {
            userId,
            ...('all' in request ? { all: true, ...(upTo === undefined ? {} : { upTo }) } : { ids: changed }),
            unreadCount,
            ...(exceptConnectionId === undefined ? {} : { exceptConnectionId }),
          })
          .catch((error: unknown) => {
            // Marked read all the same: other devices learn it at their next list or count.
            deps.log.warn({ err: error, userId }, 'notifications.read push skipped');
          });
        return { updated: marked?.updated ?? changed.length, unreadCount };
      }),

    /**
     * What the one-click unsubscribe link of a digest would turn off; changes nothing (a GET: link
     * scanners fetch it). @throws AppError VALIDATION_FAILED, UNAUTHORIZED (see `unsubscribe.ts`)
     */
    unsubscribePreview: async (token: string): Promise<UnsubscribeResult> => {
      await unsubscribeTokens(db).verify(token, clock.now());
      return { emailOff: [...MAILABLE_OFF] };
    },

    /**
     * The one-click unsubscribe (RFC 8058 POST): `email: never` for every type whose mail may be
     * turned off, `inApp` kept; security types stay mailed. The token is the only credential, and
     * this is all it can do. @throws AppError VALIDATION_FAILED, UNAUTHORIZED
     */
    unsubscribe: async (token: string): Promise<UnsubscribeResult> => {
      const userId = await unsubscribeTokens(db).verify(token, clock.now());
      return db.transaction().execute(async (trx) => {
        // The user's row locked while merged, as updatePreferences does.
        if ((await lockUserById(trx, userId)) === undefined) {
          throw new AppError('UNAUTHORIZED', 'invalid unsubscribe link');
        }
        const current = await preferencesOf(trx, userId);
        await upsertPreferences(
          trx,
          userId,
          MAILABLE_OFF.map((type) => ({ type, inApp: current[type].inApp, email: 'never' as const })),
          clock.now(),
        );
        deps.log.info({ userId, types: MAILABLE_OFF.length }, 'notification mail unsubscribed by link');
        return { emailOff: [...MAILABLE_OFF] };
      });
    },

    preferences: async (userId: UserId): Promise<NotificationPreferences> => ({
      preferences: await preferencesOf(db, userId),
    }),

    updatePreferences: async (
      userId: UserId,
      update: UpdateNotificationPreferences,
    ): Promise<NotificationPreferences> =>
      // The user's row locked while merged: two updates at once (inApp from one device, email from
      // another) would otherwise each write back the other's field as it was, losing one.
      db.transaction().execute(async (trx) => {
        if ((await lockUserById(trx, userId)) === undefined)
          throw new AppError('UNAUTHORIZED', 'invalid access token');
        const current = await preferencesOf(trx, userId);
        const rows: { type: NotificationType; inApp: boolean; email: EmailPreference }[] = [];
        for (const [type, patch] of Object.entries(update.preferences) as [
          NotificationType,
          { inApp?: boolean; email?: EmailPreference } | undefined,
        ][]) {
          if (patch === undefined) continue;
          if (ALWAYS_EMAILED.has(type) && patch.email !== undefined && patch.email !== 'always') {
            // Field errors as every other VALIDATION_FAILED names them (`errors`, dotted from `body`),
            // so a client marks the field instead of showing only the summary.
            const message = 'is always emailed: its mail cannot be turned off';
            throw new AppError('VALIDATION_FAILED', `${type} ${message}`, {
              details: { errors: [{ path: `body.preferences.${type}.email`, message }] },
            });
          }
          rows.push({
            type,
            inApp: patch.inApp ?? current[type].inApp,
            email: patch.email ?? current[type].email,
          });
        }
        await upsertPreferences(trx, userId, rows, clock.now());
        return { preferences: await preferencesOf(trx, userId) };
      }),
  };
}
