/**
 * The caller's notifications (issue 13): list (newest first, `unread=true` for unread only), unread
 * count, mark read ({ids}, {all: true, upTo} or {all: true}; the user's sockets get a
 * `notifications.read` push), and per-type preferences (in-app on/off, email never | offline |
 * always).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { Problem } from '../../../protocol/src/rest/common.js';
import {
  NotificationPage,
  NotificationPreferences,
  NotificationsQuery,
  ReadNotificationsRequest,
  ReadNotificationsResult,
  UnreadCount,
  UnsubscribeQuery,
  UnsubscribeResult,
  UpdateNotificationPreferences,
} from '../../../protocol/src/rest/notifications.js';
import type { NotificationsApi } from '../../domain/notifications/service.js';
import { UNSUBSCRIBE_PATH } from '../../domain/notifications/unsubscribe.js';
import { isAppError } from '../../platform/errors.js';
import { principalOf } from '../plugins/auth.js';
import { statusByCode } from '../problem.js';

const errors = { 400: Problem, 401: Problem, 403: Problem };
const tags = ['notifications'];

export function registerNotificationRoutes(app: FastifyInstance, notifications: NotificationsApi): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/v1/notifications', {
    config: { auth: 'user' },
    schema: {
      operationId: 'listNotifications',
      tags,
      summary: 'Your notifications, newest first (unread=true: only unread ones)',
      querystring: NotificationsQuery,
      response: { 200: NotificationPage, ...errors },
    },
    handler: async (request) =>
      notifications.list(principalOf(request).userId, {
        limit: request.query.limit,
        ...(request.query.unread === undefined ? {} : { unread: request.query.unread }),
        ...(request.query.cursor === undefined ? {} : { cursor: request.query.cursor }),
      }),
  });

  r.get('/v1/notifications/unread-count', {
    config: { auth: 'user' },
    schema: {
      operationId: 'countUnreadNotifications',
      tags,
      summary: 'How many of your notifications are unread (the badge)',
      response: { 200: UnreadCount, ...errors },
    },
    handler: async (request) => ({ count: await notifications.unreadCount(principalOf(request).userId) }),
  });

  r.post('/v1/notifications/read', {
    config: { auth: 'user' },
    schema: {
      operationId: 'readNotifications',
      tags,
      summary:
        'Mark notifications read: {ids}; {all: true, upTo} (upTo, the newest you listed, and older ones: newer ones stay unread); or {all: true} (everything, including what you have not seen). Your open sockets are told',
      body: ReadNotificationsRequest,
      response: { 200: ReadNotificationsResult, ...errors },
    },
    handler: async (request) => notifications.read(principalOf(request).userId, request.body),
  });

  // One-click unsubscribe (RFC 8058), the link of every digest mail. The token is the credential
  // (no login); GET changes nothing (link scanners fetch it), POST does.
  void app.register(async (scope) => {
    // RFC 8058's POST is a form (`List-Unsubscribe=One-Click`, urlencoded or multipart): in this
    // scope only, a form body is accepted and ignored (the token in the URL is all that counts).
    scope.addContentTypeParser(
      ['application/x-www-form-urlencoded', 'multipart/form-data'],
      { parseAs: 'string', bodyLimit: 1024 },
      (_request, _body, done) => done(null, undefined),
    );
    scope.addHook('onRequest', async (_request, reply) => {
      reply.header('cache-control', 'no-store');
    });
    // A person opening a link that no longer works (expired, forged, cut short by a mail client)
    // gets a page saying so, not problem+json; API clients, and any other error, get the app's
    // problem+json (an error thrown here goes to the parent handler, plugins/errors.ts).
    scope.setErrorHandler((error: FastifyError, request, reply) => {
      const invalidLink = isAppError(error)
        ? error.code === 'UNAUTHORIZED' || error.code === 'VALIDATION_FAILED'
        : error.validation !== undefined;
      if (!invalidLink || !wantsPage(request)) throw error;
      const status = isAppError(error) ? statusByCode[error.code] : statusByCode.VALIDATION_FAILED;
      return sendPage(reply.status(status), invalidLinkPage());
    });
    const s = scope.withTypeProvider<ZodTypeProvider>();
    s.get(UNSUBSCRIBE_PATH, {
      config: { auth: 'public' },
      schema: {
        operationId: 'previewNotificationUnsubscribe',
        tags,
        summary: 'What the unsubscribe link of a digest mail turns off; changes nothing',
        description:
          'The link in every digest mail. Changes nothing (mail scanners fetch links): a browser (Accept: text/html) gets a page whose button POSTs to the same URL. 400 for a malformed token, 401 for a forged or expired one (a browser gets a page saying the link no longer works, with the same status).',
        querystring: UnsubscribeQuery,
        response: { 200: UnsubscribeResult, 400: Problem, 401: Problem },
      },
      handler: async (request, reply) => {
        const preview = await notifications.unsubscribePreview(request.query.token);
        return wantsPage(request) ? sendPage(reply, confirmPage(request.query.token)) : preview;
      },
    });
    s.post(UNSUBSCRIBE_PATH, {
      config: { auth: 'public' },
      schema: {
        operationId: 'unsubscribeNotificationMail',
        tags,
        summary: 'One-click unsubscribe (RFC 8058): turns off every notification mail but security warnings',
        description:
          'The List-Unsubscribe-Post target of digest mails; the token in the URL is the only credential and allows nothing else. Sets email: never for every type but security.* (always mailed); inApp stays. Idempotent. Any body is ignored (mail clients send List-Unsubscribe=One-Click as a form). 400 for a malformed token, 401 for a forged or expired one.',
        querystring: UnsubscribeQuery,
        response: { 200: UnsubscribeResult, 400: Problem, 401: Problem },
      },
      handler: async (request, reply) => {
        const result = await notifications.unsubscribe(request.query.token);
        return wantsPage(request) ? sendPage(reply, donePage()) : result;
      },
    });
  });

  r.get('/v1/me/notification-preferences', {
    config: { auth: 'user' },
    schema: {
      operationId: 'getNotificationPreferences',
      tags,
      summary: 'Your notification preferences for every type (defaults where you set nothing)',
      response: { 200: NotificationPreferences, ...errors },
    },
    handler: async (request) => notifications.preferences(principalOf(request).userId),
  });

  r.put('/v1/me/notification-preferences', {
    config: { auth: 'user' },
    schema: {
      operationId: 'updateNotificationPreferences',
      tags,
      summary:
        'Change the preferences of some types (inApp and/or email); answers with all of them. security.* types are always emailed: email other than always is 400',
      body: UpdateNotificationPreferences,
      response: { 200: NotificationPreferences, ...errors },
    },
    handler: async (request) => notifications.updatePreferences(principalOf(request).userId, request.body),
  });
}

/** A browser asking for a page (the link clicked, the page's button), not an API client. */
const wantsPage = (request: FastifyRequest) => request.headers.accept?.includes('text/html') === true;

