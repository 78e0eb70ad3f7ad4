/** The job board (filters, live new jobs), posting a job, and a job with its bids or a bid form. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { isRestError, type JobPostedPayload } from '../../../protocol/src/client/index.js';
import { type Bid, type Job, type JobDetail, type JobSearch, splitList } from '../api.js';
import { appendPage, firstPages, mergeTop } from '../paging.js';
import {
  AmountField,
  amountOf,
  currencyToSend,
  ErrorNote,
  type Failure,
  FormEnd,
  FormError,
  failureOf,
  go,
  Latest,
  LoadFailed,
  money,
  Name,
  outcomeUnknown,
  SelectField,
  TextField,
  UNREACHABLE,
  useAction,
  useApp,
  useLive,
  usePlatformCurrency,
  useRetryKeys,
} from '../ui.js';

type Category = { id: string; slug: string; name: string };

/**
 * The job categories. A failed read (a bad network) is not the end: it says why, and is read again
 * on "Load categories again" and at the next connect of the live socket.
 */
function useCategories(): { categories: Category[]; failure: Failure | undefined; reload: () => void } {
  const { session } = useApp();
  const [categories, setCategories] = useState<Category[]>([]);
  const [failure, setFailure] = useState<Failure>();
  const loaded = useRef(false);
  const reload = () => {
    setFailure(undefined);
    session.api.categories().then(
      (list) => {
        loaded.current = true;
        setCategories(list.data);
        setFailure(undefined);
      },
      (error) => setFailure(failureOf(error)),
    );
  };
  useEffect(reload, [session]);
  useLive('connected', () => {
    if (!loaded.current) reload();
  });
  return { categories, failure, reload };
}

type BoardJob = Pick<Job, 'id' | 'title' | 'skills' | 'remote' | 'location'> & {
  budget: { kind: string; amount: number; currency: string };
  fresh?: boolean;
};

