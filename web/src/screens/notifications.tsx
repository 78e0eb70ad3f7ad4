/** The notifications bell (live unread count) and the list, with links to what each is about. */
import { useEffect, useState } from 'preact/hooks';
import type { Notification } from '../api.js';
import { ErrorNote, type Failure, failureOf, useAction, useApp, useLive, when } from '../ui.js';

const UNREAD_EVENT = 'gigwire:unread-count';

/** Unread count: read over REST at each (re)connect, then kept by pushes (ids deduped). */
export function Bell() {
  const { session } = useApp();
  const [count, setCount] = useState<number>();
  const [seen] = useState(() => new Set<string>());
  const load = () =>
    session.api.unreadCount().then(
      (answer) => setCount(answer.count),
      () => undefined,
    );
  useEffect(() => void load(), [session]);
  // After a reconnect pushes may have been missed: REST is the truth.
  useLive('connected', (event) => {
    if (event.reconnected) void load();
  });
  useLive('notification', (pushed) => {
    if (seen.has(pushed.id)) return;
    seen.add(pushed.id);
    setCount((n) => (n ?? 0) + 1);
  });
  useLive('notifications.read', (read) => setCount(read.unreadCount));
  // Read here: the server pushes `notifications.read` to the other devices only.
  useEffect(() => {
    const update = (event: Event) => setCount((event as CustomEvent<number>).detail);
    addEventListener(UNREAD_EVENT, update);
    return () => removeEventListener(UNREAD_EVENT, update);
  }, []);
  const label = count === undefined || count === 0 ? 'Notifications' : `Notifications (${count} unread)`;
  return (
    <a href="#/notifications" aria-label={label} class="bell">
      <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
        <path
          fill="currentColor"
          d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1z"
        />
      </svg>
      {count ? (
        <span class="count" data-testid="unread-count">
          {count}
        </span>
      ) : null}
    </a>
  );
}

function linkOf(notification: Notification): string | undefined {
  const { contractId, jobId } = notification.data as { contractId?: unknown; jobId?: unknown };
  if (typeof contractId === 'string') return `#/contracts/${contractId}`;
  if (typeof jobId === 'string') return `#/jobs/${jobId}`;
  if (notification.type.startsWith('payment') || notification.type.startsWith('payout')) return '#/wallet';
  return undefined;
}

export function Notifications() {
  const { session, live } = useApp();
  const [list, setList] = useState<Notification[]>();
  const [failure, setFailure] = useState<Failure>();
  const { busy, run, failure: readFailure } = useAction();
  const load = () =>
    session.api.notifications().then(
      (page) => {
        setList(page.data);
        // The list is read again after a failure: its error goes with it.
        setFailure(undefined);
      },
      (error) => setFailure(failureOf(error)),
    );
  useEffect(() => void load(), [session]);
  useLive('notification', () => void load());
  useLive('notifications.read', () => void load());
  useLive('connected', (event) => {
    if (event.reconnected) void load();
  });
  // Only what this list shows (its newest and older): one that arrives meanwhile stays unread.
  const newest = list?.[0]?.id;
  const readAll = () =>
    run(async () => {
      if (newest === undefined) return;
      const result = await live.markAllRead(newest);
      dispatchEvent(new CustomEvent(UNREAD_EVENT, { detail: result.unreadCount }));
      await load();
    });
  return (
    <section aria-labelledby="notifications-title">
      <div class="row spread">
        <h1 id="notifications-title">Notifications</h1>
        <button type="button" disabled={busy || !list?.some((n) => n.readAt === null)} onClick={readAll}>
          Mark all read
        </button>
      </div>
      <ErrorNote failure={failure ?? readFailure} />
      {list?.length === 0 ? <p>Nothing yet.</p> : null}
      <ul class="list">
        {list?.map((n) => {
          const link = linkOf(n);
          return (
            <li key={n.id} class={n.readAt === null ? 'card unread' : 'card'}>
              <strong>{link === undefined ? n.title : <a href={link}>{n.title}</a>}</strong>
              {n.readAt === null ? <span class="badge">new</span> : null}
              <div>{n.body}</div>
              <div class="meta">{when(n.createdAt)}</div>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
