/**
 * Sign up (with the roles chosen at sign-up) and sign in; the pages the mails link to: confirm an
 * email address, choose a new password, ask for a reset link.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { auth, isApiError } from '../api.js';
import { isPassing } from '../outcome.js';
import type { Session, SignedOutReason } from '../session.js';
import {
  ErrorNote,
  type Failure,
  FormEnd,
  failureOf,
  LoadFailed,
  outcomeUnknown,
  TextField,
  UNREACHABLE,
  useAction,
} from '../ui.js';

const SIGNED_OUT_NOTES: Record<SignedOutReason, string> = {
  'session-ended': 'Your session has ended (signed out elsewhere, or it expired). Please sign in again.',
  'copied-tab':
    'This tab is a copy of another signed-in tab, which keeps that session. Sign in to give this tab its own.',
  'password-changed':
    'Your password is changed, and every session (this one too) has been signed out. Sign in with the new password.',
  'signed-out-everywhere':
    'You are signed out everywhere: every session on every device has ended. Sign in again to continue here.',
};

/** A hash that names a screen of the signed-in app: anything but none, `#/signin` and `#/signup`. */
const SCREEN_LINK = /^#\/(?!(?:signin|signup)\/*$)[^/]/;

export function SignIn({ session }: { session: Session }) {
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const { failure, busy, submit } = useAction('read');
  const signIn = submit(async () => {
    await session.signIn(login, password);
    // A screen asked for while signed out (a mailed link, `/#/contracts/…`, opens a new tab, which
    // is always signed out; a session that ended on a screen) is shown; the sign-in's own, the board.
    if (!SCREEN_LINK.test(location.hash)) location.hash = '#/jobs';
  });
  return (
    <form class="card narrow" onSubmit={signIn} aria-labelledby="signin-title">
      <h1 id="signin-title">Sign in</h1>
      {session.signedOutReason === undefined ? null : (
        <p class="note" role="status">
          {SIGNED_OUT_NOTES[session.signedOutReason]}
        </p>
      )}
      <TextField
        label="Username or email"
        name="login"
        autoComplete="username"
        required
        value={login}
        onValue={setLogin}
        failure={failure}
      />
      <TextField
        label="Password"
        name="password"
        type="password"
        autoComplete="current-password"
        required
        value={password}
        onValue={setPassword}
        failure={failure}
      />
      <FormEnd failure={failure} busy={busy} label="Sign in" />
      <p>
        New here? <a href="#/signup">Create an account</a> ·{' '}
        <a href="/forgot-password">Forgot your password?</a>
      </p>
    </form>
  );
}

const ROLES = [
  ['hirer', 'Hire (post jobs)'],
  ['worker', 'Work (bid on jobs)'],
  ['both', 'Both'],
] as const;

