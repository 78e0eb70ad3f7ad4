/**
 * My profile: name, location, bio, and the worker profile (skills, hourly rate, availability); and
 * its Security section (`#/profile/security`, where the security notifications link): change the
 * password, sign out everywhere. Both end every session, this tab's too: the sign-in screen says so.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { isApiError, type Me, splitList } from '../api.js';
import { verificationResendNote } from '../outcome.js';
import {
  AmountField,
  amountOf,
  currencyToSend,
  ErrorNote,
  type Failure,
  FormEnd,
  FormError,
  failureOf,
  SelectField,
  TextField,
  useAction,
  useApp,
  usePlatformCurrency,
} from '../ui.js';

const AVAILABILITY = [
  { value: '', label: 'Not set' },
  { value: 'available', label: 'Available' },
  { value: 'busy', label: 'Busy' },
  { value: 'unavailable', label: 'Unavailable' },
] as const;

export function Profile({ section }: { section?: string | undefined }) {
  return (
    <>
      <ProfileForm />
      <Security focus={section === 'security'} />
    </>
  );
}

type ProfileFormValues = ReturnType<typeof formOf>;

/** The profile form's fields as `user` has them. */
const formOf = (user: Me) => {
  const worker = user.workerProfile;
  return {
    displayName: user.displayName ?? '',
    location: user.location ?? '',
    bio: user.bio ?? '',
    skills: worker?.skills.join(', ') ?? '',
    rate: worker?.hourlyRate ? String(worker.hourlyRate.amount / 100) : '',
    availability: worker?.availability ?? '',
  };
};

function ProfileForm() {
  const { session } = useApp();
  const [me, setMe] = useState<Me>();
  const [loadFailure, setLoadFailure] = useState<Failure>();
  const [loading, setLoading] = useState(false);
  const [form, setForm] = useState<ProfileFormValues>({
    displayName: '',
    location: '',
    bio: '',
    skills: '',
    rate: '',
    availability: '',
  });
  const bind = (name: keyof typeof form) => ({
    value: form[name],
    onValue: (value: string) => setForm((shown) => ({ ...shown, [name]: value })),
  });
  const [saved, setSaved] = useState(false);
  const { failure, busy, submit } = useAction();
  const show = (user: Me) => {
    setMe(user);
    setForm(formOf(user));
  };
  const currency = usePlatformCurrency();
  const load = () => {
    setLoading(true);
    session.api
      .me()
      .then(
        (user) => {
          show(user);
          setLoadFailure(undefined);
        },
        (error) => setLoadFailure(failureOf(error)),
      )
      .finally(() => setLoading(false));
  };
  useEffect(load, [session]);
  const isWorker = me?.roles.includes('worker') ?? false;
  const save = submit(async () => {
    setSaved(false);
    const sent = form;
    const updated = await session.api.updateMe({
      displayName: form.displayName.trim() || null,
      location: form.location.trim() || null,
      bio: form.bio || null,
      ...(isWorker
        ? {
            skills: splitList(form.skills),
            hourlyRate:
              form.rate.trim() === ''
                ? null
                : {
                    amount: amountOf(form.rate, 'hourlyRate.amount'),
                    currency: await currencyToSend(session),
                  },
            availability:
              form.availability === '' ? null : (form.availability as 'available' | 'busy' | 'unavailable'),
          }
        : {}),
    });
    setMe(updated);
    // The saved values, as the server has them, in the fields left alone while it was sent: what
    // was typed meanwhile (a slow network) stays, not replaced by what was sent.
    const stored = formOf(updated);
    setForm((shown) => {
      const next = { ...shown };
      for (const name of Object.keys(stored) as (keyof ProfileFormValues)[]) {
        if (shown[name] === sent[name]) next[name] = stored[name];
      }
      return next;
    });
    setSaved(true);
  });
  if (me === undefined) {
    if (loadFailure === undefined) return <p>Loading…</p>;
    return (
      <section class="card narrow" aria-labelledby="profile-title">
        <h1 id="profile-title">My profile</h1>
        <ErrorNote failure={loadFailure} />
        <button type="button" disabled={loading} onClick={load}>
          Try again
        </button>
      </section>
    );
  }
  return (
    <form class="card narrow" onSubmit={save} aria-labelledby="profile-title">
      <h1 id="profile-title">My profile</h1>
      <p class="meta">
        {me.username} · {me.email} · {me.roles.join(', ')}
      </p>
      {me.emailVerified ? null : <VerifyNotice email={me.email} />}
      <TextField label="Display name" name="displayName" {...bind('displayName')} failure={failure} />
      <TextField label="Location" name="location" {...bind('location')} failure={failure} />
      <TextField label="About me" name="bio" rows={3} {...bind('bio')} failure={failure} />
      {isWorker ? (
        <fieldset>
          <legend>Worker profile</legend>
          <TextField label="Skills (comma-separated)" name="skills" {...bind('skills')} failure={failure} />
          <AmountField
            label={currency === undefined ? 'Hourly rate' : `Hourly rate (${currency})`}
            required={false}
            name="hourlyRate.amount"
            {...bind('rate')}
            failure={failure}
          />
          <SelectField
            label="Availability"
            name="availability"
            {...bind('availability')}
            options={AVAILABILITY}
            failure={failure}
          />
        </fieldset>
      ) : null}
      {saved ? <p role="status">Saved.</p> : null}
      <FormEnd failure={failure} busy={busy} label="Save profile" />
    </form>
  );
}

