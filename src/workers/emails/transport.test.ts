import nodemailer from 'nodemailer';
import { describe, expect, it } from 'vitest';
import { smtpTransportOptions } from './transport.js';

/** The options nodemailer ends up with (URL query merged over ours); builds the transport, no I/O. */
function effective(smtpUrl: string): Record<string, unknown> {
  const transporter = nodemailer.createTransport(smtpTransportOptions(smtpUrl));
  const options = (transporter.transporter as unknown as { options: Record<string, unknown> }).options;
  transporter.close();
  return options;
}

describe('SMTP transport options', () => {
  it('requires STARTTLS on an smtp: URL to another machine, so the password and tokens never go in clear', () => {
    expect(effective('smtp://user:pass@mail.example.com:587')).toMatchObject({
      host: 'mail.example.com',
      secure: false,
      requireTLS: true,
    });
    expect(effective('smtp://10.0.0.5:25').requireTLS).toBe(true);
    // nodemailer ignores `secure` in an smtp: URL (the scheme decides), so it asks for no TLS.
    expect(effective('smtp://mail.example.com:587?secure=true')).toMatchObject({
      secure: false,
      requireTLS: true,
    });
  });

  it('leaves loopback, smtps: and a policy stated in the URL alone', () => {
    for (const url of [
      'smtp://localhost:1025',
      'smtp://127.0.0.1:25',
      'smtp://127.8.9.10:25',
      'smtp://[::1]:25',
    ]) {
      expect(effective(url).requireTLS, url).toBeUndefined();
    }
    expect(effective('smtps://user:pass@mail.example.com:465')).toMatchObject({ secure: true });
    expect(effective('smtps://user:pass@mail.example.com:465').requireTLS).toBeUndefined();
    // compose's mailpit: no TLS at all, said so in the URL.
    expect(effective('smtp://mailpit:1025?requireTLS=false').requireTLS).toBe(false);
    expect(effective('smtp://mail.example.com:25?ignoreTLS=true')).toMatchObject({ ignoreTLS: true });
    expect(effective('smtp://mail.example.com:25?ignoreTLS=true').requireTLS).toBeUndefined();
  });

  it('waits the 10 minutes RFC 5321 gives the reply to the end of DATA, so a slow server is not sent a mail twice', () => {
    expect(effective('smtp://mail.example.com:587')).toMatchObject({
      socketTimeout: 600_000,
      connectionTimeout: 15_000,
      greetingTimeout: 15_000,
    });
  });
});
