/** The shell: restores the session, opens the live connection, routes by hash, draws the nav. */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { GigwireClient } from '../../protocol/src/client/index.js';
import { connectLive } from './live.js';
import { outboxOf } from './outbox.js';
import { isPassing } from './outcome.js';
import { ForgotPassword, ResetPassword, SignIn, SignUp, VerifyEmail } from './screens/auth.js';
import { ContractList, ContractView } from './screens/contracts.js';
import { JobBoard, JobView, PostJob } from './screens/jobs.js';
import { Bell, Notifications } from './screens/notifications.js';
import { People, UserView } from './screens/people.js';
import { Profile } from './screens/profile.js';
import { Rooms, RoomView } from './screens/rooms.js';
import { WalletView } from './screens/wallet.js';
import { Session } from './session.js';
import {
  Ctx,
  ErrorNote,
  failureOf,
  Latest,
  money,
  retryDelay,
  useApp,
  useLive,
  useLiveState,
  useRoute,
} from './ui.js';

export function App() {
  const session = useMemo(() => new Session(), []);
  // The links of the mails (/verify-email, /reset-password, /forgot-password) are pages of their own.
  const [link] = useState(() => linkScreenOf(location.pathname));
  const [ready, setReady] = useState(false);
  const [, setVersion] = useState(0);
  useEffect(() => {
    const off = session.onChange(() => setVersion((v) => v + 1));
    if (link === undefined) session.restore().finally(() => setReady(true));
    return off;
  }, [session, link]);
  const route = useRoute();
  if (link !== undefined) {
    return (
      <main class="page">
        <header class="bar">
          <a class="brand" href="/">
            gigwire
          </a>
        </header>
        {link === 'verify-email' ? (
          <VerifyEmail />
        ) : link === 'reset-password' ? (
          <ResetPassword />
        ) : (
          <ForgotPassword />
        )}
      </main>
    );
  }
  if (!ready) return <p class="center">Loading…</p>;
  if (session.user === undefined) {
    return (
      <main class="page">
        <header class="bar">
          <span class="brand">gigwire</span>
        </header>
        {session.unreachable !== undefined ? (
          <Unreachable session={session} />
        ) : route[0] === 'signup' ? (
          <SignUp session={session} />
        ) : (
          <SignIn session={session} />
        )}
      </main>
    );
  }
  return <SignedIn session={session} />;
}

type LinkScreen = 'verify-email' | 'reset-password' | 'forgot-password';

function linkScreenOf(path: string): LinkScreen | undefined {
  const name = path.replace(/^\/+|\/+$/g, '');
  return name === 'verify-email' || name === 'reset-password' || name === 'forgot-password'
    ? name
    : undefined;
}

/**
 * A stored session the server did not answer for (offline, a 5xx): still signed in on this tab, so
 * not the sign-in form; tried again on "Try again" and when the browser says it is back online.
 */
function Unreachable({ session }: { session: Session }) {
  const [busy, setBusy] = useState(false);
  const retry = () => {
    setBusy(true);
    session.restore().finally(() => setBusy(false));
  };
  useEffect(() => {
    const online = () => void session.restore();
    addEventListener('online', online);
    return () => removeEventListener('online', online);
  }, [session]);
  return (
    <section class="card narrow" aria-labelledby="unreachable-title">
      <h1 id="unreachable-title">Cannot reach gigwire</h1>
      <ErrorNote failure={failureOf(session.unreachable)} />
      <p>You are still signed in on this tab. Try again once the connection is back.</p>
      <div class="row wrap">
        <button type="button" disabled={busy} onClick={retry}>
          Try again
        </button>
        <button type="button" class="link" onClick={() => void session.signOut()}>
          Sign out
        </button>
      </div>
    </section>
  );
}

function SignedIn({ session }: { session: Session }) {
  const user = session.user;
  // One socket per signed-in session; closed on sign-out (the server also closes it on logout).
  const [live, setLive] = useState<GigwireClient>();
  useEffect(() => {
    const client = connectLive(session);
    // Its outbox at once: chat messages this user left unsent before a reload go out at the first
    // connect, whichever screen is open (outbox.ts).
    if (session.user !== undefined) outboxOf(client, session.user.id);
    setLive(client);
    return () => client.close();
  }, [session]);
  if (user === undefined || live === undefined) return null;
  return (
    <Ctx.Provider value={{ session, live, user }}>
      <Shell />
    </Ctx.Provider>
  );
}

