/** My profile: name, location, bio, and the worker profile (skills, hourly rate, availability). */
import { useEffect, useState } from 'preact/hooks';
import { type Me, splitList } from '../api.js';
import {
  AmountField,
  FormEnd,
  SelectField,
  TextField,
  toMinor,
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

export function Profile() {
  const { session } = useApp();
  const [me, setMe] = useState<Me>();
  const [form, setForm] = useState({
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
  const { failure, busy, submit, setFailure } = useAction();
  const show = (user: Me) => {
    setMe(user);
    const worker = user.workerProfile;
    setForm({
      displayName: user.displayName ?? '',
      location: user.location ?? '',
      bio: user.bio ?? '',
      skills: worker?.skills.join(', ') ?? '',
      rate: worker?.hourlyRate ? String(worker.hourlyRate.amount / 100) : '',
      availability: worker?.availability ?? '',
    });
  };
  const currency = usePlatformCurrency();
  useEffect(() => {
    session.api.me().then(show, (error) => setFailure({ message: String(error), fields: {} }));
  }, [session]);
  const isWorker = me?.roles.includes('worker') ?? false;
  const save = submit(async () => {
    setSaved(false);
    const updated = await session.api.updateMe({
      displayName: form.displayName.trim() || null,
      location: form.location.trim() || null,
      bio: form.bio || null,
      ...(isWorker
        ? {
            skills: splitList(form.skills),
            hourlyRate: form.rate.trim() === '' ? null : { amount: toMinor(form.rate), currency },
            availability:
              form.availability === '' ? null : (form.availability as 'available' | 'busy' | 'unavailable'),
          }
        : {}),
    });
    show(updated);
    setSaved(true);
  });
  if (me === undefined) return <p>Loading…</p>;
  return (
    <form class="card narrow" onSubmit={save} aria-labelledby="profile-title">
      <h1 id="profile-title">My profile</h1>
      <p class="meta">
        {me.username} · {me.email} · {me.roles.join(', ')}
      </p>
      <TextField label="Display name" name="displayName" {...bind('displayName')} failure={failure} />
      <TextField label="Location" name="location" {...bind('location')} failure={failure} />
      <TextField label="About me" name="bio" rows={3} {...bind('bio')} failure={failure} />
      {isWorker ? (
        <fieldset>
          <legend>Worker profile</legend>
          <TextField label="Skills (comma-separated)" name="skills" {...bind('skills')} failure={failure} />
          <AmountField
            label={`Hourly rate (${currency})`}
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
