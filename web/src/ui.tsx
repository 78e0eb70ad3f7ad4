/** Small shared pieces: the app context, hash routing, form fields with their errors, money. */
import type { ComponentChildren, InputHTMLAttributes } from 'preact';
import { createContext } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import type { ClientEvents, ClientState, GigwireClient } from '../../protocol/src/client/index.js';
import type { Me } from './api.js';
import { type CallKind, type Failure, failureOf, RetryKeys, withKey } from './outcome.js';
import type { Session } from './session.js';

export {
  amountOf,
  type Failure,
  FormError,
  failureOf,
  outcomeUnknown,
  retryDelay,
  UNREACHABLE,
} from './outcome.js';

export interface AppContext {
  readonly session: Session;
  readonly live: GigwireClient;
  readonly user: Me;
}

export const Ctx = createContext<AppContext | undefined>(undefined);

export function useApp(): AppContext {
  const value = useContext(Ctx);
  if (value === undefined) throw new Error('useApp outside the signed-in app');
  return value;
}

/** Subscribes to an SDK event for the life of the component. */
export function useLive<E extends keyof ClientEvents>(
  event: E,
  handler: (payload: ClientEvents[E]) => void,
  deps: readonly unknown[] = [],
): void {
  const { live } = useApp();
  useEffect(() => live.on(event, handler), [live, event, ...deps]);
}

/**
 * The live client's connection state, kept current. Read again once listening: a socket that
 * opened (or dropped) between the first render and the effect fired its event unheard, and the
 * screen would say "offline" or "reconnecting…" for as long as the socket then stayed up.
 */
export function useLiveState(): ClientState {
  const { live } = useApp();
  const [state, setState] = useState(live.state);
  useEffect(() => {
    const update = () => setState(live.state);
    const stop = [live.on('connected', update), live.on('disconnected', update)];
    update();
    return () => {
      for (const off of stop) off();
    };
  }, [live]);
  return state;
}

/** `#/jobs/123` → `['jobs', '123']`. */
export function useRoute(): string[] {
  const read = () =>
    location.hash
      .replace(/^#\/?/, '')
      .split('/')
      .filter((part) => part !== '');
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const update = () => setRoute(read());
    addEventListener('hashchange', update);
    // Effects run after the first paint: a hash changed in between (a link followed, or a script
    // navigating, as soon as the screen showed) fired no event this listener heard. Read it again.
    update();
    return () => removeEventListener('hashchange', update);
  }, []);
  return route;
}

export const go = (path: string) => {
  location.hash = path;
};

export function ErrorNote({ failure }: { failure: Failure | undefined }) {
  if (failure === undefined) return null;
  return (
    <p class="error" role="alert">
      {failure.message}
    </p>
  );
}

/**
 * A screen whose first read failed (no answer, a 503, a 429 while the socket stays up): why, and
 * "Try again", in place of "Loading…", which it is not doing any more (nothing reads it again
 * before the next reconnect, which may never come when only REST is refused).
 */
export function LoadFailed({ failure, retry }: { failure: Failure; retry: () => void }) {
  return (
    <div class="row wrap">
      <ErrorNote failure={failure} />
      <button type="button" onClick={retry}>
        Try again
      </button>
    </div>
  );
}

let fieldCounter = 0;

/** A labelled control with its field error under it (aria-describedby links the two). */
export function Field(props: {
  label: string;
  name: string;
  failure?: Failure | undefined;
  hint?: string;
  children: (id: string, describedBy: string | undefined) => ComponentChildren;
}) {
  const [id] = useState(() => `f${++fieldCounter}-${props.name}`);
  const error = props.failure?.fields[props.name];
  const describedBy = error === undefined ? undefined : `${id}-error`;
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      {props.children(id, describedBy)}
      {props.hint === undefined ? null : <small>{props.hint}</small>}
      {error === undefined ? null : (
        <small class="field-error" id={describedBy}>
          {error}
        </small>
      )}
    </div>
  );
}

