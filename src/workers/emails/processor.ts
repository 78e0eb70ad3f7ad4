/**
 * The `emails` queue worker. Idempotent per mail key: the first run renders the mail (issuing its
 * single-use token) and stores it as `pending`; every run sends a `pending` mail and records the
 * outcome, and a mail already `sent` (or kept in the outbox) is never sent again. A worker killed
 * mid-send leaves the mail `pending`; the retry sends the same stored mail (same token, same
 * Message-ID), except that a link mail still unsent half its token's validity after it was stored
 * gets a fresh token at each attempt (an SMTP outage must not deliver a dead link). Only a crash in
 * the instant between the SMTP server's acceptance and our update can produce a duplicate, which
 * receivers can drop by Message-ID; a database error in that update is retried in place, then
 * noted in Redis so that no later run sends the mail again (`recordSent`). A mail the server
 * refuses for good (a 5xx reply to a recipient or to the message) is recorded `failed` and not
 * tried again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { UnrecoverableError, type Worker } from 'bullmq';
import type { Kysely } from 'kysely';
import type { EmailId, UserId } from '../../../protocol/src/ids.js';
import type { Database } from '../../db/database.js';
import {
  findEmailByKey,
  insertEmailOnce,
  pendingEmailsBefore,
  recordEmailOutcome,
  rewritePendingEmail,
} from '../../db/repositories/outbox.repo.js';
import { type EmailTokenPurpose, resetTokenSpentSince } from '../../db/repositories/sessions.repo.js';
import { findUserById } from '../../db/repositories/users.repo.js';
import { type AuthService, EMAIL_TOKEN_TTL_MS } from '../../domain/auth/service.js';
import { digestMailStillWanted } from '../../domain/notifications/service.js';
import { unsubscribeHeaders } from '../../domain/notifications/unsubscribe.js';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { runTask } from '../../platform/queues/retry.js';
import { startTaskWorker } from '../../platform/queues/task-worker.js';
import {
  createTaskQueue,
  type EmailTemplate,
  parseTaskPayload,
  type TaskPayload,
  type TaskQueue,
  taskId,
  tasks,
} from '../../platform/queues/tasks.js';
import type { Redis } from '../../platform/redis.js';
import { templates } from './templates.js';
import type { MailTransport } from './transport.js';

export interface EmailWorkerDeps {
  readonly db: Kysely<Database>;
  readonly auth: AuthService;
  readonly transport: MailTransport;
  readonly clock: Clock;
  readonly log: Logger;
  readonly connection: Redis;
  readonly redisPrefix: string;
  readonly publicUrl: string;
  readonly mailFrom: string;
  /** Milliseconds before a task held by a dead worker is handed to another. */
  readonly lockMs: number;
  /** Milliseconds between sweeps for pending mails whose task is gone; default LOST_MAIL_SWEEP_MS. */
  readonly lostMailSweepMs?: number;
}

/**
 * The SMTP server refused this mail for good: a 5xx reply (RFC 5321 §4.2.1: do not repeat the same
 * request) to its recipient (nodemailer's EENVELOPE, e.g. `550 5.1.1 mailbox does not exist`) or to
 * the message itself (EMESSAGE). Everything else is retried: 4xx replies (try later, by
 * definition), network errors and timeouts, and a refusal of our own account that an operator
 * fixes in the configuration: the login (EAUTH) or the sender (a 5xx to MAIL FROM, i.e. MAIL_FROM).
 * Retried, a refused recipient would cost every attempt over hours for the same answer.
 */
export function isPermanentSmtpRefusal(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, responseCode, command } = error as {
    code?: unknown;
    responseCode?: unknown;
    command?: unknown;
  };
  return (
    (code === 'EENVELOPE' || code === 'EMESSAGE') &&
    typeof responseCode === 'number' &&
    responseCode >= 500 &&
    responseCode < 600 &&
    command !== 'MAIL FROM'
  );
}

