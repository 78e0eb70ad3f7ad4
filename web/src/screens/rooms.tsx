/**
 * My rooms with unread counts, and one room. The list is not live: the server pushes a room's
 * messages only to sockets that joined it (an open room), and nothing when someone adds me to a
 * room. So it is read when it opens, at every connect, when a contract starts (its job room), on a
 * `messages.unread` notification, and when the tab is shown again (the user back from elsewhere).
 */
import { useEffect, useState } from 'preact/hooks';
import type { RoomSummary } from '../api.js';
import { outboxOf } from '../outbox.js';
import { ErrorNote, type Failure, failureOf, Latest, LoadFailed, useApp, useLive, when } from '../ui.js';
import { Room } from './room.js';

/**
 * The first 80 characters of a message (code points: cutting between the two halves of an emoji
 * showed a broken character), with "…" when there is more.
 */
const preview = (body: string) => {
  const chars = Array.from(body);
  return chars.length > 80 ? `${chars.slice(0, 80).join('')}…` : body;
};

export function Rooms() {
  const { session, live, user } = useApp();
  // Refused chat messages of every room, with Discard: one for a room the user cannot open any more
  // (removed from it, the room gone) would otherwise stay in the outbox (and the tab's storage).
  const outbox = outboxOf(live, user.id);
  const [refused, setRefused] = useState(() => outbox.refused());
  useEffect(() => {
    setRefused(outbox.refused());
    return outbox.subscribe(() => setRefused(outbox.refused()));
  }, [outbox]);
  const [rooms, setRooms] = useState<RoomSummary[]>();
  const [failure, setFailure] = useState<Failure>();
  /** The cursor of the page after those shown (null: all shown). */
  const [next, setNext] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  // Reads overlap (a reconnect, a new contract): only the latest one's answer is shown, and a next
  // page asked before it is not appended to the list it replaced.
  const [latest] = useState(() => new Latest());
  const load = () => {
    const newest = latest.begin();
    return session.api.rooms().then(
      (page) => {
        if (!newest()) return;
        setRooms(page.data);
        setNext(page.nextCursor);
        setFailure(undefined);
      },
      (error) => newest() && setFailure(failureOf(error)),
    );
  };
  const loadMore = () => {
    if (next === null || loadingMore) return;
    const stillLatest = latest.current();
    setLoadingMore(true);
    session.api
      .rooms(next)
      .then(
        (page) => {
          if (!stillLatest()) return;
          // A room may move between pages while paging (joined again): listed once.
          setRooms((shown) => {
            const known = new Set((shown ?? []).map((room) => room.id));
            return [...(shown ?? []), ...page.data.filter((room) => !known.has(room.id))];
          });
          setNext(page.nextCursor);
          setFailure(undefined);
        },
        (error) => stillLatest() && setFailure(failureOf(error)),
      )
      .finally(() => setLoadingMore(false));
  };
  useEffect(() => void load(), [session]);
  // Counts come from REST; after a reconnect or a new room (a contract started) read them again.
  useLive('connected', () => void load());
  useLive('market', (event) => {
    if (event.type === 'contract.accept' || event.type === 'bid.accepted') void load();
  });
  useLive('notification', (notification) => {
    if (notification.kind === 'messages.unread') void load();
  });
  // Nothing tells this tab of a message or a new room meanwhile: read again when it is looked at.
  useEffect(() => {
    const shown = () => {
      if (document.visibilityState === 'visible') void load();
    };
    document.addEventListener('visibilitychange', shown);
    return () => document.removeEventListener('visibilitychange', shown);
  }, [session]);
  return (
    <section aria-labelledby="rooms-title">
      <h1 id="rooms-title">Messages</h1>
      {rooms === undefined && failure !== undefined ? (
        <LoadFailed failure={failure} retry={() => void load()} />
      ) : (
        <ErrorNote failure={failure} />
      )}
      {refused.length > 0 ? (
        <ul class="list" aria-label="Messages not sent">
          {refused.map((p) => {
            const room = rooms?.find((r) => r.id.toLowerCase() === p.roomId.toLowerCase());
            return (
              <li key={p.clientMsgId} class="card pending" data-status="refused">
                <span class="text">{p.body}</span>{' '}
                <span class="meta" role="status">
                  Not sent{room?.title ? ` in ${room.title}` : ''}: {p.failure?.message ?? 'refused'}
                </span>{' '}
                <button type="button" class="link" onClick={() => outbox.discard(p.clientMsgId)}>
                  Discard
                </button>
              </li>
            );
          })}
        </ul>
      ) : null}
      {rooms?.length === 0 ? (
        <p>No rooms yet: job rooms start with a contract; message a contact from their profile.</p>
      ) : null}
      <ul class="list" aria-label="Rooms">
        {rooms?.map((room) => (
          <li key={room.id} class={room.unread > 0 ? 'card unread' : 'card'}>
            <a href={`#/rooms/${room.id}`}>
              {room.title ?? (room.kind === 'direct' ? 'Direct messages' : 'Room')}
            </a>{' '}
            {room.unread > 0 ? (
              <span class="badge" data-testid="room-unread">
                {room.unread} unread
              </span>
            ) : null}
            {room.lastMessage ? (
              <div class="meta">
                {preview(room.lastMessage.body)} · {when(room.lastMessage.sentAt)}
              </div>
            ) : null}
          </li>
        ))}
      </ul>
      {next === null ? null : (
        <button type="button" onClick={loadMore} disabled={loadingMore}>
          {loadingMore ? 'Loading…' : 'More rooms'}
        </button>
      )}
    </section>
  );
}

export function RoomView({ roomId }: { roomId: string }) {
  const { session } = useApp();
  const [title, setTitle] = useState<string>();
  useEffect(() => {
    session.api.room(roomId).then(
      (room) => setTitle(room.title ?? (room.kind === 'direct' ? 'Direct messages' : 'Room')),
      () => setTitle('Room'),
    );
  }, [session, roomId]);
  return (
    <section>
      <p>
        <a href="#/rooms">← All messages</a>
      </p>
      {title === undefined ? <p>Loading…</p> : <Room roomId={roomId} title={title} />}
    </section>
  );
}
