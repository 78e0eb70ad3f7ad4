/** My contracts, one contract with the actions allowed now, its job room, and the reviews. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { isRestError } from '../../../protocol/src/client/index.js';
import type { Contract, ContractDetail, Review, TransitionName } from '../api.js';
import { appendPage, firstPages, mergeTop } from '../paging.js';
import {
  ErrorNote,
  type Failure,
  failureOf,
  Latest,
  LoadFailed,
  money,
  Name,
  outcomeUnknown,
  SelectField,
  Stars,
  TextField,
  UNREACHABLE,
  useAction,
  useApp,
  useLive,
  useRetryKeys,
  when,
} from '../ui.js';
import { Room } from './room.js';

const ACTIONS: Record<TransitionName, string> = {
  deliver: 'Deliver work',
  request_changes: 'Request changes',
  approve: 'Approve and pay',
  cancel: 'Cancel contract',
  dispute: 'Open a dispute',
};

export function ContractList() {
  const { session } = useApp();
  const [contracts, setContracts] = useState<Contract[]>();
  const [failure, setFailure] = useState<Failure>();
  /** The cursor of the page after those shown (null: all shown). */
  const [next, setNext] = useState<string | null>(null);
  /** Pages read in all (the first and each "More"): a push reads as many again from the top. */
  const pages = useRef(1);
  const more = useAction('read');
  // Reads overlap (a push per transition): only the answer of the latest is shown, so a slower
  // earlier one does not take a contract back to a state it has left. A read from the top goes
  // over as many pages as were read ("More"), so a contract shown past the first page is brought
  // up to date too; what it does not reach stays, and nothing is listed twice (paging.ts).
  const [latest] = useState(() => new Latest());
  const load = () => {
    const newest = latest.begin();
    const walked = pages.current;
    return firstPages((cursor) => session.api.myContracts(cursor), walked).then(
      (page) => {
        if (!newest()) return;
        setContracts((shown) => mergeTop(page.data, shown));
        // A "More" answered meanwhile went further: its cursor stays.
        if (pages.current === walked) setNext(page.nextCursor);
        setFailure(undefined);
      },
      (error) => newest() && setFailure(failureOf(error)),
    );
  };
  const loadMore = () =>
    more.run(async () => {
      if (next === null) return;
      const page = await session.api.myContracts(next);
      pages.current += 1;
      setContracts((shown) => appendPage(shown, page.data));
      setNext(page.nextCursor);
    });
  useEffect(() => void load(), [session]);
  useLive('market', (event) => {
    if (event.contractId !== undefined || event.type === 'bid.accepted') void load();
  });
  // Market pushes are at most once: after a reconnect, read the list again.
  useLive('connected', (event) => {
    if (event.reconnected) void load();
  });
  return (
    <section aria-labelledby="contracts-title">
      <h1 id="contracts-title">My contracts</h1>
      {contracts === undefined ? (
        failure === undefined ? (
          <p>Loading…</p>
        ) : (
          <LoadFailed failure={failure} retry={() => void load()} />
        )
      ) : (
        <ErrorNote failure={failure} />
      )}
      {contracts === undefined ? null : contracts.length === 0 ? (
        <p>No contracts yet: they start when a hirer accepts a bid.</p>
      ) : (
        <ul class="list" aria-label="Contracts">
          {contracts.map((c) => (
            <li key={c.id} class="card">
              <a href={`#/contracts/${c.id}`}>{c.title}</a>{' '}
              <span class={`state state-${c.state}`}>{c.state}</span>
              <div class="meta">{money(c.amount, c.currency)}</div>
            </li>
          ))}
        </ul>
      )}
      {contracts === undefined || next === null ? null : (
        <button type="button" aria-busy={more.busy} onClick={() => void loadMore()}>
          More contracts
        </button>
      )}
      <ErrorNote failure={more.failure} />
    </section>
  );
}