/**
 * Why a stored digest must not be mailed any more, or undefined: its account is gone, locked, or
 * its address unverified (the rule `sendDigest` applies when it stores one), or its recipient
 * turned off the mail of every notification in it since (unsubscribed: `digestMailStillWanted`).
 */
async function digestRecipientRefusal(
  db: Kysely<Database>,
  userId: UserId | null,
  emailKey: string,
): Promise<string | undefined> {
  const user = userId === null ? undefined : await findUserById(db, userId);
  if (user === undefined) return 'the account no longer exists';
  if (user.locked_at !== null) return 'the account is locked';
  if (user.email_verified_at === null) return 'the address is not verified';
  if (!(await digestMailStillWanted(db, user.id, emailKey))) {
    return 'the recipient turned off the mail of every notification in it (unsubscribed)';
  }
  return undefined;
}

/**
 * Why a stored reset mail, not sent yet, must not be sent any more, or undefined: its account is
 * gone or locked (`forgotPassword` mails no locked account), or its password was changed or reset
 * since the mail was stored. That change spent every reset link of the account, this mail's among
 * them, and a mail held back by an SMTP outage would otherwise arrive with a working link — minted
 * afresh at its attempt (`renderWithToken`) — that was asked for before the change (review 31). A
 * request made after the change has a mail of its own (its key holds the new session version).
 */
async function resetMailRefusal(
  db: Kysely<Database>,
  userId: UserId,
  storedAt: Date,
): Promise<string | undefined> {
  const user = await findUserById(db, userId);
  if (user === undefined) return 'the account no longer exists';
  if (user.locked_at !== null) return 'the account is locked';
  if (await resetTokenSpentSince(db, userId, storedAt)) {
    return 'the password was changed or reset since the link was asked for';
  }
  return undefined;
}

/** A permanent refusal, already recorded on the mail (`failed`, with the server's reply). */
class MailRefusedError extends UnrecoverableError {}

/**
 * The server accepted the mail but the database did not take the record, and neither did Redis
 * take the note that it was sent: failed for good, so no retry sends it again (it stays `pending`;
 * a retry of the task records it: `sentByEarlierAttempt`). Exported for tests.
 */
export class MailSentUnrecordedError extends UnrecoverableError {
  constructor(
    message: string,
    readonly emailId: EmailId,
  ) {
    super(message);
  }
}

/**
 * The server accepted the mail and the database did not take the record yet, but Redis holds the
 * note that it was sent (`sentNoteKey`): retried like any outage, and every later run of this mail
 * (this task's retries, the task enqueued again, an operator's retry) only records it `sent`.
 */
class MailSentRecordPendingError extends Error {}

/**
 * How long the note "sent, not recorded" is kept: as long as a failed task is (tasks.ts), so no
 * retry of the task can come after the note is gone.
 */
const SENT_NOTE_TTL_S = 30 * 24 * 3600;

/** Redis key of the note that a mail was accepted by the server but not yet recorded `sent`. */
const sentNoteKey = (deps: Pick<EmailWorkerDeps, 'redisPrefix'>, emailId: EmailId) =>
  `${deps.redisPrefix}:emails:sent-unrecorded:${emailId}`;

type TokenTemplate = Exclude<EmailTemplate, 'notification-digest'>;

/** The purpose of the single-use token a template's link carries, if any. */
function tokenPurposeOf(template: string): EmailTokenPurpose | undefined {
  return template === 'verify-email'
    ? 'verify_email'
    : template === 'reset-password'
      ? 'reset_password'
      : undefined;
}

/** The mail of a template for a user, with a token issued now when its link needs one. */
async function renderWithToken(
  deps: EmailWorkerDeps,
  template: TokenTemplate,
  user: { readonly id: UserId; readonly username: string },
) {
  const purpose = tokenPurposeOf(template);
  const token = purpose === undefined ? undefined : await deps.auth.issueEmailToken(user.id, purpose);
  return templates[template]({ publicUrl: deps.publicUrl, token });
}

