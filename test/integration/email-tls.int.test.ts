/**
 * STARTTLS cannot be stripped: an SMTP server on another machine that does not offer STARTTLS (as a
 * man in the middle that removed the offer, or a relay that lost its certificate) gets neither the
 * mail nor the password, which an smtp: URL would otherwise send in clear. Real SMTP server
 * (without STARTTLS) on this machine's non-loopback address; loopback is allowed plaintext.
 */
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMailTransport } from '../../src/workers/emails/transport.js';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.js';

const outside = Object.values(networkInterfaces())
  .flat()
  .find((address) => address !== undefined && address.family === 'IPv4' && !address.internal)?.address;

const mail = (to: string) => ({
  from: 'gigwire <no-reply@gigwire.test>',
  to,
  subject: 'Reset your gigwire password',
  text: 'Reset token: secret',
  html: '<p>Reset token: secret</p>',
  messageId: `<${crypto.randomUUID()}@gigwire>`,
});

describe.skipIf(outside === undefined)('SMTP without STARTTLS on another address', () => {
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await startSmtpServer({ host: outside });
  });
  afterAll(() => smtp.close());

  it('refuses to send a mail in clear to a non-loopback server that offers no STARTTLS', async () => {
    const transport = createMailTransport(smtp.url.replace('smtp://', 'smtp://user:pass@'));
    try {
      await expect(transport.send(mail('victim@example.test'))).rejects.toThrow(/STARTTLS/);
    } finally {
      transport.close();
    }
    expect(smtp.accepted()).toEqual([]);
  });

  it('sends in clear when SMTP_URL says requireTLS=false (a development catcher such as mailpit)', async () => {
    const transport = createMailTransport(`${smtp.url}?requireTLS=false`);
    try {
      await transport.send(mail('dev@example.test'));
    } finally {
      transport.close();
    }
    expect(smtp.accepted().filter((m) => m.to.includes('dev@example.test'))).toHaveLength(1);
  });
});
