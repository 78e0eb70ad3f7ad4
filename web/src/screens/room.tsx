import { useEffect, useRef, useState } from 'preact/hooks';
import type { RoomMessage } from '../../../protocol/src/frames.js';
import { outboxOf } from '../outbox.js';
import {
  ErrorNote,
  type Failure,
  failureOf,
  LoadFailed,
  Name,
  useAction,
  useApp,
  useLive,
  useLiveState,
} from '../ui.js';

const PAGE = 50;

/**
 * A room: history, live messages in seq order (the SDK fills gaps and resumes after reconnects),
 * system messages, typing, a send box; what is shown is marked read (room.read, at most every 2 s).
 */
export function Room({ roomId, title = 'Job room' }: { roomId: string; title?: string }) {
  const { live, user } = useApp();
  const [messages, setMessages] = useState<RoomMessage[]>([]);
  const [text, setText] = useState('');
  const [failure, setFailure] = useState<Failure>();
  const state = useLiveState();
  const bottom = useRef<HTMLLIElement>(null);
  const [typing, setTyping] = useState<string>();
  /** Read receipts: other members' read marks as pushed since this page opened. */
  const [readBy, setReadBy] = useState<Record<string, number>>({});
  const typingSentAt = useRef(0);
  const typingTimer = useRef<ReturnType<typeof setTimeout>>(undefined);
  const merge = (incoming: readonly RoomMessage[]) =>
    setMessages((list) => {
      const bySeq = new Map(list.map((m) => [m.seq, m]));
      for (const m of incoming) if (m.roomId === roomId) bySeq.set(m.seq, m);
      return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
    });
  /**
   * Joining and the newest page: 'failed' when either failed (opened while the socket was down and
   * timed out, say). The SDK then does not track the room (a failed first join is forgotten), so
   * nothing would arrive, not even the user's own messages: joined again at the next connect.
   */
  const joined = useRef<'joining' | 'joined' | 'failed' | 'removed'>('joining');
  /**
   * The oldest seq of the history pages read: where "Older messages" goes on from. Not the oldest
   * shown: a message of mine confirmed by a resend (same clientMsgId, say restored after a reload)
   * comes with its first seq, which may be older than the pages read; paging from it would skip
   * every message between it and them.
   */
  const oldestRead = useRef<number>(undefined);
  const pageRead = (page: readonly RoomMessage[]) => {
    for (const m of page) oldestRead.current = Math.min(oldestRead.current ?? m.seq, m.seq);
  };
  /** Taken out of the room (by its owner, or the room ended): nothing more arrives or can be sent. */
  const [removed, setRemoved] = useState(false);
  const active = useRef(true);
  const join = () => {
    joined.current = 'joining';
    setFailure(undefined);
    live
      .joinRoom(roomId)
      .then(() => live.request('room.history', { roomId, limit: PAGE }))
      .then(
        (history) => {
          if (!active.current || joined.current === 'removed') return;
          joined.current = 'joined';
          setFailure(undefined);
          pageRead(history.messages);
          merge(history.messages);
          setMore(history.messages.length === PAGE);
        },
        (error) => {
          if (!active.current || joined.current === 'removed') return;
          joined.current = 'failed';
          setFailure(failureOf(error));
        },
      );
  };
  useEffect(() => {
    active.current = true;
    join();
    return () => {
      active.current = false;
      live.leaveRoom(roomId).catch(() => undefined);
    };
  }, [live, roomId]);
  useLive('connected', () => {
    if (joined.current === 'failed') join();
  }, [roomId]);
  // The SDK untracks a room the user was removed from (a room.member push naming them, or a rejoin
  // refused): without this the page would stay open as if live, and a send would fail FORBIDDEN.
  useLive(
    'room.removed',
    (event) => {
      if (event.roomId !== roomId.toLowerCase()) return;
      joined.current = 'removed';
      setRemoved(true);
      setFailure(undefined);
      setTyping(undefined);
    },
    [roomId],
  );
  // Older messages on demand, a page before the oldest page read (history answers newest first).
  // One page per press however often it is pressed while one is read (each press would otherwise
  // ask for the same page again, and count against the user's room reads at a time); its failure is
  // its own, shown by the button and gone when a later press reads the page.
  const [more, setMore] = useState(false);
  const olderPage = useAction('read');
  const olderButton = useRef<HTMLButtonElement>(null);
  const list = useRef<HTMLOListElement>(null);
  /** The last page was read from the focused "Older messages", which goes: focus the list instead. */
  const focusList = useRef(false);
  const older = () =>
    olderPage.run(async () => {
      const oldest = oldestRead.current;
      if (oldest === undefined) return;
      const page = await live.request('room.history', { roomId, beforeSeq: oldest, limit: PAGE });
      if (!active.current) return;
      pageRead(page.messages);
      merge(page.messages);
      const last = page.messages.length < PAGE;
      if (last && document.activeElement === olderButton.current) focusList.current = true;
      setMore(!last);
    });
  useEffect(() => {
    if (more || !focusList.current) return;
    focusList.current = false;
    list.current?.focus();
  }, [more]);
  /**
   * The newest message pushed (not one of the history pages): said by a live region of its own.
   * The list is none, or a screen reader would read out all 50 messages of a page of history.
   */
  const [announced, setAnnounced] = useState<RoomMessage>();
  useLive(
    'room.message',
    (m) => {
      merge([m]);
      if (m.senderId === typing) setTyping(undefined);
      if (m.roomId === roomId && m.senderId !== user.id) setAnnounced(m);
    },
    [roomId, typing],
  );
  // Typing is ephemeral: shown for a few seconds after the other member's last signal.
  useLive(
    'push',
    (push) => {
      if (push.t === 'room.read' && push.d.roomId === roomId && push.d.userId !== user.id) {
        const { userId, seq } = push.d;
        setReadBy((marks) => ((marks[userId] ?? 0) >= seq ? marks : { ...marks, [userId]: seq }));
        return;
      }
      if (push.t !== 'room.typing' || push.d.roomId !== roomId || push.d.userId === user.id) return;
      setTyping(push.d.userId);
      clearTimeout(typingTimer.current);
      typingTimer.current = setTimeout(() => setTyping(undefined), 4000);
    },
    [roomId],
  );
  useEffect(() => () => clearTimeout(typingTimer.current), []);
  const type = (value: string) => {
    typed.current = value;
    setText(value);
    // At most one signal per 2 s; the server throttles too.
    if (value === '' || Date.now() - typingSentAt.current < 2000) return;
    typingSentAt.current = Date.now();
    live.request('room.typing', { roomId }).catch(() => undefined);
  };
  // Follow the newest message (not older pages loaded above).
  const newestSeq = messages.at(-1)?.seq;
  useEffect(() => bottom.current?.scrollIntoView({ block: 'nearest' }), [newestSeq]);
  // Read marks: the newest shown seq, sent after a short pause so a burst of messages is one request.
  // `readSeq` is the mark the server confirmed: one that got no answer (the socket dropped, a
  // timeout) is sent again at the next connect, or the room would stay unread there (and no "Seen
  // by" on the other side) until a newer message came.
  const readSeq = useRef(0);
  const [connects, setConnects] = useState(0);
  useLive('connected', () => setConnects((n) => n + 1));
  useEffect(() => {
    const newest = messages.at(-1)?.seq ?? 0;
    if (newest <= readSeq.current) return;
    const timer = setTimeout(() => {
      live.request('room.read', { roomId, seq: newest }).then(
        () => {
          readSeq.current = Math.max(readSeq.current, newest);
        },
        () => undefined,
      );
    }, 500);
    return () => clearTimeout(timer);
  }, [messages, live, roomId, connects]);
  // Sending: through the session's outbox (outbox.ts), one clientMsgId per message, in the order
  // written. Connected with nothing else waiting, the text stays in the box ("Sending…") for the
  // first attempt, normally a moment; offline, or once an attempt got no answer, the message moves
  // below the list saying so ("Waiting for connection…", "Not sent" with Retry) and goes out by
  // itself when it can, and the box is free for the next one. A second submit while the box's
  // message is on its first attempt sends nothing (refs: two submits in one task see the same state).
  // Unsent messages survive a reload of the tab (the outbox keeps them in sessionStorage).
  const outbox = outboxOf(live, user.id);
  const [pending, setPending] = useState(() => outbox.pending(roomId));
  useEffect(
    () =>
      outbox.subscribe((sent) => {
        if (sent !== undefined && sent.roomId === roomId && active.current) merge([sent]);
        setPending(outbox.pending(roomId));
      }),
    [outbox, roomId],
  );
  const typed = useRef('');
  /** The message still shown in the box, on its first attempt (not listed below meanwhile). */
  const [inBox, setInBox] = useState<string>();
  const inBoxRef = useRef<string>(undefined);
  const clearBox = (body: string) => {
    if (typed.current.trim() !== body) return;
    typed.current = '';
    setText('');
  };
  const send = (event: Event) => {
    event.preventDefault();
    const body = typed.current.trim();
    if (body === '' || removed || inBoxRef.current !== undefined) return;
    if (live.state !== 'open' || !outbox.idle) {
      clearBox(body);
      outbox.send(roomId, body);
      return;
    }
    const { clientMsgId, attempted } = outbox.send(roomId, body);
    inBoxRef.current = clientMsgId;
    setInBox(clientMsgId);
    void attempted.then(() => {
      inBoxRef.current = undefined;
      setInBox(undefined);
      // Typing goes on meanwhile: clear only the text that was sent.
      clearBox(body);
    });
  };
  // A message stored before a reload whose answer was lost is in the history already: shown there
  // once, not also as pending while its resend (same clientMsgId) confirms it.
  const listed = pending.filter(
    (p) =>
      p.clientMsgId !== inBox &&
      !messages.some((m) => m.senderId === user.id && m.clientMsgId === p.clientMsgId),
  );
  return (
    <section class="card room" aria-labelledby="room-title">
      <h2 id="room-title">
        {title} {state === 'open' ? null : <span class="badge warn">reconnecting…</span>}
      </h2>
      {more ? (
        <button
          type="button"
          class="link"
          ref={olderButton}
          aria-busy={olderPage.busy}
          onClick={() => void older()}
        >
          Older messages
        </button>
      ) : null}
      <ErrorNote failure={olderPage.failure} />
      <ol class="messages" aria-label="Messages" ref={list} tabIndex={-1}>
        {messages.map((m) => {
          const system = typeof m.meta?.system === 'string' ? m.meta.system : undefined;
          return system !== undefined ? (
            <li key={m.seq} class="system">
              {m.body}
            </li>
          ) : (
            <li key={m.seq} class={m.senderId === user.id ? 'mine' : 'theirs'}>
              <span class="who">
                <Name id={m.senderId} />
              </span>{' '}
              <span class="body">{m.body}</span>
            </li>
          );
        })}
        <li ref={bottom} aria-hidden="true" class="end" />
      </ol>
      <p class="sr-only" aria-live="polite" data-testid="room-announce">
        {announced === undefined ? null : typeof announced.meta?.system === 'string' ? (
          announced.body
        ) : (
          <>
            <Name id={announced.senderId} />: {announced.body}
          </>
        )}
      </p>
      {listed.length > 0 ? (
        <ol class="outbox" aria-label="Not sent yet">
          {listed.map((p) => (
            <li key={p.clientMsgId} class="mine pending" data-status={p.status}>
              <span class="text">{p.body}</span>{' '}
              <span class="meta" role="status">
                {p.status === 'refused'
                  ? `Not sent: ${p.failure?.message ?? 'refused'}`
                  : p.status === 'unsent'
                    ? state === 'open'
                      ? 'Not sent yet: trying again'
                      : 'Not sent: it goes out when the connection is back'
                    : state === 'open'
                      ? 'Sending…'
                      : 'Waiting for connection…'}
              </span>
              {p.status === 'queued' ? null : (
                <button type="button" class="link" onClick={() => outbox.retry(p.clientMsgId)}>
                  Retry
                </button>
              )}
              {p.status === 'refused' ? (
                <button type="button" class="link" onClick={() => outbox.discard(p.clientMsgId)}>
                  Discard
                </button>
              ) : null}
            </li>
          ))}
        </ol>
      ) : null}
      <SeenBy messages={messages} readBy={readBy} />
      <p class="typing" aria-live="polite">
        {typing === undefined ? null : (
          <>
            <Name id={typing} /> is typing…
          </>
        )}
      </p>
      {removed ? (
        <p class="note" role="status">
          You are no longer a member of this room: its messages stay above, and nothing new can be sent.
        </p>
      ) : null}
      <form class="row" onSubmit={send}>
        <label class="sr-only" for="room-input">
          Message
        </label>
        <input
          id="room-input"
          class="grow"
          value={text}
          maxLength={4000}
          disabled={removed}
          onInput={(e) => type(e.currentTarget.value)}
        />
        <button type="submit" disabled={removed || inBox !== undefined}>
          {inBox === undefined ? 'Send' : 'Sending…'}
        </button>
      </form>
      {failure !== undefined && joined.current === 'failed' ? (
        // Refused while the socket stays up (RATE_LIMITED: too many room reads at once), the next
        // connect, which joins again by itself, may be far off.
        <LoadFailed failure={failure} retry={join} />
      ) : (
        <ErrorNote failure={failure} />
      )}
    </section>
  );
}

/** "Seen by …" under the list once another member's read mark reaches my newest message. */
function SeenBy({ messages, readBy }: { messages: readonly RoomMessage[]; readBy: Record<string, number> }) {
  const { user } = useApp();
  const mine = messages.findLast((m) => m.senderId === user.id)?.seq;
  const readers = mine === undefined ? [] : Object.keys(readBy).filter((id) => (readBy[id] ?? 0) >= mine);
  if (readers.length === 0) return null;
  return (
    <p class="seen">
      Seen by{' '}
      {readers.map((id, index) => (
        <span key={id}>
          {index > 0 ? ', ' : ''}
          <Name id={id} />
        </span>
      ))}
    </p>
  );
}
