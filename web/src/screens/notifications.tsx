/** The notifications bell (live unread count) and the list, with links to what each is about. */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Notification } from '../api.js';
import { isPassing } from '../outcome.js';
import { appendPage, firstPages, mergeTop } from '../paging.js';
import {
  ErrorNote,
  type Failure,
  failureOf,
  Latest,
  LoadFailed,
  retryDelay,
  useAction,
  useApp,
  useLive,
  when,
} from '../ui.js';

const UNREAD_EVENT = 'gigwire:unread-count';
/** The bell's count changed (`detail`: it, undefined while unknown), for the list's "Mark all read". */
const SHOWN_EVENT = 'gigwire:unread-shown';
/** The count the bell shows (it is mounted while signed in): a list opened later starts from it. */
let shownCount: number | undefined;

/**
 * Unread count: the server's, read over REST at the start, at each connect and at each new
 * `notification` push (ids deduped; a push is never added to the count shown, which may already
 * hold it), and pushed whole by `notifications.read`. A read that fails for a passing reason (no
 * answer, 5xx, 429) is tried again with backoff and at the next connect, so a blink at sign-in does
 * not leave the bell empty until the socket happens to reconnect. Only the answer of the latest read counts, and none that a newer
 * count (a `notifications.read` push, "Mark all read" here) overtook.
 */
