/**
 * Where mail goes: an SMTP server through nodemailer when SMTP_URL is set; otherwise nowhere
 * outside the database (the `emails` table is the outbox an operator reads over REST).
 */
import { isIP } from 'node:net';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';

export interface OutgoingMail {
  readonly from: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  /** Stable per mail, so a receiver can drop the rare duplicate of a crash-and-retry. */
  readonly messageId: string;
  /** Extra header fields, passed through as given (e.g. List-Unsubscribe of a digest). */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface MailTransport {
  readonly kind: 'smtp' | 'outbox';
  readonly send: (mail: OutgoingMail) => Promise<void>;
  readonly close: () => void;
}

/** Query parameters of SMTP_URL that state the STARTTLS policy themselves (nodemailer reads them). */
const TLS_POLICY_PARAMETERS = ['requireTLS', 'ignoreTLS', 'opportunisticTLS'] as const;

/** localhost, 127.0.0.0/8 or ::1: a connection that never leaves the machine. */
function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/**
 * The nodemailer options for SMTP_URL. Query parameters of the URL override every option here
 * (nodemailer merges them last).
 */
export function smtpTransportOptions(smtpUrl: string): SMTPTransport.Options {
  const url = new URL(smtpUrl);
  // MUST: with `smtp:` nodemailer upgrades with STARTTLS only when the server offers it, so anyone
  // on the path (or a relay that lost its certificate) can strip the offer and read the password
  // and the mails, which carry password-reset and verification tokens. Required, then, except on
  // loopback (nothing on the path) or when SMTP_URL states its own policy (`?requireTLS=false` for
  // a development catcher such as mailpit). `?secure=` does not count: nodemailer ignores it in
  // an smtp: or smtps: URL (the scheme decides). smtps: is TLS from the first byte.
  const requireTLS =
    url.protocol === 'smtp:' &&
    !isLoopbackHost(url.hostname) &&
    !TLS_POLICY_PARAMETERS.some((name) => url.searchParams.has(name));
  return {
    url: smtpUrl,
    ...(requireTLS ? { requireTLS: true } : {}),
    // nodemailer waits 2 min for a connection: a server that black-holes packets would hold the
    // worker's email slots that long per mail. These fail the attempt sooner (the task retries
    // with backoff).
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    // MUST stay at 10 min, the wait RFC 5321 §4.5.3.2.6 gives the reply to the end of DATA: a
    // server may take that long to accept a message it then delivers. Giving up sooner fails the
    // attempt although the server queued the mail, and the retry delivers it a second time.
    // BullMQ renews the lock of a running task, so a long send is not taken for a stalled task.
    socketTimeout: 600_000,
  };
}

export function createMailTransport(smtpUrl: string | undefined): MailTransport {
  if (smtpUrl === undefined) {
    return { kind: 'outbox', send: async () => undefined, close: () => undefined };
  }
  const transporter = nodemailer.createTransport(smtpTransportOptions(smtpUrl));
  return {
    kind: 'smtp',
    send: async (mail) => {
      const { headers, ...rest } = mail;
      await transporter.sendMail({
        ...rest,
        messageId: mail.messageId,
        ...(headers === undefined ? {} : { headers: { ...headers } }),
      });
    },
    close: () => transporter.close(),
  };
}
