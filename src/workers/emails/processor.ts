/**
 * The `emails` queue worker. Idempotent per mail key: the first run renders the mail (issuing its
 * single-use token) and stores it as `pending`; every run sends a `pending` mail and records the
 * outcome, and a mail already `sent` (or kept in the outbox) is never sent again. A worker killed
 * mid-send leaves the mail `pending`; the retry sends the same stored mail (same token, same
 * Message-ID). Only a crash in the instant between the SMTP server's acceptance and our update can
 * produce a duplicate, which receivers can drop by Message-ID. A mail the server refuses for good
 * (a 5xx reply to a recipient or to the message) is recorded `failed` and not tried again.
 */
import { UnrecoverableError, type Worker } from 'bullmq';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database.js';
import { findEmailByKey, insertEmailOnce, recordEmailOutcome } from '../../db/repositories/outbox.repo.js';
import { findUserById } from '../../db/repositories/users.repo.js';
import type { AuthService } from '../../domain/auth/service.js';
import { unsubscribeHeaders } from '../../domain/notifications/unsubscribe.js';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { runTask } from '../../platform/queues/retry.js';
import { startTaskWorker } from '../../platform/queues/task-worker.js';
import { parseTaskPayload, type TaskPayload, tasks } from '../../platform/queues/tasks.js';
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

/** A permanent refusal, already recorded on the mail (`failed`, with the server's reply). */
class MailRefusedError extends UnrecoverableError {}

/** One `emails.send` task; an AppError that no retry can change fails it for good (`runTask`). */
export function sendEmailTask(deps: EmailWorkerDeps, payload: TaskPayload<'emails.send'>): Promise<void> {
  return runTask(() => sendEmail(deps, payload));
}

async function sendEmail(deps: EmailWorkerDeps, payload: TaskPayload<'emails.send'>): Promise<void> {
  const { db, log, transport } = deps;
  let email = await findEmailByKey(db, payload.key);
  if (email?.status === 'sent' || email?.status === 'outbox') {
    log.info({ key: payload.key }, 'email already delivered; nothing to do');
    return;
  }
  if (email === undefined) {
    if (payload.template === 'notification-digest') {
      // Stored by the notifications worker before this task exists; missing means it never will be.
      throw new UnrecoverableError('digest mail not stored');
    }
    const user = await findUserById(db, payload.userId);
    if (user === undefined) throw new UnrecoverableError('user no longer exists');
    const purpose =
      payload.template === 'verify-email'
        ? 'verify_email'
        : payload.template === 'reset-password'
          ? 'reset_password'
          : undefined;
    const token = purpose === undefined ? undefined : await deps.auth.issueEmailToken(user.id, purpose);
    const rendered = templates[payload.template]({
      publicUrl: deps.publicUrl,
      username: user.username,
      token,
    });
    email = await insertEmailOnce(db, {
      idempotencyKey: payload.key,
      template: payload.template,
      userId: user.id,
      to: user.email,
      ...rendered,
    });
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
  // The body holds a live token: once delivered it has no reason to stay in the database.
  await recordEmailOutcome(db, email.id, { status: 'sent', at: deps.clock.now(), clearBody: true });
  log.info({ emailId: email.id, template: email.template }, 'email sent');
}

export function startEmailWorker(deps: EmailWorkerDeps): Worker {
  const definition = tasks['emails.send'];
  return startTaskWorker(
    definition.queue,
    async (job) => sendEmailTask(deps, parseTaskPayload('emails.send', job.data)),
    {
      ...deps,
      concurrency: 4,
      what: 'email',
      onFinalFailure: (job, error) => {
        // Out of attempts or failed for good: either way the mail will not go out by itself.
        // A refusal is recorded by the task itself, with the server's reply.
        if (error instanceof MailRefusedError) return;
        const key = definition.payload.safeParse(job.data);
        if (!key.success) return;
        // Often the same outage that failed the task (the database down): that must cost a log
        // line, never an unhandled rejection (which stops the node).
        void findEmailByKey(deps.db, key.data.key)
          .then((email) =>
            email === undefined
              ? undefined
              : recordEmailOutcome(deps.db, email.id, {
                  status: 'failed',
                  at: deps.clock.now(),
                  error: error.message,
                }),
          )
          .catch((failure: unknown) =>
            deps.log.error({ err: failure, taskId: job.id }, 'could not record a failed email'),
          );
      },
    },
  );
}
