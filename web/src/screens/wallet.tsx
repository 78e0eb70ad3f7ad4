/** The wallet: balance (live `wallet` pushes), sandbox top-up, recent lines. */
import { useEffect, useState } from 'preact/hooks';
import type { Wallet, WalletLine } from '../api.js';
import {
  AmountField,
  ErrorNote,
  FormEnd,
  failureOf,
  money,
  TextField,
  toMinor,
  useAction,
  useApp,
  useLive,
  when,
} from '../ui.js';

export function WalletView() {
  const { session } = useApp();
  const [wallet, setWallet] = useState<Pick<Wallet, 'currency' | 'available' | 'pending'>>();
  const [lines, setLines] = useState<WalletLine[]>([]);
  const [amount, setAmount] = useState('100');
  const [card, setCard] = useState('4242424242424242');
  const [note, setNote] = useState<string>();
  const { failure, busy, submit, setFailure } = useAction();
  const [next, setNext] = useState<string | null>(null);
  // The newest page again after a change; "Older" appends the next page.
  const loadLines = (cursor?: string) =>
    session.api.walletLines(cursor).then(
      (page) => {
        setLines((shown) => (cursor === undefined ? page.data : [...shown, ...page.data]));
        setNext(page.nextCursor);
      },
      () => undefined,
    );
  const load = () => {
    session.api.wallet().then(setWallet, (error) => setFailure(failureOf(error)));
    void loadLines();
  };
  useEffect(load, [session]);
  // Pushes sent while the socket was down are not replayed: read it all again after a reconnect.
  useLive('connected', (event) => {
    if (event.reconnected) load();
  });
  // The whole balance is pushed after every change: the latest push is the truth.
  useLive('wallet', (pushed) => {
    setWallet(pushed);
    setNote(undefined);
    void loadLines();
  });
  const topUp = submit(async () => {
    const { payment } = await session.api.topUp({ amount: toMinor(amount), card });
    setNote(
      payment.status === 'failed'
        ? `Top-up failed (${payment.failureCode ?? 'declined'}).`
        : 'Top-up pending: the balance updates when the provider confirms.',
    );
  });
  return (
    <section aria-labelledby="wallet-title">
      <h1 id="wallet-title">Wallet</h1>
      <p class="balance">
        Available:{' '}
        <strong data-testid="balance">
          {wallet === undefined ? '…' : money(wallet.available, wallet.currency)}
        </strong>
        {wallet !== undefined && wallet.pending > 0
          ? ` (${money(wallet.pending, wallet.currency)} pending)`
          : ''}
      </p>
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
      <Withdraw />
      <h2>Recent activity</h2>
      {lines.length === 0 ? <p>Nothing yet.</p> : null}
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
          {lines.map((line) => (
            <tr key={line.transactionId}>
              <td>{when(line.createdAt)}</td>
              <td>{line.reason}</td>
              <td class={line.amount < 0 ? 'out' : 'in'}>{money(line.amount, wallet?.currency)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {next === null ? null : (
        <button type="button" class="link" onClick={() => void loadLines(next)}>
          Older activity
        </button>
      )}
    </section>
  );
}

/** A payout to a bank account: reserved at once (pending), settled by the provider's webhook. */
function Withdraw() {
  const { session } = useApp();
  const [amount, setAmount] = useState('');
  const [account, setAccount] = useState('');
  const [note, setNote] = useState<string>();
  const { failure, busy, submit } = useAction();
  const withdraw = submit(async () => {
    setNote(undefined);
    const { payment } = await session.api.withdraw({ amount: toMinor(amount), bankAccount: account });
    setNote(
      payment.status === 'failed'
        ? 'Withdrawal failed.'
        : 'Withdrawal requested: the amount is reserved until it is paid.',
    );
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