export function JobBoard() {
  const { session, live, user } = useApp();
  const { categories } = useCategories();
  const [draft, setDraft] = useState<JobSearch>({});
  const [search, setSearch] = useState<JobSearch>({});
  const [jobs, setJobs] = useState<BoardJob[]>();
  const [failure, setFailure] = useState<Failure>();
  const [watching, setWatching] = useState(false);

  // Only the answers of the search on screen count: on a slow network the answer of an earlier
  // search may come after a later one's, and must not replace it.
  const current = useRef(search);
  current.current = search;
  /**
   * The live watch of the search on screen has failed (sent while the socket was down and timed
   * out, say): the SDK restores only a watch the server accepted, so it is asked again at the next
   * connect.
   */
  const watchFailed = useRef(false);
  /** What a failed watch said: a later watch that succeeds takes it away (not a search's failure). */
  const watchFailure = useRef<Failure>(undefined);
  /**
   * Jobs pushed since the search on its way was sent: committed after it read the database, its
   * answer does not have them, and replacing the list with that answer made them vanish (a slow
   * network widens the window). Kept on top when the answer comes.
   */
  const pushedSinceSearch = useRef(new Map<string, BoardJob>());
  const withPushed = (page: readonly BoardJob[]): BoardJob[] => {
    const listed = new Set(page.map((job) => job.id));
    const pushed = [...pushedSinceSearch.current.values()].filter((job) => !listed.has(job.id));
    return [...pushed, ...page];
  };
  // Live: new jobs of the chosen category and skills (the text query is applied on the next search).
  const watch = (wanted: JobSearch) => {
    watchFailed.current = false;
    const skills = splitList(wanted.skills);
    live
      .watchJobs({
        ...(wanted.categoryId ? { categoryId: wanted.categoryId } : {}),
        ...(skills.length > 0 ? { skills } : {}),
      })
      .then(
        () => {
          if (current.current !== wanted) return;
          setWatching(true);
          // Watched at the socket's first connect (no search again then): its failure goes.
          setFailure((shown) => (shown !== undefined && shown === watchFailure.current ? undefined : shown));
        },
        (error) => {
          if (current.current !== wanted) return;
          watchFailed.current = true;
          watchFailure.current = failureOf(error);
          setFailure(watchFailure.current);
        },
      );
  };
  useEffect(() => {
    setFailure(undefined);
    setWatching(false);
    pushedSinceSearch.current = new Map();
    session.api.searchJobs(search).then(
      (page) => {
        if (current.current !== search) return;
        setJobs(withPushed(page.data));
        // A search answering after the live watch failed (a slow network) leaves that failure shown.
        if (!watchFailed.current) setFailure(undefined);
      },
      (error) => current.current === search && setFailure(failureOf(error)),
    );
    watch(search);
  }, [session, live, search]);
  useEffect(() => () => void live.unwatchJobs().catch(() => undefined), [live]);
  // The SDK watches again after a reconnect, but jobs posted meanwhile are not replayed: search
  // again, marking the ones not shown before as new.
  useLive(
    'connected',
    (event) => {
      if (watchFailed.current) watch(search);
      if (!event.reconnected) return;
      pushedSinceSearch.current = new Map();
      session.api.searchJobs(search).then(
        (page) => {
          if (current.current !== search) return;
          if (!watchFailed.current) setFailure(undefined);
          setJobs((shown) => {
            const before = new Map<string, BoardJob>((shown ?? []).map((job) => [job.id, job]));
            const fresh = (id: string) =>
              before.has(id) ? before.get(id)?.fresh === true : shown !== undefined;
            return withPushed(page.data.map((job) => ({ ...job, fresh: fresh(job.id) })));
          });
        },
        () => undefined,
      );
    },
    [search],
  );

  useLive(
    'job.posted',
    (job: JobPostedPayload) => {
      if (search.remote === true && !job.remote) return;
      pushedSinceSearch.current.set(job.id, { ...job, fresh: true });
      setJobs((list) =>
        list?.some((j) => j.id === job.id) ? list : [{ ...job, fresh: true }, ...(list ?? [])],
      );
    },
    [search],
  );

  const apply = (event: Event) => {
    event.preventDefault();
    setSearch({ ...draft });
  };
  return (
    <section aria-labelledby="board-title" data-watching={watching ? 'true' : 'false'}>
      <div class="row spread">
        <h1 id="board-title">Jobs</h1>
        {user.roles.includes('hirer') ? (
          <a class="button" href="#/jobs/new">
            Post a job
          </a>
        ) : null}
      </div>
      <form class="filters card" onSubmit={apply} aria-label="Filter jobs">
        <TextField
          label="Search"
          name="q"
          type="search"
          value={draft.q ?? ''}
          onValue={(q) => setDraft({ ...draft, q })}
          failure={failure}
        />
        <SelectField
          label="Category"
          name="categoryId"
          value={draft.categoryId ?? ''}
          onValue={(value) => setDraft({ ...draft, categoryId: value || undefined })}
          options={[{ value: '', label: 'Any' }, ...categories.map((c) => ({ value: c.id, label: c.name }))]}
        />
        <TextField
          label="Skills (comma-separated)"
          name="skills"
          value={draft.skills ?? ''}
          onValue={(skills) => setDraft({ ...draft, skills })}
          failure={failure}
        />
        <label class="inline">
          <input
            type="checkbox"
            checked={draft.remote === true}
            onChange={(e) => setDraft({ ...draft, remote: e.currentTarget.checked ? true : undefined })}
          />{' '}
          Remote only
        </label>
        <button type="submit">Apply filters</button>
      </form>
      {jobs === undefined ? (
        // The first search failed: nothing reads it again by itself while the socket stays up.
        failure === undefined ? (
          <p>Loading…</p>
        ) : (
          <LoadFailed failure={failure} retry={() => setSearch({ ...search })} />
        )
      ) : (
        <ErrorNote failure={failure} />
      )}
      {jobs === undefined ? null : jobs.length === 0 ? (
        <p>No open jobs match. New ones appear here as they are posted.</p>
      ) : (
        <ul class="list" aria-label="Open jobs" aria-live="polite">
          {jobs.map((job) => (
            <li key={job.id} class="card job">
              <a href={`#/jobs/${job.id}`}>{job.title}</a>
              {job.fresh ? <span class="badge">new</span> : null}
              <div class="meta">
                {money(job.budget.amount, job.budget.currency)} {job.budget.kind === 'hourly' ? '/ hour' : ''}
                {job.remote ? ' · remote' : job.location ? ` · ${job.location}` : ''}
                {job.skills.length > 0 ? ` · ${job.skills.join(', ')}` : ''}
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function PostJob() {
  const { session } = useApp();
  const { categories, failure: categoriesFailure, reload: reloadCategories } = useCategories();
  const [title, setTitle] = useState('');
  const [description, setDescription] = useState('');
  const [categoryId, setCategoryId] = useState('');
  const [skills, setSkills] = useState('');
  const [budget, setBudget] = useState('');
  const [remote, setRemote] = useState(true);
  const currency = usePlatformCurrency();
  const { failure, busy, submit } = useAction();
  // One Idempotency-Key per form content: "Post job" again after a lost answer replays the first
  // post (the same job) instead of posting a second one; a changed form is a new job.
  const keyed = useRetryKeys();
  const post = submit(async () => {
    const amount = amountOf(budget, 'budget.amount');
    // Without the categories there is nothing to choose from: nothing is sent.
    if (categories.length === 0)
      throw new FormError({ categoryId: 'Categories are not loaded yet: try again.' });
    const job = {
      title,
      description,
      categoryId: categoryId || (categories[0]?.id ?? ''),
      skills: splitList(skills),
      budget: { kind: 'fixed' as const, amount, currency: await currencyToSend(session) },
      remote,
    };
    try {
      const posted = await keyed(job, (key) => session.api.postJob(job, key));
      go(`/jobs/${posted.id}`);
    } catch (error) {
      if (!outcomeUnknown(error)) throw error;
      throw new Error(
        `${UNREACHABLE} The job may have been posted: press "Post job" again without changing the form and it is posted once, not twice.`,
      );
    }
  });
  return (
    <form class="card narrow" onSubmit={post} aria-labelledby="post-title">
      <h1 id="post-title">Post a job</h1>
      <TextField label="Title" name="title" required value={title} onValue={setTitle} failure={failure} />
      <TextField
        label="Description"
        name="description"
        rows={4}
        required
        value={description}
        onValue={setDescription}
        failure={failure}
      />
      <SelectField
        label="Category"
        name="categoryId"
        value={categoryId || (categories[0]?.id ?? '')}
        onValue={setCategoryId}
        options={categories.map((c) => ({ value: c.id, label: c.name }))}
        failure={failure}
      />
      {categoriesFailure === undefined ? null : (
        <div class="row wrap">
          <ErrorNote failure={categoriesFailure} />
          <button type="button" onClick={reloadCategories}>
            Load categories again
          </button>
        </div>
      )}
      <TextField
        label="Skills (comma-separated)"
        name="skills"
        value={skills}
        onValue={setSkills}
        failure={failure}
      />
      <TextField
        label={currency === undefined ? 'Budget (fixed price)' : `Budget (${currency}, fixed price)`}
        name="budget.amount"
        inputMode="decimal"
        required
        value={budget}
        onValue={setBudget}
        failure={failure}
      />
      <label class="inline">
        <input type="checkbox" checked={remote} onChange={(e) => setRemote(e.currentTarget.checked)} /> Remote
      </label>
      <FormEnd failure={failure} busy={busy} label="Post job" />
    </form>
  );
}

export function JobView({ jobId }: { jobId: string }) {
  const { session, user } = useApp();
  const [job, setJob] = useState<JobDetail>();
  /** My bid on this job (worker): null when I have none, undefined until a read of it answered. */
  const [myBid, setMyBid] = useState<Bid | null>();
  /** Why my bid could not be read: not knowing it is not "no bid" (the form would be refused). */
  const [bidFailure, setBidFailure] = useState<Failure>();
  const [failure, setFailure] = useState<Failure>();
  // Reads overlap (a push per bid): only the answers of the newest read are shown, so a slower
  // answer of an older one does not bring back bids as they were before.
  const reads = useRef(0);
  const load = () => {
    const read = ++reads.current;
    const newest = () => read === reads.current;
    session.api.getJob(jobId).then(
      (answer) => {
        if (!newest()) return;
        setJob(answer);
        setFailure(undefined);
      },
      (error) => newest() && setFailure(failureOf(error)),
    );
    if (user.roles.includes('worker'))
      session.api.myBidsOn(jobId).then(
        (page) => {
          if (!newest()) return;
          setMyBid(
            page.data.find((b) => b.workerId === user.id && b.jobId === jobId && b.status !== 'withdrawn') ??
              null,
          );
          setBidFailure(undefined);
        },
        (error) => newest() && setBidFailure(failureOf(error)),
      );
  };
  useEffect(load, [jobId, session]);
  // Bids on this job (for its hirer) and decisions on my bid (for a worker): re-read the job.
  useLive(
    'market',
    (event) => {
      if (event.jobId === jobId) load();
    },
    [jobId],
  );
  // Market pushes are at most once: after a reconnect, read the job (and my bid) again.
  useLive(
    'connected',
    (event) => {
      if (event.reconnected) load();
    },
    [jobId],
  );

  if (job === undefined) return failure ? <LoadFailed failure={failure} retry={load} /> : <p>Loading…</p>;
  const mine = job.hirerId === user.id;
  return (
    <section aria-labelledby="job-title">
      <h1 id="job-title">{job.title}</h1>
      <p class="meta">
        {money(job.budget.amount, job.budget.currency)} · {job.status.replace('_', ' ')} · posted by{' '}
        <Name id={job.hirerId} /> · {job.bidCount} {job.bidCount === 1 ? 'bid' : 'bids'}
      </p>
      <p class="pre">{job.description}</p>
      {job.skills.length > 0 ? <p class="meta">Skills: {job.skills.join(', ')}</p> : null}
      <ErrorNote failure={failure} />
      {mine ? <Bids job={job} onChange={load} /> : null}
      {!mine && user.roles.includes('worker') ? (
        myBid === undefined ? (
          bidFailure === undefined ? (
            <p>Loading your bid…</p>
          ) : (
            <LoadFailed failure={bidFailure} retry={load} />
          )
        ) : myBid ? (
          <p class="card" data-testid="my-bid">
            Your bid: {money(myBid.amount, job.budget.currency)} in {myBid.deliveryDays} days —{' '}
            <strong>{myBid.status}</strong>
          </p>
        ) : job.status === 'open' ? (
          <BidForm jobId={job.id} currency={job.budget.currency} onPlaced={setMyBid} onUnknown={load} />
        ) : null
      ) : null}
    </section>
  );
}

/** The bids a job carries for its hirer: its newest 100 (JobDetail.bids); "More bids" pages on. */
const JOB_BIDS = 100;

function Bids({ job, onChange }: { job: JobDetail; onChange: () => void }) {
  const { session } = useApp();
  const { failure, busy, run } = useAction();
  /**
   * The job's bids read page by page (GET /v1/jobs/:id/bids) by "More bids", past the newest 100
   * the job carries: the bids and the cursor after them (`pagesRead`: how many pages). Each read of the job (a push)
   * reads those pages again, so their bids' states are current; listed once with the job's.
   */
  const [paged, setPaged] = useState<{ bids: Bid[]; next: string | null }>();
  const pagesRead = useRef(0);
  const more = useAction('read');
  const [latest] = useState(() => new Latest());
  const bidsPage = (cursor?: string) => session.api.myBidsOn(job.id, cursor);
  useEffect(() => {
    const walked = pagesRead.current;
    if (walked === 0) return;
    const newest = latest.begin();
    firstPages(bidsPage, walked).then(
      (page) =>
        newest() &&
        setPaged(
          (shown) =>
            shown && {
              bids: mergeTop(page.data, shown.bids),
              next: pagesRead.current === walked ? page.nextCursor : shown.next,
            },
        ),
      () => undefined,
    );
  }, [job]);
  const loadMore = () =>
    more.run(async () => {
      // The first press: the cursor after the newest 100 is that of the first page of 100.
      const page =
        paged === undefined
          ? await firstPages(bidsPage, 2)
          : paged.next === null
            ? undefined
            : await bidsPage(paged.next);
      if (page === undefined) return;
      pagesRead.current += paged === undefined ? 2 : 1;
      setPaged((shown) => ({
        bids: appendPage(shown?.bids, page.data),
        next: page.nextCursor,
      }));
    });
  // Accepting holds the money in escrow: an accept whose answer was lost keeps its key, so pressing
  // "Accept bid" again replays it instead of holding twice.
  const keyed = useRetryKeys();
  // Accepted at the version shown: if the worker changed the bid since, nothing is held and the
  // hirer sees the new terms (the bids are read again) before deciding.
  const accept = (bid: Bid) =>
    run(async () => {
      try {
        const contract = await keyed({ bid: bid.id, version: bid.version }, (key) =>
          session.api.acceptBid(bid.id, bid.version, key),
        );
        go(`/contracts/${contract.id}`);
      } catch (error) {
        onChange();
        if (isRestError(error) && error.details?.reason === 'VERSION_MISMATCH') {
          throw new Error(
            'This bid changed after you opened it, so it was not accepted and nothing was charged. Check its new amount and days below, then accept again if they suit you.',
          );
        }
        if (outcomeUnknown(error)) {
          throw new Error(
            `${UNREACHABLE} The bid may have been accepted (and the money held): press "Accept bid" again and it is done once, not twice.`,
          );
        }
        throw error;
      }
    });
  const bids = mergeTop(job.bids ?? [], paged?.bids);
  const hasMore = paged === undefined ? (job.bids?.length ?? 0) >= JOB_BIDS : paged.next !== null;
  return (
    <section aria-labelledby="bids-title">
      <h2 id="bids-title">Bids</h2>
      <ErrorNote failure={failure} />
      {bids.length === 0 ? <p>No bids yet. They appear here as workers bid.</p> : null}
      <ul class="list" aria-live="polite">
        {bids.map((bid) => (
          <li key={bid.id} class="card bid">
            <div id={`bid-${bid.id}`}>
              <strong>
                <Name id={bid.workerId} />
              </strong>{' '}
              {money(bid.amount, job.budget.currency)} in {bid.deliveryDays} days — {bid.status}
            </div>
            {bid.coverLetter ? <p class="pre">{bid.coverLetter}</p> : null}
            {bid.status === 'pending' && job.status === 'open' ? (
              // Every bid has this button: its description says whose bid and what it offers.
              <button
                type="button"
                disabled={busy}
                aria-describedby={`bid-${bid.id}`}
                onClick={() => accept(bid)}
              >
                Accept bid
              </button>
            ) : null}
          </li>
        ))}
      </ul>
      {hasMore ? (
        <button type="button" aria-busy={more.busy} onClick={() => void loadMore()}>
          More bids
        </button>
      ) : null}
      <ErrorNote failure={more.failure} />
    </section>
  );
}

function BidForm({
  jobId,
  currency,
  onPlaced,
  onUnknown,
}: {
  jobId: string;
  currency: string;
  onPlaced: (bid: Bid) => void;
  onUnknown: () => void;
}) {
  const { session } = useApp();
  const [amount, setAmount] = useState('');
  const [days, setDays] = useState('7');
  const [letter, setLetter] = useState('');
  const { failure, busy, submit } = useAction();
  const keyed = useRetryKeys();
  const place = submit(async () => {
    const bid = { amount: amountOf(amount, 'amount'), deliveryDays: Number(days), coverLetter: letter };
    try {
      onPlaced(await keyed({ jobId, bid }, (key) => session.api.placeBid(jobId, bid, key)));
    } catch (error) {
      // Placed meanwhile in another tab (no push tells this one): the bid shows instead of this form.
      if (isRestError(error) && error.details?.reason === 'LIVE_BID_EXISTS') onUnknown();
      if (!outcomeUnknown(error)) throw error;
      // My bid, if it was placed, shows instead of this form.
      onUnknown();
      throw new Error(
        `${UNREACHABLE} The bid may have been placed: press "Place bid" again without changing it and it is placed once.`,
      );
    }
  });
  return (
    <form class="card" onSubmit={place} aria-labelledby="bid-title">
      <h2 id="bid-title">Place a bid</h2>
      <AmountField
        label={`Amount (${currency})`}
        name="amount"
        value={amount}
        onValue={setAmount}
        failure={failure}
      />
      <TextField
        label="Delivery (days)"
        name="deliveryDays"
        type="number"
        min={1}
        max={365}
        required
        value={days}
        onValue={setDays}
        failure={failure}
      />
      <TextField
        label="Cover letter"
        name="coverLetter"
        rows={3}
        value={letter}
        onValue={setLetter}
        failure={failure}
      />
      <FormEnd failure={failure} busy={busy} label="Place bid" />
    </form>
  );
}
