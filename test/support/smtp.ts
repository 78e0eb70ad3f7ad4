/**
 * A real SMTP server (the smtp-server package) on a free loopback port that keeps every accepted
 * message. `stall(true)` makes it read each message's DATA and then never answer, as a server that
 * hangs mid-send, so a test can kill the sender at that moment. `refuse(address, reply)` answers
 * RCPT TO for that recipient with the given reply (a permanent 550 or a temporary 451).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  readonly to: readonly string[];
  readonly messageId: string;
  readonly subject: string;
  /** Raw message with quoted-printable soft breaks removed. */
  readonly body: string;
}

export interface SmtpServerOptions {
  /** Address to listen on; default 127.0.0.1 (loopback, where the mail transport needs no TLS). */
  readonly host?: string;
}

/** An SMTP reply: `code` 5xx is permanent, 4xx temporary. */
export interface SmtpReply {
  readonly code: number;
  readonly message: string;
}

export interface TestSmtpServer {
  readonly url: string;
  readonly accepted: () => readonly ReceivedMail[];
  /** Resolves once a message's DATA has been read while stalling. */
  readonly stalledOnce: () => Promise<void>;
  readonly stall: (on: boolean) => void;
  /** From now on, answers RCPT TO for `address` with `reply`; `undefined` accepts it again. */
  readonly refuse: (address: string, reply: SmtpReply | undefined) => void;
  /** Every refused RCPT TO so far, in order (one per attempt). */
  readonly refused: () => readonly string[];
  readonly waitFor: (match: (mail: ReceivedMail) => boolean, timeoutMs?: number) => Promise<ReceivedMail>;
  readonly close: () => Promise<void>;
}

const header = (raw: string, name: string) =>
  new RegExp(`^${name}:\\s*(.+)$`, 'im').exec(raw)?.[1]?.trim() ?? '';

export async function startSmtpServer(options: SmtpServerOptions = {}): Promise<TestSmtpServer> {
  const host = options.host ?? '127.0.0.1';
  const accepted: ReceivedMail[] = [];
  const refusals = new Map<string, SmtpReply>();
  const refused: string[] = [];
  let stalling = false;
  let onStalled: (() => void) | undefined;
  const stalled = new Promise<void>((resolve) => {
    onStalled = resolve;
  });
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onRcptTo(address, _session, callback) {
      const reply = refusals.get(address.address.toLowerCase());
      if (reply === undefined) return callback();
      refused.push(address.address);
      callback(Object.assign(new Error(reply.message), { responseCode: reply.code }));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (stalling) {
          onStalled?.();
          return; // never answer: the client waits until it is killed
        }
        const raw = Buffer.concat(chunks).toString('utf8');
        const body = raw.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
        accepted.push({
          to: session.envelope.rcptTo.map((r) => r.address),
          messageId: header(raw, 'Message-ID'),
          subject: header(raw, 'Subject'),
          body,
        });
        callback();
      });
    },
  });
  // A sender killed mid-conversation (the crash tests SIGKILL a worker inside DATA) resets its
  // connection: smtp-server reports that as an 'error' event, which unheard would throw.
  server.on('error', () => undefined);
  const port = await new Promise<number>((resolve) => {
    const listener = server.listen(0, host, () => {
      const address = listener.address();
      resolve(typeof address === 'object' && address !== null ? address.port : 0);
    });
  });
  return {
    url: `smtp://${host.includes(':') ? `[${host}]` : host}:${port}`,
    accepted: () => accepted,
    stalledOnce: () => stalled,
    stall: (on) => {
      stalling = on;
    },
    refuse: (address, reply) => {
      if (reply === undefined) refusals.delete(address.toLowerCase());
      else refusals.set(address.toLowerCase(), reply);
    },
    refused: () => refused,
    waitFor: async (match, timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const found = accepted.find(match);
        if (found !== undefined) return found;
        await sleep(50);
      }
      throw new Error(
        `no matching mail within ${timeoutMs} ms; got ${JSON.stringify(accepted.map((m) => m.subject))}`,
      );
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The token after `label:` in a mail body (the text part carries it in clear). */
export function tokenFrom(mail: ReceivedMail, label: 'Verification token' | 'Reset token'): string {
  const token = new RegExp(`${label}: ([A-Za-z0-9_-]+)`).exec(mail.body)?.[1];
  if (token === undefined) throw new Error(`no ${label} in mail ${mail.subject}`);
  return token;
}

/**
 * Verifies a registered user's address the way its owner does: the token of the verification mail
 * this server received, posted to /v1/auth/verify-email. Notification mail goes to verified
 * addresses only.
 */
export async function verifyByMail(
  smtp: TestSmtpServer,
  api: { readonly post: (path: string, body: unknown) => Promise<{ readonly status: number }> },
  user: { readonly email: string },
): Promise<void> {
  const mail = await smtp.waitFor(
    (m) => m.to.includes(user.email) && m.subject === 'Confirm your email address',
  );
  const verified = await api.post('/v1/auth/verify-email', { token: tokenFrom(mail, 'Verification token') });
  if (verified.status !== 204) throw new Error(`verifying ${user.email} failed: ${verified.status}`);
}