/**
 * One `emails.send` task; an AppError that no retry can change fails it for good (`runTask`).
 * `earlierFailures`: the stack traces BullMQ kept of the task's earlier failed attempts
 * (`job.stacktrace`, the last STACK_TRACES_KEPT; a retry by an operator or an enqueue keeps them).
 */
export function sendEmailTask(
  deps: EmailWorkerDeps,
  payload: TaskPayload<'emails.send'>,
  earlierFailures: readonly string[] = [],
): Promise<void> {
  const run = runTask(() => sendEmail(deps, payload, earlierFailures));
  if (!sentByEarlierAttempt(earlierFailures)) return run;
  return run.catch((error: unknown) => {
    // This run failed before it recorded the mail (the database still down): its own failure says
    // so too, as its message (the task's `failedReason`: the sweep and `recordFinalEmailFailure`
    // read it) and its trace, since BullMQ keeps only the last STACK_TRACES_KEPT traces and three
    // such failures pushed out the one that did; the next attempt then sent the mail again (review 33).
    if (error instanceof Error && !error.message.startsWith(SENT_UNRECORDED)) {
      const carried = `${SENT_UNRECORDED} (by an earlier attempt) then ${error.message}`;
      error.stack = `${carried}\n${error.stack ?? ''}`;
      error.message = carried;
    }
    throw error;
  });
}

/**
 * Whether an earlier attempt of this task had its mail accepted by the server and failed to record
 * it: its error (MailSentUnrecordedError, MailSentRecordPendingError) begins with SENT_UNRECORDED,
 * and so does the first line of its stack trace.
 */
const sentByEarlierAttempt = (earlierFailures: readonly string[]) =>
  earlierFailures.some((trace) => trace.split('\n', 1)[0]?.includes(SENT_UNRECORDED) === true);

