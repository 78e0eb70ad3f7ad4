/**
 * The wallet: balance (live `wallet` pushes), sandbox top-up (watched until the provider settles
 * it), withdrawal, recent lines. Money parked at the balance limit (`parked`, in `GET /v1/wallet` and
 * in pushes) is shown when there is some, with what it means. A push from a node older than the
 * push's `parked` field leaves it out: then, while some is parked, it is read again. A top-up or withdrawal whose answer was lost
 * keeps its Idempotency-Key: submitting the same form again replays it instead of paying twice.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Wallet, WalletLine } from '../api.js';
import { MAYBE_APPLIED } from '../outcome.js';
import {
  AmountField,
  amountOf,
  ErrorNote,
  type Failure,
  FormEnd,
  failureOf,
  Latest,
  LoadFailed,
  money,
  outcomeUnknown,
  TextField,
  useAction,
  useApp,
  useLive,
  useRetryKeys,
  when,
} from '../ui.js';

type Balance = Pick<Wallet, 'currency' | 'available' | 'pending'>;

/** How often a pending top-up is asked about, and for how long at most. */
const WATCH_EVERY_MS = 1_500;
const WATCH_FOR_MS = 120_000;

export function WalletView() {
  const { session } = useApp();
  const [wallet, setWallet] = useState<Balance>();
  /** Received while the balance was at its limit (reads and pushes say it). */
  const [parked, setParked] = useState(0);
  const parkedNow = useRef(0);
  /** Undefined until the newest page is read: a list that could not be read is not "Nothing yet". */
  const [lines, setLines] = useState<WalletLine[]>();
  /** Why the newest page could not be read, while none has been (a balance read says it otherwise). */
  const [linesFailure, setLinesFailure] = useState<Failure>();
  const [amount, setAmount] = useState('100');
  const [card, setCard] = useState('4242424242424242');
  const [note, setNote] = useState<string>();
  const { failure, busy, submit } = useAction();
  const [loadFailure, setLoadFailure] = useState<Failure>();
  const [next, setNext] = useState<string | null>(null);
  const keyed = useRetryKeys();
  /** The top-up being watched until the provider settles it (one at a time). */
  const watching = useRef<{ id: string; stop: () => void } | undefined>(undefined);
  // The newest page again after a change; "Older" appends the next page: once (a second press while
  // it loads is ignored, or the page would be listed twice), and a failure is said.
  const older = useAction('read');
  // Reads of the newest page overlap (one per push): only the latest one's answer is shown, and an
  // older page asked before it is not appended to the list it replaced.
  const linesEpoch = useRef(0);
  const loadLines = (cursor?: string) => {
    const epoch = cursor === undefined ? ++linesEpoch.current : linesEpoch.current;
    return session.api.walletLines(cursor).then(
      (page) => {
        if (epoch !== linesEpoch.current) return;
        setLines((shown) => (cursor === undefined ? page.data : [...(shown ?? []), ...page.data]));
        setNext(page.nextCursor);
        if (cursor === undefined) setLinesFailure(undefined);
      },
      (error: unknown) => {
        if (cursor === undefined && epoch === linesEpoch.current) setLinesFailure(failureOf(error, 'read'));
        throw error;
      },
    );
  };
  /** The balance is pushed whole: a read answered after a newer push (or read) is not shown. */
  const [latest] = useState(() => new Latest());
  const load = () => {
    loadLines().catch(() => undefined);
    const newest = latest.begin();
    return session.api.wallet().then(
      (read) => {
        if (!newest()) return read;
        setWallet(read);
        parkedNow.current = read.parked;
        setParked(read.parked);
        setLoadFailure(undefined);
        return read;
      },
      (error) => {
        if (newest()) setLoadFailure(failureOf(error));
        return undefined;
      },
    );
  };
  useEffect(() => {
    void load();
    return () => watching.current?.stop();
  }, [session]);
  // Pushes sent while the socket was down are not replayed: read it all again after a reconnect.
  useLive('connected', (event) => {
    if (event.reconnected) void load();
  });
  // The whole balance is pushed after every change: the latest push is the truth.
  useLive('wallet', (pushed) => {
    latest.supersede();
    setWallet(pushed);
    setLoadFailure(undefined);
    if (pushed.parked !== undefined) {
      parkedNow.current = pushed.parked;
      setParked(pushed.parked);
      loadLines().catch(() => undefined);
    } else if (parkedNow.current > 0) {
      // A push of an older node, without `parked`: read what is still parked.
      void load();
    } else loadLines().catch(() => undefined);
  });
  // The provider's verdict on a top-up is also a notification: ask about the payment at once.
  useLive('notification', (notification) => {
    if (notification.kind.startsWith('payment.')) void check.current?.();
  });
  const check = useRef<(() => Promise<void>) | undefined>(undefined);
  const said = (status: 'succeeded' | 'failed', failureCode: string | undefined) =>
    setNote(
      status === 'succeeded'
        ? undefined
        : failureCode === 'currency_mismatch'
          ? "Charged in another currency than your wallet's: not added to your wallet; it is kept aside to be refunded."
          : failureCode === 'amount_mismatch'
            ? 'Charged for another amount than you asked: not added to your wallet; it is kept aside to be refunded.'
            : failureCode === 'provider_unavailable'
              ? 'The card provider could not be reached: nothing was charged. Try again later.'
              : 'Declined: nothing was charged.',
    );
  /** Asks about a pending top-up until it is settled (or 2 minutes have passed). */
  const watch = (paymentId: string) => {
    watching.current?.stop();
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const until = Date.now() + WATCH_FOR_MS;
    const once = async () => {
      if (stopped) return;
      clearTimeout(timer);
      const payment = await session.api.payment(paymentId).then(
        (answer) => answer.payment,
        () => undefined,
      );
      if (stopped) return;
      if (payment !== undefined && payment.status !== 'pending') {
        stop();
        said(payment.status, payment.failureCode);
        void load();
        return;
      }
      if (Date.now() < until) timer = setTimeout(() => void once(), WATCH_EVERY_MS);
    };
    const stop = () => {
      stopped = true;
      clearTimeout(timer);
      if (watching.current?.id === paymentId) watching.current = undefined;
      check.current = undefined;
    };
    watching.current = { id: paymentId, stop };
    check.current = once;
    timer = setTimeout(() => void once(), WATCH_EVERY_MS);
  };
  const topUp = submit(async () => {
    setNote(undefined);
    const input = { amount: amountOf(amount, 'amount'), card };
    try {
      const { payment } = await keyed(input, (key) => session.api.topUp(input, key));
      // Charged (or being charged): the amount goes, as after "Send money". A double click whose
      // second click comes after a quick answer would otherwise top up again, with a new key.
      if (payment.status !== 'failed') setAmount('');
      if (payment.status === 'pending') {
        setNote('Top-up pending: the balance updates when the card provider confirms.');
        watch(payment.id);
      } else said(payment.status, payment.failureCode);
    } catch (error) {
      if (!outcomeUnknown(error)) throw error;
      // It may have reached the server: show the balance as it is now, and keep the key.
      await load();
      throw new Error(MAYBE_APPLIED);
    }
  });
  return (
    <section aria-labelledby="wallet-title">
      <h1 id="wallet-title">Wallet</h1>
      {wallet === undefined && loadFailure !== undefined ? (
        <LoadFailed failure={loadFailure} retry={() => void load()} />
      ) : (
        <ErrorNote failure={loadFailure} />
      )}
      <p class="balance">
        Available:{' '}
        <strong data-testid="balance">
          {wallet === undefined ? '…' : money(wallet.available, wallet.currency)}
        </strong>
        {wallet !== undefined && wallet.pending > 0
          ? ` (${money(wallet.pending, wallet.currency)} pending)`
          : ''}
      </p>
      {wallet !== undefined && parked > 0 ? (
        <p class="parked" data-testid="parked">
          Parked: <strong>{money(parked, wallet.currency)}</strong> (received while your balance was at its
          limit; added by itself once there is room: spend or withdraw some)
        </p>
      ) : null}
      <form class="card" onSubmit={topUp} aria-labelledby="topup-title">
        <h2 id="topup-title">Top up</h2>
        <AmountField name="amount" value={amount} onValue={setAmount} failure={failure} />
        <TextField
          label="Card number"
          name="card"
          hint="Sandbox: 4242424242424242 succeeds, 4000000000000002 is declined"
          inputMode="numeric"
          autoComplete="off"
          required
          value={card}
          onValue={setCard}
          failure={failure}
        />
        <ErrorNote failure={failure} />
        {note === undefined ? null : <p role="status">{note}</p>}
        <button type="submit" disabled={busy}>
          Top up
        </button>
      </form>
      <Withdraw reload={load} />
      <h2>Recent activity</h2>
      {lines === undefined ? (
        // Never read: why, with "Try again" (the balance's own failure says it, and reads both again).
        linesFailure === undefined || loadFailure !== undefined ? null : (
          <LoadFailed failure={linesFailure} retry={() => void loadLines().catch(() => undefined)} />
        )
      ) : lines.length === 0 ? (
        <p>Nothing yet.</p>
      ) : null}
      <table class="lines">
        <caption class="sr-only">Wallet lines, newest first</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">What</th>
            <th scope="col">Amount</th>
          </tr>
        </thead>
        <tbody>
          {lines?.map((line) => (
            <tr key={line.transactionId}>
              <td>{when(line.createdAt)}</td>
              <td>{line.reason}</td>
              <td class={line.amount < 0 ? 'out' : 'in'}>{money(line.amount, wallet?.currency)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <ErrorNote failure={older.failure} />
      {next === null ? null : (
        <button
          type="button"
          class="link"
          disabled={older.busy}
          onClick={() => void older.run(() => loadLines(next))}
        >
          Older activity
        </button>
      )}
    </section>
  );
}

/** A payout to a bank account: reserved at once (pending), settled by the provider's webhook. */
function Withdraw({ reload }: { reload: () => Promise<unknown> }) {
  const { session } = useApp();
  const [amount, setAmount] = useState('');
  const [account, setAccount] = useState('');
  const [note, setNote] = useState<string>();
  const { failure, busy, submit } = useAction();
  const keyed = useRetryKeys();
  const withdraw = submit(async () => {
    setNote(undefined);
    const input = { amount: amountOf(amount, 'amount'), bankAccount: account };
    try {
      const { payment } = await keyed(input, (key) => session.api.withdraw(input, key));
      // Reserved: the amount goes, so a second click after a quick answer does not withdraw again.
      if (payment.status !== 'failed') setAmount('');
      setNote(
        payment.status === 'failed'
          ? 'Withdrawal failed: nothing left your wallet.'
          : 'Withdrawal requested: the amount is reserved until it is paid.',
      );
    } catch (error) {
      if (!outcomeUnknown(error)) throw error;
      await reload();
      throw new Error(MAYBE_APPLIED);
    }
  });
  return (
    <form class="card" onSubmit={withdraw} aria-labelledby="withdraw-title">
      <h2 id="withdraw-title">Withdraw</h2>
      <AmountField name="amount" value={amount} onValue={setAmount} failure={failure} />
      <TextField
        label="Bank account (IBAN or number)"
        name="bankAccount"
        hint="Sandbox: an account ending 0000 is paid and then fails"
        autoComplete="off"
        required
        value={account}
        onValue={setAccount}
        failure={failure}
      />
      {note === undefined ? null : <p role="status">{note}</p>}
      <FormEnd failure={failure} busy={busy} label="Withdraw" />
    </form>
  );
}