/** The input attributes the app's forms use (Preact's full attribute types are a union per input type). */
interface InputProps {
  type?: 'text' | 'email' | 'password' | 'number' | 'search';
  autoComplete?: string;
  inputMode?: 'decimal' | 'numeric' | 'text';
  required?: boolean;
  min?: number;
  max?: number;
  maxLength?: number;
}

/** A labelled text input (or textarea with `rows`) bound to a string, with its field error. */
export function TextField({
  label,
  name,
  value,
  onValue,
  failure,
  hint,
  rows,
  ...input
}: InputProps & {
  label: string;
  name: string;
  value: string;
  onValue: (value: string) => void;
  failure?: Failure | undefined;
  hint?: string;
  rows?: number;
}) {
  return (
    <Field label={label} name={name} failure={failure} {...(hint === undefined ? {} : { hint })}>
      {(id, described) =>
        rows === undefined ? (
          <input
            // Preact types input attributes as a union by `type`; these few are valid for every type.
            {...(input as InputHTMLAttributes<HTMLInputElement>)}
            id={id}
            name={name}
            value={value}
            aria-describedby={described}
            onInput={(e) => onValue(e.currentTarget.value)}
          />
        ) : (
          <textarea
            id={id}
            name={name}
            rows={rows}
            required={input.required}
            value={value}
            aria-describedby={described}
            onInput={(e) => onValue(e.currentTarget.value)}
          />
        )
      }
    </Field>
  );
}

/** A labelled select bound to a string. */
export function SelectField(props: {
  label: string;
  name: string;
  value: string;
  onValue: (value: string) => void;
  options: readonly { value: string; label: string }[];
  failure?: Failure | undefined;
}) {
  return (
    <Field label={props.label} name={props.name} failure={props.failure}>
      {(id, described) => (
        <select
          id={id}
          value={props.value}
          aria-describedby={described}
          onChange={(e) => props.onValue(e.currentTarget.value)}
        >
          {props.options.map((option) => (
            <option key={option.value} value={option.value}>
              {option.label}
            </option>
          ))}
        </select>
      )}
    </Field>
  );
}

/** An amount in major units of the platform's currency, typed as text, sent as minor units (amountOf). */
export function AmountField({
  label,
  required = true,
  ...field
}: {
  label?: string;
  required?: boolean;
  name: string;
  value: string;
  onValue: (value: string) => void;
  failure?: Failure | undefined;
}) {
  const currency = usePlatformCurrency();
  return (
    <TextField
      label={label ?? (currency === undefined ? 'Amount' : `Amount (${currency})`)}
      inputMode="decimal"
      required={required}
      {...field}
    />
  );
}

/** The end of every form: the server's error, then the submit button. */
export function FormEnd({
  failure,
  busy,
  label,
}: {
  failure: Failure | undefined;
  busy: boolean;
  label: string;
}) {
  return (
    <>
      <ErrorNote failure={failure} />
      <button type="submit" disabled={busy}>
        {label}
      </button>
    </>
  );
}

/**
 * Runs a user action: busy while it runs (a second start meanwhile is ignored: a double click runs
 * it once), its failure (problem+json) kept for the form to show. `kind: 'read'` for searches: no
 * answer then changed nothing, so the message does not say it may have been applied.
 */
export function useAction(kind: CallKind = 'command') {
  const [failure, setFailure] = useState<Failure>();
  const [busy, setBusy] = useState(false);
  // The state updates on the next render; two clicks in one task both see busy false.
  const running = useRef(false);
  const run = async (work: () => Promise<unknown>): Promise<void> => {
    if (running.current) return;
    running.current = true;
    setBusy(true);
    setFailure(undefined);
    try {
      await work();
    } catch (error) {
      setFailure(failureOf(error, kind));
    } finally {
      running.current = false;
      setBusy(false);
    }
  };
  /** A form's onSubmit. */
  const submit = (work: () => Promise<unknown>) => (event: Event) => {
    event.preventDefault();
    void run(work);
  };
  return { failure, busy, run, submit, setFailure };
}

/**
 * Which answer is the newest of a value read over REST and also pushed whole (a balance, a count):
 * `begin()` as a read starts returns whether its answer may still be shown; `supersede()` when a
 * push brings the whole value (every read in flight may be older than it). A later read also
 * supersedes an earlier one. A read that lost is dropped, never shown over a newer value.
 */
