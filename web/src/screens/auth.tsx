/** Sign up (with the roles chosen at sign-up) and sign in. */
import { useState } from 'preact/hooks';
import { auth } from '../api.js';
import type { Session } from '../session.js';
import { FormEnd, TextField, useAction } from '../ui.js';

export function SignIn({ session }: { session: Session }) {
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const { failure, busy, submit } = useAction();
  const signIn = submit(async () => {
    await session.signIn(login, password);
    location.hash = '#/jobs';
  });
  return (
    <form class="card narrow" onSubmit={signIn} aria-labelledby="signin-title">
      <h1 id="signin-title">Sign in</h1>
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
        New here? <a href="#/signup">Create an account</a>
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
  const signUp = submit(async () => {
    await auth.register({ username, email, password, roles: role === 'both' ? ['hirer', 'worker'] : [role] });
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