export function SignUp({ session }: { session: Session }) {
  const [username, setUsername] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<(typeof ROLES)[number][0]>('worker');
  const { failure, busy, submit } = useAction();
  /**
   * The username and password this form registered (`done`: the server said so) or sent without an
   * answer. Pressed again after the account was made but its sign-in failed (no answer, a blip),
   * the form signs in rather than registering again: the server answers 202 to the same
   * registration sent again, but 409 "taken" once the email was corrected meanwhile, say, which
   * told the user their own new username was someone else's.
   */
  const registered = useRef<{ username: string; password: string; done: boolean }>(undefined);
  const signUp = submit(async () => {
    const before = registered.current;
    const same =
      before !== undefined &&
      before.username.toLowerCase() === username.trim().toLowerCase() &&
      before.password === password;
    if (!(same && before.done)) {
      if (!same) registered.current = { username: username.trim(), password, done: false };
      try {
        await auth.register({
          username,
          email,
          password,
          roles: role === 'both' ? ['hirer', 'worker'] : [role],
        });
      } catch (error) {
        const taken = isApiError(error) && error.status === 409 && error.fields.username !== undefined;
        if (!(same && taken)) {
          // Refused: nothing was made (only no answer may have made the account).
          if (!outcomeUnknown(error)) registered.current = undefined;
          throw error;
        }
        // Taken, after this form sent the same username and password without an answer: most
        // likely by that very registration. Its sign-in says (or the refusal stays).
        await session.signIn(username, password).catch((signInError: unknown) => {
          throw outcomeUnknown(signInError) ? signInError : error;
        });
        location.hash = role === 'hirer' ? '#/wallet' : '#/jobs';
        return;
      }
      if (registered.current !== undefined) registered.current.done = true;
    }
    // Registration answers alike for new and taken emails (no account probing): sign in next.
    await session.signIn(username, password);
    location.hash = role === 'hirer' ? '#/wallet' : '#/jobs';
  });
  return (
    <form class="card narrow" onSubmit={signUp} aria-labelledby="signup-title">
      <h1 id="signup-title">Create an account</h1>
      <TextField
        label="Username"
        name="username"
        hint="3–32 letters, digits, _ . -"
        autoComplete="username"
        required
        value={username}
        onValue={setUsername}
        failure={failure}
      />
      <TextField
        label="Email"
        name="email"
        type="email"
        autoComplete="email"
        required
        value={email}
        onValue={setEmail}
        failure={failure}
      />
      <TextField
        label="Password"
        name="password"
        hint="At least 10 characters"
        type="password"
        autoComplete="new-password"
        required
        value={password}
        onValue={setPassword}
        failure={failure}
      />
      <fieldset>
        <legend>I want to</legend>
        {ROLES.map(([value, text]) => (
          <label class="inline" key={value}>
            <input
              type="radio"
              name="role"
              value={value}
              checked={role === value}
              onChange={() => setRole(value)}
            />{' '}
            {text}
          </label>
        ))}
      </fieldset>
      <FormEnd failure={failure} busy={busy} label="Sign up" />
      <p>
        Have an account? <a href="#/signin">Sign in</a>
      </p>
    </form>
  );
}

/**
 * The `?token=` of a mailed link, read once and taken out of the address bar at once (and so out
 * of the history and of what a reload would send again); undefined when the link has none.
 */
function useLinkToken(): string | undefined {
  const [token] = useState(() => {
    const value = new URLSearchParams(location.search).get('token');
    if (location.search !== '' || location.hash !== '') history.replaceState(null, '', location.pathname);
    return value === null || value === '' ? undefined : value;
  });
  return token;
}

const LINK_REFUSED = 'This link is invalid, has expired or was already used.';

/** A refused mailed token reads as what it is; other failures (offline, weak password) as usual. */
function linkFailure(error: unknown): Failure {
  const failure = failureOf(error);
  if (isApiError(error) && error.status === 400 && failure.fields.newPassword === undefined)
    return { message: LINK_REFUSED, fields: {} };
  return failure;
}

const NoToken = () => (
  <p class="error" role="alert">
    This link is incomplete: open it from the mail again.
  </p>
);

/**
 * /verify-email?token=…: confirms the address at once. The token has left the address bar, so a
 * reload cannot ask again: an attempt that got no answer (offline, a 5xx, 429) says why with "Try
 * again" (the server answers a token presented again after it confirmed the address with 204); a
 * refused link (400) is final.
 */
export function VerifyEmail() {
  const token = useLinkToken();
  const [outcome, setOutcome] = useState<'working' | 'done' | { failure: Failure; passing: boolean }>(
    'working',
  );
  const attempt = () => {
    if (token === undefined) return;
    setOutcome('working');
    auth.verifyEmail(token).then(
      () => setOutcome('done'),
      (error) => setOutcome({ failure: linkFailure(error), passing: isPassing(error) }),
    );
  };
  useEffect(attempt, [token]);
  return (
    <section class="card narrow" aria-labelledby="verify-title">
      <h1 id="verify-title">Confirm your email address</h1>
      {token === undefined ? (
        <NoToken />
      ) : outcome === 'working' ? (
        <p role="status">Confirming…</p>
      ) : outcome === 'done' ? (
        <p role="status">Your email address is confirmed.</p>
      ) : outcome.passing ? (
        <LoadFailed failure={outcome.failure} retry={attempt} />
      ) : (
        <ErrorNote failure={outcome.failure} />
      )}
      <p>
        <a href="/">Continue to gigwire</a>
      </p>
    </section>
  );
}

