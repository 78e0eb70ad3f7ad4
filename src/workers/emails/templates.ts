/**
 * Email templates, each as plain text and HTML. Links are built from PUBLIC_URL, never from a
 * request's Host header (which an attacker controls). Values are HTML-escaped.
 *
 * No username in them: these mails go to addresses nobody has confirmed yet (welcome, verify-email;
 * reset-password and registration-attempt to an account's address, which its registrant may have
 * typed for someone else), and a username is the registrant's text — `claim-prize.example` is a
 * legal one, and mail clients turn it into a link. Anyone could have sent strangers gigwire mail
 * carrying a link of their choosing (review 25).
 */
import type { EmailTemplate } from '../../platform/queues/tasks.js';

export interface RenderedEmail {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

export interface TemplateInput {
  readonly publicUrl: string;
  /** The single-use token for verify-email and reset-password. */
  readonly token: string | undefined;
}

const escapeHtml = (value: string) =>
  value.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

function layout(
  title: string,
  paragraphs: readonly string[],
  link?: { href: string; label: string },
): string {
  const body = paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join('\n');
  const button = link
    ? `<p><a href="${escapeHtml(link.href)}" style="background:#1f6feb;color:#fff;padding:10px 16px;border-radius:6px;text-decoration:none">${escapeHtml(link.label)}</a></p>\n<p style="color:#666;font-size:12px">Or open ${escapeHtml(link.href)}</p>`
    : '';
  return `<!doctype html>\n<html><body style="font-family:system-ui,sans-serif;max-width:560px;margin:auto">\n<h2>${escapeHtml(title)}</h2>\n${body}\n${button}\n<p style="color:#666;font-size:12px">gigwire</p>\n</body></html>\n`;
}

type Renderer = (input: TemplateInput) => RenderedEmail;

const requireToken = (input: TemplateInput) => {
  if (input.token === undefined) throw new Error('template needs a token');
  return encodeURIComponent(input.token);
};

/**
 * Exhaustive: a new template does not compile until it can be rendered. The notification digest is
 * the exception: it is rendered from stored notifications (`digest-template.ts`) and stored before
 * its task is enqueued.
 */
export const templates: Readonly<Record<Exclude<EmailTemplate, 'notification-digest'>, Renderer>> = {
  welcome: (input) => {
    const lines = ['Hello,', 'welcome to gigwire. Post a job or bid on one whenever you are ready.'];
    return {
      subject: 'Welcome to gigwire',
      text: `${lines.join('\n\n')}\n\n${input.publicUrl}\n`,
      html: layout('Welcome to gigwire', lines, { href: input.publicUrl, label: 'Open gigwire' }),
    };
  },
  'verify-email': (input) => {
    const token = requireToken(input);
    const href = `${input.publicUrl}/verify-email?token=${token}`;
    const lines = ['Hello,', 'please confirm your email address. The link is valid for 24 hours.'];
    return {
      subject: 'Confirm your email address',
      text: `${lines.join('\n\n')}\n\n${href}\n\nVerification token: ${input.token}\n`,
      html: layout('Confirm your email address', lines, { href, label: 'Confirm email' }),
    };
  },
  'registration-attempt': (input) => {
    const href = `${input.publicUrl}/forgot-password`;
    const lines = [
      'Hello,',
      'someone tried to register a new gigwire account with your email address. Your address already has an account, so no second one was created.',
      'If it was you, log in instead; if you forgot your password, you can reset it. If it was not you, ignore this mail: nothing changed.',
    ];
    return {
      subject: 'Someone tried to register with your address',
      text: `${lines.join('\n\n')}\n\n${href}\n`,
      html: layout('Someone tried to register with your address', lines, {
        href,
        label: 'Reset your password',
      }),
    };
  },
  'reset-password': (input) => {
    const token = requireToken(input);
    const href = `${input.publicUrl}/reset-password?token=${token}`;
    const lines = [
      'Hello,',
      'someone asked to reset your gigwire password. The link works once, for 30 minutes.',
      'If it was not you, ignore this mail: your password stays as it is.',
    ];
    return {
      subject: 'Reset your gigwire password',
      text: `${lines.join('\n\n')}\n\n${href}\n\nReset token: ${input.token}\n`,
      html: layout('Reset your password', lines, { href, label: 'Choose a new password' }),
    };
  },
};
