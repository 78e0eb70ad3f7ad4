/** People: worker search, my contacts with live presence dots, and a user's public profile. */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { PresenceState } from '../../../protocol/src/client/index.js';
import type { Contact, Review, UserProfile, WorkerListing } from '../api.js';
import { isUnreachable } from '../outcome.js';
import {
  AmountField,
  amountOf,
  ErrorNote,
  type Failure,
  FormEnd,
  failureOf,
  go,
  LoadFailed,
  money,
  Name,
  outcomeUnknown,
  platformCurrency,
  Stars,
  TextField,
  UNREACHABLE,
  useAction,
  useApp,
  useLive,
  usePlatformCurrency,
  useRetryKeys,
  when,
} from '../ui.js';

const stars = (average: number | null | undefined) =>
  average === null || average === undefined ? 'no reviews yet' : `${average.toFixed(1)} ★`;

function PresenceDot({ state }: { state: PresenceState | undefined }) {
  const online = state?.status === 'online';
  const label = online
    ? 'online'
    : state?.lastSeenAt
      ? `offline, last seen ${when(state.lastSeenAt)}`
      : 'offline';
  return <span class={online ? 'dot on' : 'dot'} role="img" aria-label={label} title={label} />;
}

export function People() {
  const { session, live } = useApp();
  const [q, setQ] = useState('');
  const [results, setResults] = useState<WorkerListing[]>();
  /** Undefined until read: a list that could not be read is not "No contacts yet". */
  const [contacts, setContacts] = useState<Contact[]>();
  const [presence, setPresence] = useState<Record<string, PresenceState>>({});
  const [failure, setFailure] = useState<Failure>();
  const search = useAction('read');
  /**
   * The contacts or their presence could not be had (opened while offline, say): the SDK resumes
   * only subscriptions the server accepted, so both are asked again at the next connect.
   */
  const incomplete = useRef(false);
  const loadContacts = async () => {
    const list = (await session.api.contacts()).data;
    setContacts(list);
    setFailure(undefined);
    // Presence of mutual contacts only (the server refuses the others); kept across reconnects by the SDK.
    const states = await live.subscribePresence(list.map((c) => c.user.id)).catch((error: unknown) => {
      // No answer: asked again at the next connect. A refusal (FORBIDDEN for the non-mutual) stays.
      if (isUnreachable(error)) incomplete.current = true;
      return [];
    });
    setPresence((shown) => ({ ...shown, ...Object.fromEntries(states.map((s) => [s.userId, s])) }));
  };
  const reload = () => {
    incomplete.current = false;
    loadContacts().catch((error) => {
      incomplete.current = true;
      setFailure(failureOf(error));
    });
  };
  useEffect(reload, [session, live]);
  useLive('connected', () => {
    if (incomplete.current) reload();
  });
  useLive('presence', (state) => setPresence((shown) => ({ ...shown, [state.userId]: state })));
  const find = search.submit(async () => setResults((await session.api.searchWorkers(q)).data));
  const remove = (userId: string) =>
    session.api
      .removeContact(userId)
      .then(loadContacts)
      .catch((error) => setFailure(failureOf(error)));
  return (
    <section aria-labelledby="people-title">
      <h1 id="people-title">People</h1>
      <h2>My contacts</h2>
      {contacts === undefined ? (
        failure === undefined ? (
          <p>Loading…</p>
        ) : (
          <LoadFailed failure={failure} retry={reload} />
        )
      ) : (
        <ErrorNote failure={failure} />
      )}
      {contacts?.length === 0 ? <p>No contacts yet: find someone below and add them.</p> : null}
      <ul class="list" aria-label="Contacts">
        {contacts?.map((c) => (
          <li key={c.user.id} class="card row spread">
            <span>
              <PresenceDot state={presence[c.user.id]} />{' '}
              <a href={`#/users/${c.user.id}`}>{c.user.username}</a>
            </span>
            <button type="button" class="link" onClick={() => void remove(c.user.id)}>
              Remove {c.user.username}
            </button>
          </li>
        ))}
      </ul>
      <form class="card" onSubmit={find} aria-labelledby="find-title">
        <h2 id="find-title">Find workers</h2>
        <TextField
          label="Name, skill or place"
          name="q"
          type="search"
          value={q}
          onValue={setQ}
          failure={search.failure}
        />
        <ErrorNote failure={search.failure} />
        <button type="submit" disabled={search.busy}>
          Search
        </button>
      </form>
      {results?.length === 0 ? <p>Nobody matches.</p> : null}
      <ul class="list" aria-label="Workers found">
        {results?.map((w) => (
          <li key={w.id} class="card">
            <a href={`#/users/${w.id}`}>{w.displayName ?? w.username}</a>{' '}
            <span class="meta">{stars(w.rating.average)}</span>
            <div class="meta">
              {w.workerProfile?.skills.join(', ')}
              {w.workerProfile?.hourlyRate
                ? ` · ${money(w.workerProfile.hourlyRate.amount, w.workerProfile.hourlyRate.currency)}/h`
                : ''}
              {w.workerProfile?.availability ? ` · ${w.workerProfile.availability}` : ''}
            </div>
          </li>
        ))}
      </ul>
    </section>
  );
}