export function ContractView({ contractId }: { contractId: string }) {
  const { session, user } = useApp();
  const [contract, setContract] = useState<ContractDetail>();
  const [message, setMessage] = useState('');
  const { failure, busy, run } = useAction();
  const [loadFailure, setLoadFailure] = useState<Failure>();
  /** What a re-read showed after an action whose answer was lost (it replaces that error). */
  const [outcome, setOutcome] = useState<string>();
  const keyed = useRetryKeys();
  const load = () =>
    session.api.getContract(contractId).then(
      (read) => {
        // Reads overlap (a push per transition): a slower answer of an older read must not take the
        // contract back to a state it has left, with the actions of that state.
        setContract((shown) => (shown !== undefined && shown.version > read.version ? shown : read));
        setLoadFailure(undefined);
        return read;
      },
      (error) => {
        setLoadFailure(failureOf(error));
        return undefined;
      },
    );
  useEffect(() => void load(), [contractId, session]);
  useLive(
    'market',
    (event) => {
      if (event.contractId === contractId) void load();
    },
    [contractId],
  );
  useLive(
    'connected',
    (event) => {
      if (event.reconnected) void load();
    },
    [contractId],
  );

  if (contract === undefined)
    return loadFailure ? <LoadFailed failure={loadFailure} retry={() => void load()} /> : <p>Loading…</p>;
  // Approving pays the worker, cancelling refunds: an action whose answer was lost keeps its key,
  // so pressing the same button again (same version, same message) replays it instead of repeating it.
  const act = (event: TransitionName) =>
    run(async () => {
      setOutcome(undefined);
      const request = { contract: contract.id, event, version: contract.version, message };
      try {
        await keyed(request, (key) =>
          session.api.transition(contract.id, event, contract.version, message, key),
        );
        setMessage('');
        await load();
      } catch (error) {
        if (!outcomeUnknown(error)) {
          await load();
          throw error;
        }
        // Its outcome is unknown: what the contract says now replaces the error when it can be read.
        const now = await load();
        if (now === undefined) {
          throw new Error(
            `${UNREACHABLE} "${ACTIONS[event]}" may have gone through: press it again once the connection is back and it is done once, not twice.`,
          );
        }
        if (now.version !== contract.version) {
          setMessage('');
          setOutcome(`It went through: the contract is now ${now.state}.`);
        } else {
          throw new Error(
            `"${ACTIONS[event]}" did not go through: the contract is still ${now.state}. Press it again to retry.`,
          );
        }
      }
    });
  const actions = contract.available.filter((e): e is TransitionName => e in ACTIONS);
  const role = contract.hirerId === user.id ? 'hirer' : 'worker';
  const other = role === 'hirer' ? contract.workerId : contract.hirerId;
  return (
    <section aria-labelledby="contract-title">
      <h1 id="contract-title">{contract.title}</h1>
      <p class="meta">
        You are the {role} · {role === 'hirer' ? 'worker' : 'hirer'}:{' '}
        <a href={`#/users/${other}`}>
          <Name id={other} />
        </a>{' '}
        · {money(contract.amount, contract.currency)} in escrow · due {when(contract.dueAt)}
      </p>
      <p>
        State:{' '}
        <strong class={`state state-${contract.state}`} data-testid="contract-state">
          {contract.state}
        </strong>
      </p>
      {actions.length > 0 ? (
        <fieldset class="card">
          <legend>Actions</legend>
          <TextField
            label="Message with the action (optional)"
            name="message"
            value={message}
            onValue={setMessage}
            failure={failure}
          />
          <div class="row wrap">
            {actions.map((name) => (
              <button type="button" key={name} disabled={busy} onClick={() => act(name)}>
                {ACTIONS[name]}
              </button>
            ))}
          </div>
        </fieldset>
      ) : null}
      <ErrorNote failure={loadFailure} />
      <ErrorNote failure={failure} />
      {outcome === undefined ? null : <p role="status">{outcome}</p>}
      <details>
        <summary>History ({contract.transitions.length})</summary>
        <ol>
          {contract.transitions.map((t) => (
            <li key={t.version}>
              {when(t.at)}: {t.event} by {t.actor} → {t.to}
              {t.message ? ` — “${t.message}”` : ''}
            </li>
          ))}
        </ol>
      </details>
      {contract.roomId === null ? null : <Room roomId={contract.roomId} />}
      {contract.state === 'completed' || contract.state === 'resolved' ? (
        <Reviews contractId={contract.id} />
      ) : null}
    </section>
  );
}