export class Latest {
  private generation = 0;
  begin(): () => boolean {
    const mine = ++this.generation;
    return () => mine === this.generation;
  }
  supersede(): void {
    this.generation += 1;
  }
  /** Whether no read began (nor a supersede came) since this call: for a follow-up of the latest. */
  current(): () => boolean {
    const mine = this.generation;
    return () => mine === this.generation;
  }
}

const currencies = new WeakMap<Session, Promise<string>>();

/** The platform's currency (the server's CURRENCY, which the wallet names), read once per session. */
export function platformCurrency(session: Session): Promise<string> {
  let known = currencies.get(session);
  if (known === undefined) {
    known = session.api.wallet().then((wallet) => wallet.currency);
    // A failed read is not kept: the next use asks again.
    known.catch(() => currencies.delete(session));
    currencies.set(session, known);
  }
  return known;
}

/**
 * The platform's currency for a command about to be sent. A failed read says only what it is (no
 * answer: "Can't reach gigwire…"): a command form's failure otherwise reads as a command's, "it may
 * have been applied", when nothing was sent.
 */
export async function currencyToSend(session: Session): Promise<string> {
  try {
    return await platformCurrency(session);
  } catch (error) {
    throw new Error(failureOf(error, 'read').message);
  }
}

/** The platform's currency; undefined until it is known. */
export function usePlatformCurrency(): string | undefined {
  const { session } = useApp();
  const [currency, setCurrency] = useState<string>();
  useEffect(() => {
    let live = true;
    platformCurrency(session).then(
      (value) => live && setCurrency(value),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [session]);
  return currency;
}

/** An amount in minor units; without a currency (not known yet) a plain number with two decimals. */
export function money(amount: number, currency: string | undefined): string {
  return currency === undefined
    ? (amount / 100).toFixed(2)
    : new Intl.NumberFormat('en', { style: 'currency', currency }).format(amount / 100);
}

/**
 * A form's Idempotency-Key while the outcome of its last submit is unknown: `keyed(content, call)`
 * calls with the kept key when `content` is what was sent then (a retry replays instead of doing it
 * twice), with a fresh one otherwise.
 */
export function useRetryKeys() {
  const keys = useRef<RetryKeys | undefined>(undefined);
  keys.current ??= new RetryKeys();
  const current = keys.current;
  return async <T,>(
    content: unknown,
    call: (options: { idempotencyKey?: string }) => Promise<T>,
  ): Promise<T> => {
    const text = JSON.stringify(content);
    try {
      const result = await call(withKey(current.keyFor(text)));
      current.done();
      return result;
    } catch (error) {
      current.failed(text, error);
      throw error;
    }
  };
}

const names = new Map<string, Promise<string>>();

/** A user's username (cached for the page's life); the id until it is known. */
export function useUserName(userId: string | undefined): string {
  const { session, user } = useApp();
  const [name, setName] = useState('…');
  useEffect(() => {
    if (userId === undefined) return;
    if (userId === user.id) return setName('you');
    let promise = names.get(userId);
    if (promise === undefined) {
      const asked = session.api.user(userId).then(
        (profile) => profile.username,
        () => {
          // Not kept: the next screen that names this user asks again.
          if (names.get(userId) === asked) names.delete(userId);
          return userId.slice(0, 8);
        },
      );
      promise = asked;
      names.set(userId, promise);
    }
    let live = true;
    promise.then((value) => live && setName(value));
    return () => {
      live = false;
    };
  }, [userId, session, user.id]);
  return name;
}

export function Name({ id }: { id: string }) {
  return <>{useUserName(id)}</>;
}

/** 1–5 stars, read out as "4 of 5 stars". */
export const Stars = ({ rating }: { rating: number }) => (
  <span role="img" aria-label={`${rating} of 5 stars`}>
    {'★'.repeat(rating)}
    {'☆'.repeat(5 - rating)}
  </span>
);

export const when = (iso: string) => new Date(iso).toLocaleString();