/**
 * A mutual contact's presence, kept current: subscribed (`presence.subscribe` accepts only mutual
 * contacts, the profile's `presence` says whether the user is one) and then followed by pushes, as
 * the People page does. A subscription that got no answer is asked again at the next connect (the
 * SDK restores only accepted ones); while it failed, the profile's state is shown with the time it
 * was read ("as of …"), not as if it were live.
 */
function useContactPresence(userId: string, profile: UserProfile | undefined) {
  const { live, user } = useApp();
  const [state, setState] = useState<PresenceState>();
  const [subscription, setSubscription] = useState<'asked' | 'live' | 'failed'>('asked');
  const [readAt, setReadAt] = useState<string>();
  const mutual = profile?.presence !== undefined && userId !== user.id;
  const subscribe = useRef<() => void>(() => undefined);
  subscribe.current = () => {
    if (!mutual) return;
    live.subscribePresence([userId]).then(
      (states) => {
        const now = states.find((s) => s.userId === userId);
        if (now !== undefined) setState(now);
        setSubscription('live');
      },
      // No answer: asked again at the next connect. Refused (no longer a mutual contact): the
      // profile's state, as of its read.
      () => setSubscription('failed'),
    );
  };
  useEffect(() => {
    setState(undefined);
    setSubscription('asked');
    setReadAt(new Date().toISOString());
    subscribe.current();
  }, [live, userId, profile, mutual]);
  useLive('presence', (pushed) => pushed.userId === userId && setState(pushed), [userId]);
  useLive('connected', () => {
    if (subscription === 'failed') subscribe.current();
  }, [subscription]);
  const shown = state ?? (profile?.presence ? { userId, ...profile.presence } : undefined);
  return { state: shown, asOf: mutual && subscription === 'failed' ? readAt : undefined };
}