/**
 * An unconfirmed address: says so (no notification is mailed to it) and "Send a new confirmation
 * link" (POST /v1/auth/resend-verification), which says what happened: a link on its way (one a
 * day at most), a 429 with how long to wait, or why it failed. One request at a time.
 */
function VerifyNotice({ email }: { email: string }) {
  const { session } = useApp();
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState<{ sent: boolean; message: string }>();
  const running = useRef(false);
  const resend = () => {
    if (running.current) return;
    running.current = true;
    setBusy(true);
    setNote(undefined);
    session.api
      .resendVerification()
      .then(
        () => setNote(verificationResendNote(email)),
        (error: unknown) => setNote(verificationResendNote(email, error)),
      )
      .finally(() => {
        running.current = false;
        setBusy(false);
      });
  };
  return (
    <div class="note">
      <p>
        Your email address is not confirmed yet, so no notifications are mailed to it. Open the link of the
        confirmation mail, or ask for a new one.
      </p>
      <button type="button" disabled={busy} onClick={resend}>
        {busy ? 'Sending…' : 'Send a new confirmation link'}
      </button>
      {note === undefined ? null : note.sent ? (
        <p role="status">{note.message}</p>
      ) : (
        <p class="error" role="alert">
          {note.message}
        </p>
      )}
    </div>
  );
}

/**
 * Change the password (PUT /v1/auth/password) and sign out everywhere (POST /v1/auth/logout-all).
 * Both end every session of the account, this tab's too: the sign-in screen then says which.
 */
function Security({ focus }: { focus: boolean }) {
  const { session } = useApp();
  const heading = useRef<HTMLHeadingElement>(null);
  // Reached from a security notification (#/profile/security): this section, not the top of the page.
  useEffect(() => {
    if (!focus) return;
    // After the shell has moved focus to the top of the new screen.
    const timer = setTimeout(() => {
      heading.current?.scrollIntoView({ block: 'start' });
      heading.current?.focus({ preventScroll: true });
    }, 0);
    return () => clearTimeout(timer);
  }, [focus]);
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const change = useAction();
  const everywhere = useAction();
  const [confirming, setConfirming] = useState(false);
  const changePassword = change.submit(async () => {
    if (next !== again) throw new FormError({ newPasswordAgain: 'The two new passwords differ.' });
    try {
      await session.api.changePassword(current, next);
    } catch (error) {
      if (isApiError(error) && error.status === 403) {
        throw new FormError({ currentPassword: 'This is not your current password.' });
      }
      throw error;
    }
    session.endedEverywhere('password-changed');
    location.hash = '#/signin';
  });
  const signOutEverywhere = () =>
    everywhere.run(async () => {
      await session.api.logoutAll();
      session.endedEverywhere('signed-out-everywhere');
      location.hash = '#/signin';
    });
  return (
    <section class="card narrow" id="security" aria-labelledby="security-title">
      <h2 id="security-title" ref={heading} tabIndex={-1}>
        Security
      </h2>
      <form onSubmit={changePassword} aria-labelledby="password-title">
        <h3 id="password-title">Change password</h3>
        <p class="meta">
          Every session of your account ends, on every device and in this tab too: you sign in again with the
          new password.
        </p>
        <TextField
          label="Current password"
          name="currentPassword"
          type="password"
          autoComplete="current-password"
          required
          value={current}
          onValue={setCurrent}
          failure={change.failure}
        />
        <TextField
          label="New password"
          name="newPassword"
          type="password"
          autoComplete="new-password"
          hint="At least 10 characters"
          required
          value={next}
          onValue={setNext}
          failure={change.failure}
        />
        <TextField
          label="New password again"
          name="newPasswordAgain"
          type="password"
          autoComplete="new-password"
          required
          value={again}
          onValue={setAgain}
          failure={change.failure}
        />
        <FormEnd failure={change.failure} busy={change.busy} label="Change password" />
      </form>
      <h3 id="everywhere-title">Sign out everywhere</h3>
      <p class="meta">
        Ends every session of your account: other devices and browsers, and this tab. Use it if you did not
        recognise a sign-in.
      </p>
      {confirming ? (
        <div class="row wrap">
          <strong>Sign out of every session, this one too?</strong>
          <button type="button" disabled={everywhere.busy} onClick={signOutEverywhere}>
            Yes, sign out everywhere
          </button>
          <button type="button" class="link" onClick={() => setConfirming(false)}>
            Cancel
          </button>
        </div>
      ) : (
        <button type="button" onClick={() => setConfirming(true)}>
          Sign out everywhere…
        </button>
      )}
      <ErrorNote failure={everywhere.failure} />
    </section>
  );
}