export function Bell() {
  const { session } = useApp();
  const [count, setCount] = useState<number>();
  const [seen] = useState(() => new Set<string>());
  /** Bumped by every read started and every count known otherwise: an older answer is dropped. */
  const generation = useRef(0);
  const retry = useRef<{ timer?: ReturnType<typeof setTimeout>; failures: number }>({ failures: 0 });
  const settle = (value: number) => {
    generation.current += 1;
    clearTimeout(retry.current.timer);
    retry.current.failures = 0;
    setCount(value);
  };
  const load = () => {
    clearTimeout(retry.current.timer);
    const mine = ++generation.current;
    session.api.unreadCount().then(
      (answer) => {
        if (mine === generation.current) settle(answer.count);
      },
      (error) => {
        if (mine !== generation.current) return;
        // Refused (the session ended): the app signs out; nothing to try again.
        if (!isPassing(error)) return;
        retry.current.failures += 1;
        retry.current.timer = setTimeout(load, retryDelay(retry.current.failures, error));
      },
    );
  };
  useEffect(() => {
    load();
    return () => {
      generation.current += 1;
      clearTimeout(retry.current.timer);
    };
  }, [session]);
  // Read again at every connect: pushes are missed while the socket is down (and before its first
  // connect, which a read started at mount may predate), and a failed read is retried at once.
  useLive('connected', () => load());
  useLive('notification', (pushed) => {
    if (seen.has(pushed.id)) return;
    seen.add(pushed.id);
    // Read, never counted on what is shown: a push comes through the bus later than the row is
    // stored, so a read answered meanwhile (at a connect) already counts it, and +1 on top of it
    // showed one unread too many until the next read.
    load();
  });
  useLive('notifications.read', (read) => settle(read.unreadCount));
  useEffect(() => {
    shownCount = count;
    dispatchEvent(new CustomEvent(SHOWN_EVENT, { detail: count }));
  }, [count]);
  useEffect(
    () => () => {
      shownCount = undefined;
    },
    [],
  );
  // Read here: the server pushes `notifications.read` to the other devices only.
  useEffect(() => {
    const update = (event: Event) => settle((event as CustomEvent<number>).detail);
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

/**
 * Where a notification leads, as its mail does (the server's `linkPathOf`,
 * src/domain/notifications/content.ts): what it is about (a contract, a job), the wallet, a room,
 * or, for the security notices, the profile's Security section.
 */
function linkOf(notification: Notification): string {
  const { contractId, jobId, roomId } = notification.data as {
    contractId?: unknown;
    jobId?: unknown;
    roomId?: unknown;
  };
  if (typeof contractId === 'string') return `#/contracts/${encodeURIComponent(contractId)}`;
  if (typeof jobId === 'string') return `#/jobs/${encodeURIComponent(jobId)}`;
  switch (notification.type.split('.')[0]) {
    case 'contract':
    case 'review':
    case 'bid':
      return '#/contracts';
    case 'payment':
    case 'payout':
    case 'transfer':
    case 'escrow':
      return '#/wallet';
    case 'messages':
      return typeof roomId === 'string' ? `#/rooms/${encodeURIComponent(roomId)}` : '#/rooms';
    default:
      return '#/profile/security';
  }
}

/** A notification as listed: `version` orders its two states for paging.ts (read is the newer). */
type Listed = Notification & { readonly version: number };
const listed = (n: Notification): Listed => ({ ...n, version: n.readAt === null ? 0 : 1 });

export function Notifications() {
  const { session, live } = useApp();
  const [list, setList] = useState<Listed[]>();
  const [failure, setFailure] = useState<Failure>();
  const { busy, run, failure: readFailure } = useAction();
  /** The cursor of the page after those shown (null: all shown). */
  const [next, setNext] = useState<string | null>(null);
  /** Pages read in all (the first and each "Older"): a push reads as many again from the top. */
  const pages = useRef(1);
  const older = useAction('read');
  // The server's unread count (the bell's): older unread notifications may lie beyond the pages
  // read, so "Mark all read" is offered while it is above 0 even if every one listed is read.
  const [unread, setUnread] = useState(() => shownCount);
  useEffect(() => {
    const update = (event: Event) => setUnread((event as CustomEvent<number | undefined>).detail);
    addEventListener(SHOWN_EVENT, update);
    return () => removeEventListener(SHOWN_EVENT, update);
  }, []);
  // Reads overlap (a push each, Mark all read): only the latest one's answer is shown, so a slower
  // earlier one does not bring back a list without the newest or with read ones marked new. A read
  // from the top goes over as many pages as were read ("Older"), each notification listed once.
  const [latest] = useState(() => new Latest());
  const load = () => {
    const newest = latest.begin();
    const walked = pages.current;
    return firstPages((cursor) => session.api.notifications(cursor), walked).then(
      (page) => {
        if (!newest()) return;
        setList((shown) => mergeTop(page.data.map(listed), shown));
        // An "Older" answered meanwhile went further: its cursor stays.
        if (pages.current === walked) setNext(page.nextCursor);
        // The list is read again after a failure: its error goes with it.
        setFailure(undefined);
      },
      (error) => newest() && setFailure(failureOf(error)),
    );
  };
  const loadOlder = () =>
    older.run(async () => {
      if (next === null) return;
      const page = await session.api.notifications(next);
      pages.current += 1;
      setList((shown) => appendPage(shown, page.data.map(listed)));
      setNext(page.nextCursor);
    });
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
        <button
          type="button"
          disabled={
            busy || newest === undefined || !(list?.some((n) => n.readAt === null) || (unread ?? 0) > 0)
          }
          onClick={readAll}
        >
          Mark all read
        </button>
      </div>
      {list === undefined && failure !== undefined ? (
        <LoadFailed failure={failure} retry={() => void load()} />
      ) : (
        <ErrorNote failure={failure ?? readFailure} />
      )}
      {list?.length === 0 ? <p>Nothing yet.</p> : null}
      <ul class="list">
        {list?.map((n) => {
          return (
            <li key={n.id} class={n.readAt === null ? 'card unread' : 'card'}>
              <strong>
                <a href={linkOf(n)}>{n.title}</a>
              </strong>
              {n.readAt === null ? <span class="badge">new</span> : null}
              <div>{n.body}</div>
              <div class="meta">{when(n.createdAt)}</div>
            </li>
          );
        })}
      </ul>
      {list === undefined || next === null ? null : (
        <button type="button" aria-busy={older.busy} onClick={() => void loadOlder()}>
          Older notifications
        </button>
      )}
      <ErrorNote failure={older.failure} />
    </section>
  );
}