function Reviews({ contractId }: { contractId: string }) {
  const { session } = useApp();
  const [reviews, setReviews] = useState<{ data: Review[]; canReview: boolean }>();
  const [rating, setRating] = useState('5');
  const [text, setText] = useState('');
  const { failure, busy, submit } = useAction();
  const [loadFailure, setLoadFailure] = useState<Failure>();
  /**
   * My review went in but the reviews have not been read since (that read failed): what is shown
   * is from before it, whose form would invite a second review. Until a read succeeds, the form
   * gives way to why the read failed, with "Try again".
   */
  const [unread, setUnread] = useState(false);
  // One Idempotency-Key per form content, as for "Post job": "Submit review" again after a lost
  // answer replays the first submission instead of being refused as a second review.
  const keyed = useRetryKeys();
  // Only the newest read's answer is shown: one begun before the review went in, answered after
  // it, would bring the form back.
  const [latest] = useState(() => new Latest());
  const load = () => {
    const newest = latest.begin();
    return session.api.contractReviews(contractId).then(
      (read) => {
        if (!newest()) return;
        setReviews(read);
        setUnread(false);
        setLoadFailure(undefined);
      },
      (error) => newest() && setLoadFailure(failureOf(error)),
    );
  };
  useEffect(() => void load(), [contractId, session]);
  useLive(
    'market',
    (event) => {
      if (event.contractId === contractId && event.type === 'review.published') void load();
    },
    [contractId],
  );
  useLive(
    'connected',
    (event) => {
      if (event.reconnected) void load();
    },
    [contractId],
  );
  const send = submit(async () => {
    const review = { rating: Number(rating), text };
    try {
      await keyed({ contractId, ...review }, (key) => session.api.review(contractId, review, key));
    } catch (error) {
      // Sent meanwhile from another tab (nothing is pushed before both reviews are in): read the
      // reviews again, which show it, and the form goes; the refusal says why.
      if (isRestError(error) && error.details?.reason === 'REVIEW_EXISTS') void load();
      if (!outcomeUnknown(error)) throw error;
      throw new Error(
        `${UNREACHABLE} The review may have been sent: press "Submit review" again without changing it and it is sent once, not twice.`,
      );
    }
    setUnread(true);
    await load();
  });
  return (
    <section class="card" aria-labelledby="reviews-title">
      <h2 id="reviews-title">Reviews</h2>
      {reviews?.data.length === 0 ? <p>No reviews yet. Reviews stay hidden until both are in.</p> : null}
      <ul class="list">
        {reviews?.data.map((r) => (
          <li key={r.id}>
            <Name id={r.authorId} /> → <Name id={r.subjectId} />: <Stars rating={r.rating} /> {r.text}
            {r.publishedAt === null ? <em> (only you see it until the other review is in)</em> : null}
          </li>
        ))}
      </ul>
      {unread ? <p role="status">Your review is sent.</p> : null}
      {reviews?.canReview && !unread ? (
        <form onSubmit={send}>
          <SelectField
            label="Rating"
            name="rating"
            value={rating}
            onValue={setRating}
            options={[5, 4, 3, 2, 1].map((n) => ({ value: String(n), label: `${n} stars` }))}
            failure={failure}
          />
          <TextField label="Review" name="text" rows={3} value={text} onValue={setText} failure={failure} />
          <button type="submit" disabled={busy}>
            Submit review
          </button>
        </form>
      ) : null}
      {(reviews === undefined || unread) && loadFailure !== undefined ? (
        <LoadFailed failure={loadFailure} retry={() => void load()} />
      ) : (
        <ErrorNote failure={loadFailure} />
      )}
      <ErrorNote failure={failure} />
    </section>
  );
}