function Shell() {
  const route = useRoute();
  const main = useRef<HTMLElement>(null);
  const path = route.join('/');
  // A new screen: keyboard and screen-reader users continue from its top, not from the old link.
  useEffect(() => {
    if (path !== '') main.current?.focus({ preventScroll: true });
  }, [path]);
  return (
    <div class="page">
      <Nav />
      <main ref={main} tabIndex={-1}>
        {screen(route)}
      </main>
    </div>
  );
}

function screen(route: string[]) {
  const [first] = route;
  // Ids are UUIDs, which the server takes in either case and answers lower-cased: a link with an
  // upper-case one (typed, or changed by a mail client) compared with what it answers would match
  // nothing (a room showing none of its messages, nor those sent from it).
  const second = route[1]?.toLowerCase();
  if (first === 'jobs' && second === 'new') return <PostJob />;
  if (first === 'jobs' && second !== undefined) return <JobView jobId={second} key={second} />;
  if (first === 'contracts' && second !== undefined) return <ContractView contractId={second} key={second} />;
  if (first === 'contracts') return <ContractList />;
  if (first === 'wallet') return <WalletView />;
  if (first === 'notifications') return <Notifications />;
  if (first === 'profile') return <Profile section={second} />;
  // The security notices of older mails link here.
  if (first === 'settings' && second === 'security') return <Profile section="security" />;
  if (first === 'people') return <People />;
  if (first === 'users' && second !== undefined) return <UserView userId={second} key={second} />;
  if (first === 'rooms' && second !== undefined) return <RoomView roomId={second} key={second} />;
  if (first === 'rooms') return <Rooms />;
  return <JobBoard />;
}

function Nav() {
  const { session, live, user } = useApp();
  const online = useLiveState() === 'open';
  const [balance, setBalance] = useState<string>();
  // The balance at each connect (nothing is pushed until it changes, and wallet pushes sent while
  // offline are not replayed); a failed read is tried again with backoff. A push brings the whole
  // balance: a read still in flight then may be older, and is dropped.
  const [latest] = useState(() => new Latest());
  const retry = useRef<{ timer?: ReturnType<typeof setTimeout>; failures: number }>({ failures: 0 });
  const readBalance = () => {
    clearTimeout(retry.current.timer);
    const newest = latest.begin();
    session.api.wallet().then(
      (w) => {
        if (!newest()) return;
        retry.current.failures = 0;
        setBalance(money(w.available, w.currency));
      },
      (error) => {
        if (!newest() || !isPassing(error)) return;
        retry.current.failures += 1;
        retry.current.timer = setTimeout(readBalance, retryDelay(retry.current.failures, error));
      },
    );
  };
  useEffect(() => {
    // Connected between the first render and this effect: the `connected` event has been and gone.
    if (live.state === 'open') readBalance();
    return () => {
      latest.supersede();
      clearTimeout(retry.current.timer);
    };
  }, [session, live]);
  useLive('connected', () => readBalance());
  useLive('wallet', (w) => {
    latest.supersede();
    clearTimeout(retry.current.timer);
    setBalance(money(w.available, w.currency));
  });
  return (
    <header class="bar">
      <a class="brand" href="#/jobs">
        gigwire
      </a>
      <nav aria-label="Main">
        <a href="#/jobs">Jobs</a>
        <a href="#/contracts">Contracts</a>
        <a href="#/wallet">Wallet{balance ? ` ${balance}` : ''}</a>
        <a href="#/rooms">Messages</a>
        <a href="#/people">People</a>
        <a href="#/profile">Profile</a>
        <Bell />
      </nav>
      <span class="who">
        <span class={online ? 'dot on' : 'dot'} role="img" aria-label={online ? 'connected' : 'offline'} />{' '}
        {user.username}
      </span>
      <button
        type="button"
        class="link"
        onClick={() => {
          // At once, not once the server has answered: whoever signs in next here does not land on
          // the screen this user left (a sign-in shows the screen the address names).
          location.hash = '#/signin';
          void session.signOut();
        }}
      >
        Sign out
      </button>
    </header>
  );
}