const escapeHtml = (value: string) =>
  value.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

const page = (title: string, body: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title} · gigwire</title></head>
<body style="font-family:system-ui,sans-serif;max-width:520px;margin:3em auto;padding:0 1em">
<h1>${title}</h1>
${body}
</body></html>
`;

const sendPage = (reply: FastifyReply, html: string) => reply.type('text/html; charset=utf-8').send(html);

/** The last segment of UNSUBSCRIBE_PATH: the form's action relative to the page's own URL. */
const UNSUBSCRIBE_SEGMENT = UNSUBSCRIBE_PATH.slice(UNSUBSCRIBE_PATH.lastIndexOf('/') + 1);

/**
 * The GET page: nothing is changed until its button is pressed. The button posts to the page's
 * own URL, written relative (`unsubscribe?token=…`): PUBLIC_URL may carry a path (a reverse proxy
 * serving gigwire under `/gigwire`), and an absolute `/v1/…` would post outside it.
 */
const confirmPage = (token: string) =>
  page(
    'Stop notification emails?',
    `<p>gigwire will stop emailing notifications to you. Security warnings (a new sign-in, a session ended) are still sent. The notifications stay in the app, where you can turn mail back on.</p>
<form method="post" action="${escapeHtml(`${UNSUBSCRIBE_SEGMENT}?token=${encodeURIComponent(token)}`)}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button>
</form>`,
  );

const invalidLinkPage = () =>
  page(
    'This link no longer works',
    '<p>This unsubscribe link has expired or is not complete (some mail apps cut long links). Sign in to gigwire and change your notification settings there, or use the link in your latest notification email.</p>',
  );

const donePage = () =>
  page(
    'Unsubscribed',
    '<p>gigwire no longer emails you notifications, except security warnings. You can turn mail back on in the app’s notification settings.</p>',
  );
