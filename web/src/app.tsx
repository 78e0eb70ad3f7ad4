/** The shell: restores the session, opens the live connection, routes by hash, draws the nav. */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { GigwireClient } from '../../protocol/src/client/index.js';
import { connectLive } from './live.js';
import { SignIn, SignUp } from './screens/auth.js';
import { ContractList, ContractView } from './screens/contracts.js';
import { JobBoard, JobView, PostJob } from './screens/jobs.js';
import { Bell, Notifications } from './screens/notifications.js';
import { People, UserView } from './screens/people.js';
import { Profile } from './screens/profile.js';
import { Rooms, RoomView } from './screens/rooms.js';
import { WalletView } from './screens/wallet.js';
import { Session } from './session.js';
import { Ctx, money, useApp, useLive, useRoute } from './ui.js';

export function App() {
  const session = useMemo(() => new Session(), []);
  const [ready, setReady] = useState(false);
  const [, setVersion] = useState(0);
  useEffect(() => {
    const off = session.onChange(() => setVersion((v) => v + 1));
    session.restore().finally(() => setReady(true));
    return off;
  }, [session]);
  const route = useRoute();
  if (!ready) return <p class="center">Loading…</p>;
  if (session.user === undefined) {
    return (
      <main class="page">
        <header class="bar">
          <span class="brand">gigwire</span>
        </header>
        {route[0] === 'signup' ? <SignUp session={session} /> : <SignIn session={session} />}
      </main>
    );
  }
  return <SignedIn session={session} />;
}

function SignedIn({ session }: { session: Session }) {
  const user = session.user;
  // One socket per signed-in session; closed on sign-out (the server also closes it on logout).
  const [live, setLive] = useState<GigwireClient>();
  useEffect(() => {
    const client = connectLive(session);
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
  const [first, second] = route;
  if (first === 'jobs' && second === 'new') return <PostJob />;
  if (first === 'jobs' && second !== undefined) return <JobView jobId={second} key={second} />;
  if (first === 'contracts' && second !== undefined) return <ContractView contractId={second} key={second} />;
  if (first === 'contracts') return <ContractList />;
  if (first === 'wallet') return <WalletView />;
  if (first === 'notifications') return <Notifications />;
  if (first === 'profile') return <Profile />;
  if (first === 'people') return <People />;
  if (first === 'users' && second !== undefined) return <UserView userId={second} key={second} />;
  if (first === 'rooms' && second !== undefined) return <RoomView roomId={second} key={second} />;
  if (first === 'rooms') return <Rooms />;
  return <JobBoard />;
}

function Nav() {
  const { session, live, user } = useApp();
  const [online, setOnline] = useState(live.state === 'open');
  const [balance, setBalance] = useState<string>();
  useLive('connected', () => setOnline(true));
  useLive('disconnected', () => setOnline(false));
  useLive('wallet', (w) => setBalance(money(w.available, w.currency)));
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
        onClick={() => void session.signOut().then(() => (location.hash = '#/signin'))}
      >
        Sign out
      </button>
    </header>
  );
}