/** /reset-password?token=…: a new password for the account; every session of it ends. */
export function ResetPassword() {
  const token = useLinkToken();
  const [password, setPassword] = useState('');
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<Failure>();
  /**
   * An attempt got no answer (or a 5xx): it may have changed the password and spent the link, so a
   * later attempt refused for the link is no proof that the password is unchanged.
   */
  const [maybeChanged, setMaybeChanged] = useState(false);
  const reset = async (event: Event) => {
    event.preventDefault();
    if (token === undefined || busy) return;
    setBusy(true);
    setFailure(undefined);
    try {
      await auth.resetPassword(token, password);
      setDone(true);
    } catch (error) {
      if (outcomeUnknown(error)) {
        setMaybeChanged(true);
        setFailure({
          message: `${UNREACHABLE} Your password may have been changed: press "Set new password" again, or sign in with the new one.`,
          fields: {},
        });
        return;
      }
      const refused = linkFailure(error);
      setFailure(
        maybeChanged && refused.message === LINK_REFUSED
          ? {
              message:
                'This link is used up, perhaps by your earlier attempt whose answer was lost: your password may already be changed. Sign in with the password you set then; if it does not work, ask for a new link.',
              fields: {},
            }
          : refused,
      );
    } finally {
      setBusy(false);
    }
  };
  if (done) {
    return (
      <section class="card narrow" aria-labelledby="reset-title">
        <h1 id="reset-title">Choose a new password</h1>
        <p role="status">Your password is changed, and every session was signed out.</p>
        <p>
          <a href="/#/signin">Sign in with the new password</a>
        </p>
      </section>
    );
  }
  return (
    <form class="card narrow" onSubmit={reset} aria-labelledby="reset-title">
      <h1 id="reset-title">Choose a new password</h1>
      {token === undefined ? (
        <NoToken />
      ) : (
        <>
          <TextField
            label="New password"
            name="newPassword"
            hint="At least 10 characters"
            type="password"
            autoComplete="new-password"
            required
            value={password}
            onValue={setPassword}
            failure={failure}
          />
          <FormEnd failure={failure} busy={busy} label="Set new password" />
        </>
      )}
      {maybeChanged ? (
        <p>
          <a href="/#/signin">Sign in</a>
        </p>
      ) : null}
      <p>
        <a href="/forgot-password">Ask for a new link</a>
      </p>
    </form>
  );
}

/** /forgot-password: mails a reset link (the server answers alike whether the address is known). */
export function ForgotPassword() {
  const [email, setEmail] = useState('');
  const [sent, setSent] = useState(false);
  const { failure, busy, submit } = useAction();
  const ask = submit(async () => {
    await auth.forgotPassword(email);
    setSent(true);
  });
  return (
    <form class="card narrow" onSubmit={ask} aria-labelledby="forgot-title">
      <h1 id="forgot-title">Reset your password</h1>
      <TextField
        label="Email"
        name="email"
        type="email"
        autoComplete="email"
        required
        value={email}
        onValue={setEmail}
        failure={failure}
      />
      {sent ? (
        <p role="status">
          If the address has an account, a link is on its way. It works once, for 30 minutes.
        </p>
      ) : null}
      <FormEnd failure={failure} busy={busy} label="Mail me a link" />
      <p>
        <a href="/#/signin">Back to sign in</a>
      </p>
    </form>
  );
}
