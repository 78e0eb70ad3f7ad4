/**
 * Where mail goes: an SMTP server through nodemailer when SMTP_URL is set; otherwise nowhere
 * outside the database (the `emails` table is the outbox an operator reads over REST).
 */
import nodemailer from 'nodemailer';

export interface OutgoingMail {
  readonly from: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  /** Stable per mail, so a receiver can drop the rare duplicate of a crash-and-retry. */
  readonly messageId: string;
}

export interface MailTransport {
  readonly kind: 'smtp' | 'outbox';
  readonly send: (mail: OutgoingMail) => Promise<void>;
  readonly close: () => void;
}

export function createMailTransport(smtpUrl: string | undefined): MailTransport {
  if (smtpUrl === undefined) {
    return { kind: 'outbox', send: async () => undefined, close: () => undefined };
  }
  // nodemailer waits 2 min for a connection and 10 min on a silent socket by default: a server
  // that black-holes packets would hold the worker's email slots that long per mail. These fail
  // the attempt sooner (the task retries with backoff); query parameters of SMTP_URL override them.
  const transporter = nodemailer.createTransport({
    url: smtpUrl,
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    socketTimeout: 60_000,
  });
  return {
    kind: 'smtp',
    send: async (mail) => {
      await transporter.sendMail({ ...mail, messageId: mail.messageId });
    },
    close: () => transporter.close(),
  };
}