async function sendEmail(
  deps: EmailWorkerDeps,
  payload: TaskPayload<'emails.send'>,
  earlierFailures: readonly string[],
): Promise<void> {
  const { db, log, transport } = deps;
  let email = await findEmailByKey(db, payload.key);
  if (email?.status === 'sent' || email?.status === 'outbox') {
    log.info({ key: payload.key }, 'email already delivered; nothing to do');
    return;
  }
  if (email !== undefined && (await deps.connection.exists(sentNoteKey(deps, email.id))) > 0) {
    // An earlier run had the mail accepted and could not record it: recorded now, never sent again.
    await recordSent(deps, email.id);
    await deps.connection.del(sentNoteKey(deps, email.id)).catch(() => undefined);
    log.warn(
      { emailId: email.id, template: email.template },
      'email sent by an earlier attempt; recorded now',
    );
    return;
  }
  if ((email?.status === 'pending' || email?.status === 'failed') && sentByEarlierAttempt(earlierFailures)) {
    // The server accepted it at an earlier attempt, and neither the database nor Redis took the
    // note (MailSentUnrecordedError, failed for good). The task itself remembers it: an operator's
    // retry from the console ("Retry", "Retry all" of the failed set) or an enqueue of its key sent
    // the mail a second time (review 32). Recorded now, never sent again.
    await recordSent(deps, email.id);
    log.warn(
      { emailId: email.id, template: email.template },
      'email sent by an earlier attempt (its task says so); recorded now',
    );
    return;
  }
  if (email !== undefined && email.user_id === null) {
    // Its account was deleted since it was stored (an operator's erasure sets user_id null), e.g.
    // while an SMTP outage kept it pending: its person is not mailed any more, whatever the template
    // (as `requeueLostEmails` settles such a mail). Settled, not retried (review 28).
    const refusal = 'the account no longer exists';
    await recordEmailOutcome(db, email.id, { status: 'failed', at: deps.clock.now(), error: refusal });
    log.info({ emailId: email.id, template: email.template }, `email not sent: ${refusal}`);
    return;
  }
  if (email === undefined) {
    if (payload.template === 'notification-digest') {
      // Stored by the notifications worker before this task exists; missing means it never will be.
      throw new UnrecoverableError('digest mail not stored');
    }
    const user = await findUserById(db, payload.userId);
    if (user === undefined) throw new UnrecoverableError('user no longer exists');
    email = await insertEmailOnce(db, {
      idempotencyKey: payload.key,
      template: payload.template,
      userId: user.id,
      to: user.email,
      ...(await renderWithToken(deps, payload.template, user)),
    });
  } else if ((email.status === 'pending' || email.status === 'failed') && email.user_id !== null) {
    // A link mail still unsent half its token's validity after it was stored (an SMTP outage: the
    // retries wait up to hours) would arrive with a link about to die, or dead already (a reset
    // link lives 30 minutes, the 11th retry comes 34 minutes after the first try), while the
    // requests of the same period mail nothing new. Such a mail gets a fresh token at each attempt,
    // so what arrives works for its whole stated time (the earlier token, never delivered, expires).
    // A `failed` one too: its task is retried by the next enqueue of its key (a reset requested
    // again within the period, a whole day for an unconfirmed address) or by an operator (review 28).
    const purpose = tokenPurposeOf(email.template);
    const age = deps.clock.now().getTime() - email.created_at.getTime();
    if (purpose !== undefined && age >= EMAIL_TOKEN_TTL_MS[purpose] / 2) {
      const user = await findUserById(db, email.user_id);
      if (user === undefined) throw new UnrecoverableError('user no longer exists');
      const fresh = await rewritePendingEmail(
        db,
        email.id,
        await renderWithToken(deps, email.template as TokenTemplate, user),
      );
      if (fresh === undefined) {
        log.info({ emailId: email.id }, 'email settled meanwhile; nothing to do');
        return;
      }
      email = fresh;
    }
  }
  if (email.template === 'reset-password' && email.user_id !== null) {
    // Checked at every attempt (an SMTP outage keeps a mail pending for hours), after a fresh link
    // was minted for it: a change committed before the check spent that link too and is seen here,
    // one committed after it spends the link being sent. Settled, not retried.
    const refusal = await resetMailRefusal(db, email.user_id, email.created_at);
    if (refusal !== undefined) {
      await recordEmailOutcome(db, email.id, { status: 'failed', at: deps.clock.now(), error: refusal });
      log.info({ emailId: email.id, template: email.template }, `email not sent: ${refusal}`);
      return;
    }
  }
  if (email.template === 'notification-digest') {
    // Checked again at every attempt, not only when the digest was stored: an SMTP outage keeps a
    // stored digest pending for hours, and an account locked meanwhile, or a recipient who
    // unsubscribed meanwhile, gets no mail (as `sendDigest` decides for a digest closed after the
    // change). Settled, not retried.
    const refusal = await digestRecipientRefusal(db, email.user_id, email.idempotency_key);
    if (refusal !== undefined) {
      await recordEmailOutcome(db, email.id, {
        status: 'failed',
        at: deps.clock.now(),
        error: refusal,
      });
      log.info({ emailId: email.id, template: email.template }, `email not sent: ${refusal}`);
      return;
    }
  }
  if (transport.kind === 'outbox') {
    await recordEmailOutcome(db, email.id, { status: 'outbox', at: deps.clock.now() });
    log.info({ emailId: email.id, template: email.template }, 'email stored in the outbox');
    return;
  }
  // A digest carries one-click unsubscribe headers (RFC 8058), made at send time: the stored mail
  // holds no headers (the link in its body is the same kind, issued when it was rendered).
  const headers =
    email.template === 'notification-digest' && email.user_id !== null
      ? await unsubscribeHeaders(db, deps.publicUrl, email.user_id, deps.clock.now())
      : undefined;
  try {
    await transport.send({
      from: deps.mailFrom,
      to: email.to_address,
      subject: email.subject,
      text: email.text_body ?? '',
      html: email.html_body ?? '',
      messageId: `<${email.id}@gigwire>`,
      ...(headers === undefined ? {} : { headers }),
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const permanent = isPermanentSmtpRefusal(error);
    await recordEmailOutcome(db, email.id, {
      status: permanent ? 'failed' : 'pending',
      at: deps.clock.now(),
      error: message,
    });
    if (!permanent) throw error;
    const refused = new MailRefusedError(message);
    refused.cause = error;
    throw refused;
  }
  await recordSent(deps, email.id);
  log.info({ emailId: email.id, template: email.template }, 'email sent');
}

/** How the failure of a task whose mail the server accepted but no store recorded begins. */
const SENT_UNRECORDED = 'email sent but not recorded:';

/** Tries of recording a delivered mail `sent`, 0.25, 0.5, 1 and 2 s apart, before giving up. */
const RECORD_SENT_TRIES = 5;

/**
 * Records a mail the server accepted as `sent` (clearing its body: it holds a live token). A
 * database error here must never lead to a second send: a later run would find the mail `pending`
 * and send it again. So it is tried again in place (a connection reset, a failover), and at the
 * first failure a note "sent" is written to Redis (`sentNoteKey`, kept as long as a failed task):
 * every later run of the mail finds it and only records the mail. With the note written, a record
 * still failing fails the task as retryable (an outage: its retries record it once the database is
 * back); without it (Redis failing too) the task ends for good and the mail stays `pending`, not
 * sent again by any retry of the task. What is left: a worker killed between the server's
 * acceptance and this record (receivers drop that duplicate by its Message-ID).
 */
async function recordSent(deps: EmailWorkerDeps, emailId: EmailId): Promise<void> {
  let noted = false;
  for (let attempt = 1; ; attempt += 1) {
    try {
      await recordEmailOutcome(deps.db, emailId, { status: 'sent', at: deps.clock.now(), clearBody: true });
      return;
    } catch (error) {
      if (!noted) {
        noted = await deps.connection
          .set(sentNoteKey(deps, emailId), '1', 'EX', SENT_NOTE_TTL_S)
          .then(() => true)
          .catch((failure: unknown) => {
            deps.log.error({ err: failure, emailId }, 'email sent; could not note it in Redis either');
            return false;
          });
      }
      if (attempt >= RECORD_SENT_TRIES) {
        const reason = `${SENT_UNRECORDED} ${error instanceof Error ? error.message : String(error)}`;
        const unrecorded = noted
          ? new MailSentRecordPendingError(reason)
          : new MailSentUnrecordedError(reason, emailId);
        unrecorded.cause = error;
        throw unrecorded;
      }
      deps.log.warn({ err: error, emailId, attempt }, 'email sent; recording it failed, trying again');
      await sleep(250 * 2 ** (attempt - 1));
    }
  }
}

/** How long a mail may stay `pending` before the sweep looks for its task (`requeueLostEmails`). */
export const LOST_MAIL_AFTER_MS = 10 * 60_000;
/** How often an email worker looks for pending mails whose task is gone. */
export const LOST_MAIL_SWEEP_MS = 5 * 60_000;
/** Pending mails read per page of a sweep. */
const LOST_MAIL_PAGE = 500;

/**
 * Queues the `emails.send` task again for every mail still `pending` LOST_MAIL_AFTER_MS after it was
 * stored whose task is gone: Redis restarted without its data or failed over to a replica behind,
 * an operator removed the task, the failed set was trimmed (`removeOnFail`), or a worker died
 * between storing a digest mail and enqueuing its task. Before, such a mail stayed pending for good
 * (and was never pruned: retention keeps pending mail). The task id is the mail's key, as every
 * producer enqueues it, so a sweep adds nothing while the task exists (waiting, delayed for a retry,
 * running: an SMTP outage keeps mails pending for hours with their tasks alive) and two workers
 * sweeping at once add one task. A task kept as failed while its mail is still pending (the record
 * `failed` itself failed, e.g. the database was down too) is retried with a fresh budget, as an
 * enqueue does (`createTaskQueue`), except one that failed after the server accepted the mail and
 * could not record it (`SENT_UNRECORDED`): that mail is recorded `sent` here, never sent again.
 * The task reads the mail's row before it sends, so a mail settled meanwhile is not sent.
 * Returns how many tasks it queued.
 */
export async function requeueLostEmails(
  deps: Pick<EmailWorkerDeps, 'db' | 'clock' | 'log' | 'connection' | 'redisPrefix'>,
  taskQueue: Pick<TaskQueue, 'enqueue' | 'queues'>,
): Promise<number> {
  const definition = tasks['emails.send'];
  const queue = taskQueue.queues().find((candidate) => candidate.name === definition.queue);
  if (queue === undefined) return 0;
  const before = new Date(deps.clock.now().getTime() - LOST_MAIL_AFTER_MS);
  let requeued = 0;
  let oldest: Date | undefined;
  let after: { createdAt: Date; id: EmailId } | undefined;
  for (;;) {
    const page = await pendingEmailsBefore(deps.db, before, after, LOST_MAIL_PAGE);
    for (const email of page) {
      const state = await queue.getJobState(taskId(email.idempotency_key));
      if (state !== 'unknown' && state !== 'failed') continue;
      if (state === 'failed') {
        const job = await queue.getJob(taskId(email.idempotency_key));
        if (job?.failedReason?.startsWith(SENT_UNRECORDED) === true) {
          // An attempt had the server accept the mail and no store took the record: sent.
          // Recorded here, not by a retry of the task (which reads that from its kept stack traces,
          // but only from the last STACK_TRACES_KEPT: a few failed runs before its record, the
          // database still flapping, and a later one sent it again). Skipped, it stayed `pending`
          // for good, swept every time (review 33).
          await recordEmailOutcome(deps.db, email.id, {
            status: 'sent',
            at: deps.clock.now(),
            clearBody: true,
          });
          await deps.connection.del(sentNoteKey(deps, email.id)).catch(() => undefined);
          deps.log.warn(
            { emailId: email.id, template: email.template },
            'email sent by an attempt of its failed task; recorded now',
          );
          continue;
        }
      }
      const payload = definition.payload.safeParse({
        template: email.template,
        userId: email.user_id,
        key: email.idempotency_key,
      });
      if (!payload.success) {
        // Its account was deleted (user_id set null), or the row fits no task: no task can take
        // it; settled, not swept again.
        await recordEmailOutcome(deps.db, email.id, {
          status: 'failed',
          at: deps.clock.now(),
          error:
            email.user_id === null
              ? 'the account no longer exists'
              : `no task can send it: ${payload.error.issues.map((issue) => issue.path.join('.')).join(', ')}`,
        });
        continue;
      }
      await taskQueue.enqueue('emails.send', payload.data, email.idempotency_key);
      requeued += 1;
      oldest ??= email.created_at;
    }
    const last = page.at(-1);
    if (page.length < LOST_MAIL_PAGE || last === undefined) break;
    after = { createdAt: last.created_at, id: last.id };
  }
  if (requeued > 0) {
    deps.log.warn(
      { emails: requeued, oldestCreatedAt: oldest?.toISOString() },
      'pending emails whose task was gone: their tasks queued again',
    );
  }
  return requeued;
}

/**
 * A task out of attempts or failed for good: its mail will not go out by itself, so it is recorded
 * `failed`, unless it was delivered meanwhile (`recordEmailOutcome` leaves a `sent` mail sent: a run
 * of the same key, enqueued again or retried by an operator, may have sent it since). Never rejects:
 * often the same outage that failed the task (the database down) makes this fail too, and that must
 * cost a log line, never an unhandled rejection (which stops the node).
 */
export async function recordFinalEmailFailure(
  deps: Pick<EmailWorkerDeps, 'db' | 'clock' | 'log'> &
    Partial<Pick<EmailWorkerDeps, 'connection' | 'redisPrefix'>>,
  job: { readonly id?: string | undefined; readonly data: unknown },
  error: Error,
): Promise<void> {
  // A refusal is recorded by the task itself, with the server's reply.
  if (error instanceof MailRefusedError) return;
  if (error instanceof MailSentRecordPendingError) {
    // Sent, and noted in Redis: recording it `failed` would be false. The next run of the
    // task (enqueued again, or an operator's retry) records it `sent`.
    deps.log.error(
      { err: error, taskId: job.id },
      'email sent but not recorded before the task ran out of attempts: a retry records it, never sends it again',
    );
    return;
  }
  if (error instanceof MailSentUnrecordedError) {
    // BullMQ has just written the failure to Redis, and the database may be back: recorded or
    // noted now, the mail is not sent again by a task of its key that no longer remembers it — the
    // console's "Clean" of the failed set, then the lost-mail sweep, sent it twice (review 32).
    const recorded = await recordEmailOutcome(deps.db, error.emailId, {
      status: 'sent',
      at: deps.clock.now(),
      clearBody: true,
    }).then(
      () => 'recorded sent now',
      () =>
        deps.connection === undefined || deps.redisPrefix === undefined
          ? undefined
          : deps.connection
              .set(sentNoteKey({ redisPrefix: deps.redisPrefix }, error.emailId), '1', 'EX', SENT_NOTE_TTL_S)
              .then(
                () => 'noted in Redis: a later run of its key records it',
                () => undefined,
              ),
    );
    if (recorded !== undefined) {
      deps.log.warn({ err: error, taskId: job.id, emailId: error.emailId }, `email sent; ${recorded}`);
      return;
    }
    deps.log.error(
      { err: error, taskId: job.id },
      'email sent but not recorded: it stays pending and is not sent again by this task',
    );
    return;
  }
  if (error.message.startsWith(SENT_UNRECORDED)) {
    // A retry of a task whose earlier attempt had the mail accepted, failed before it recorded it
    // (`sendEmailTask`): sent, so never recorded `failed` (a `failed` mail is sent again by the next
    // enqueue of its key). It stays `pending`; the lost-mail sweep reads this reason and records it.
    deps.log.error(
      { err: error, taskId: job.id },
      'email sent by an earlier attempt, not recorded before the task ran out of attempts: the lost-mail sweep records it',
    );
    return;
  }
  const key = tasks['emails.send'].payload.safeParse(job.data);
  if (!key.success) return;
  try {
    const email = await findEmailByKey(deps.db, key.data.key);
    if (email === undefined) return;
    await recordEmailOutcome(deps.db, email.id, {
      status: 'failed',
      at: deps.clock.now(),
      error: error.message,
    });
  } catch (failure) {
    deps.log.error({ err: failure, taskId: job.id }, 'could not record a failed email');
  }
}

export function startEmailWorker(deps: EmailWorkerDeps): Worker {
  const definition = tasks['emails.send'];
  const worker = startTaskWorker(
    definition.queue,
    async (job) => sendEmailTask(deps, parseTaskPayload('emails.send', job.data), job.stacktrace ?? []),
    {
      ...deps,
      concurrency: 4,
      what: 'email',
      onFinalFailure: (job, error) => {
        void recordFinalEmailFailure(deps, job, error);
      },
    },
  );
  // Pending mails whose task was lost are queued again (`requeueLostEmails`); a failed sweep (the
  // database or Redis down) is a log line, tried at the next one, and one still running is not
  // joined by another.
  const producer = createTaskQueue(deps.connection, deps.redisPrefix);
  let sweeping = false;
  const sweep = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    requeueLostEmails(deps, producer)
      .catch((error: unknown) => deps.log.warn({ err: error }, 'lost email sweep failed; next sweep retries'))
      .finally(() => {
        sweeping = false;
      });
  }, deps.lostMailSweepMs ?? LOST_MAIL_SWEEP_MS);
  sweep.unref();
  worker.once('closing', () => {
    clearInterval(sweep);
    void producer.close().catch(() => undefined);
  });
  return worker;
}