export function UserView({ userId }: { userId: string }) {
  const { session, user } = useApp();
  const [profile, setProfile] = useState<UserProfile>();
  const presence = useContactPresence(userId, profile);
  /** Undefined until read; a read that failed says so (not "No published reviews yet"). */
  const [reviews, setReviews] = useState<Review[]>();
  const [reviewsFailure, setReviewsFailure] = useState<Failure>();
  const [isContact, setIsContact] = useState(false);
  const [failure, setFailure] = useState<Failure>();
  const action = useAction();
  /** The latest load: an answer of an earlier one (another user's page, a slower try) is dropped. */
  const latest = useRef(0);
  const reviewReads = useRef(0);
  const loadReviews = () => {
    const mine = ++reviewReads.current;
    const current = () => mine === reviewReads.current;
    setReviewsFailure(undefined);
    session.api.userReviews(userId).then(
      (page) => current() && setReviews(page.data),
      (error) => current() && setReviewsFailure(failureOf(error)),
    );
  };
  const load = () => {
    const mine = ++latest.current;
    const current = () => mine === latest.current;
    setFailure(undefined);
    session.api.user(userId).then(
      (found) => current() && setProfile(found),
      (error) => current() && setFailure(failureOf(error)),
    );
    loadReviews();
    session.api.contacts().then(
      (list) => current() && setIsContact(list.data.some((c) => c.user.id === userId)),
      () => undefined,
    );
  };
  useEffect(() => {
    setProfile(undefined);
    setReviews(undefined);
    load();
  }, [session, userId]);
  // A page that could not be read (opened offline, the server away) is read again once the live
  // connection is back, as the other screens do, and on "Try again".
  useLive('connected', () => {
    if (profile === undefined) load();
    else if (reviews === undefined) loadReviews();
  }, [userId, profile, reviews]);
  if (profile === undefined)
    return failure ? (
      <div class="row wrap">
        <ErrorNote failure={failure} />
        <button type="button" onClick={load}>
          Try again
        </button>
      </div>
    ) : (
      <p>Loading…</p>
    );
  const worker = profile.workerProfile;
  const add = () =>
    action.run(async () => {
      await session.api.addContact(userId);
      setIsContact(true);
    });
  const message = () => action.run(async () => go(`/rooms/${(await session.api.directRoom(userId)).id}`));
  return (
    <section aria-labelledby="user-title">
      <h1 id="user-title">{profile.displayName ?? profile.username}</h1>
      <p class="meta">
        @{profile.username} · {profile.roles.join(', ')}
        {profile.location ? ` · ${profile.location}` : ''}
        {presence.state ? (
          <>
            {' · '}
            <span data-testid="presence">
              {presence.state.status}
              {presence.asOf === undefined ? '' : ` (as of ${when(presence.asOf)})`}
            </span>
          </>
        ) : null}
      </p>
      {profile.bio ? <p class="pre">{profile.bio}</p> : null}
      {worker ? (
        <p>
          Skills: {worker.skills.join(', ') || '—'}
          {worker.hourlyRate
            ? ` · ${money(worker.hourlyRate.amount, worker.hourlyRate.currency)} per hour`
            : ''}
          {worker.availability ? ` · ${worker.availability}` : ''}
        </p>
      ) : null}
      <p>
        Rating: <strong data-testid="rating">{stars(profile.rating.average)}</strong> ({profile.rating.count}{' '}
        {profile.rating.count === 1 ? 'review' : 'reviews'}) · {profile.performance.completedContracts}{' '}
        completed
      </p>
      {userId === user.id ? null : (
        <div class="row wrap">
          {isContact ? (
            <span class="meta">In your contacts</span>
          ) : (
            <button type="button" disabled={action.busy} onClick={add}>
              Add to contacts
            </button>
          )}
          <button type="button" disabled={action.busy} onClick={message}>
            Send a message
          </button>
        </div>
      )}
      <ErrorNote failure={action.failure} />
      {userId === user.id ? null : <SendMoney to={profile.id} name={profile.username} />}
      <h2>Reviews</h2>
      {reviews === undefined ? (
        reviewsFailure === undefined ? (
          <p>Loading…</p>
        ) : (
          <LoadFailed failure={reviewsFailure} retry={loadReviews} />
        )
      ) : reviews.length === 0 ? (
        <p>No published reviews yet.</p>
      ) : null}
      <ul class="list" aria-label="Reviews">
        {reviews?.map((r) => (
          <li key={r.id} class="card">
            <Stars rating={r.rating} /> by <Name id={r.authorId} />
            <div>{r.text}</div>
          </li>
        ))}
      </ul>
    </section>
  );
}

/**
 * A wallet transfer to this user: settled at once (the balances are pushed to both). A transfer
 * whose answer was lost keeps its Idempotency-Key: "Send money" again with the same amount and note
 * replays it (sent once) instead of sending twice.
 */
function SendMoney({ to, name }: { to: string; name: string }) {
  const { session } = useApp();
  const currency = usePlatformCurrency();
  const [amount, setAmount] = useState('');
  const [note, setNote] = useState('');
  const [sent, setSent] = useState<string>();
  const { failure, busy, submit } = useAction();
  const keyed = useRetryKeys();
  const send = submit(async () => {
    setSent(undefined);
    const transfer = {
      toUserId: to,
      amount: amountOf(amount, 'amount'),
      ...(note.trim() ? { note: note.trim() } : {}),
    };
    try {
      await keyed(transfer, (key) => session.api.transfer(transfer, key));
    } catch (error) {
      if (!outcomeUnknown(error)) throw error;
      // Say what the wallet says now, when it can be read.
      const wallet = await session.api.wallet().catch(() => undefined);
      throw new Error(
        `${UNREACHABLE} The money may have gone through${
          wallet === undefined ? '' : ` (your balance is now ${money(wallet.available, wallet.currency)})`
        }. Press "Send money" again without changing the form and it is sent once, not twice.`,
      );
    }
    const shown = currency ?? (await platformCurrency(session).catch(() => undefined));
    setSent(`Sent ${money(transfer.amount, shown)} to ${name}.`);
    setAmount('');
    setNote('');
  });
  return (
    <form class="card" onSubmit={send} aria-labelledby="send-title">
      <h2 id="send-title">Send money to {name}</h2>
      <AmountField name="amount" value={amount} onValue={setAmount} failure={failure} />
      <TextField label="Note (optional)" name="note" value={note} onValue={setNote} failure={failure} />
      {sent === undefined ? null : <p role="status">{sent}</p>}
      <FormEnd failure={failure} busy={busy} label="Send money" />
    </form>
  );
}
