/**
 * Live marketplace pushes on a real node (role all: REST, outbox relay and gateway in one process,
 * the Redis bus between them) with independent WebSocket clients on both transports (issue 12 §7):
 * the live job board (`jobs.watch` → `job.posted` for matching new jobs only, replaced by a new
 * watch, silent after `jobs.unwatch`), `market` pushes of ids and states to the users an event
 * names (bid placed → hirer, job closed → the bidder's bid rejected) and to nobody else, and
 * invalid `jobs.watch` frames refused VALIDATION_FAILED on a socket that stays usable.
 *
 * Absence is proven without waiting: an observer connection watching every job sees each post
 * (the gateway pushes a post to every matching connection in one step), then a ping round trip on
 * the silent socket flushes anything that could have been sent to it before.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  createClient,
  type GigwireClient,
  type JobPostedPayload,
  type MarketEventPayload,
} from '../../protocol/src/client/index.js';
import { startTestNode, type TestNode } from '../support/context.js';
import { httpClient, type Registered, registerUser } from '../support/http.js';
import { openSocket, type TestSocket, type WireFrame } from '../support/ws-client.js';

type Json = Record<string, unknown>;

describe('live marketplace pushes', () => {
  let testNode: TestNode;
  let api: ReturnType<typeof httpClient>;
  let hirer: Registered;
  let worker: Registered;
  let stranger: Registered;
  let software: string;
  let design: string;
  /** uWebSockets.js when a native build loaded, and always the REST port's /ws. */
  let urls: string[];
  const sockets: TestSocket[] = [];
  const clients: GigwireClient[] = [];

  const connect = async (user: Registered, url: string, encoding: 'json' | 'msgpack' = 'json') => {
    const socket = await openSocket(url, user.accessToken, encoding);
    sockets.push(socket);
    await socket.next((frame) => frame.t === 'hello');
    return socket;
  };

  beforeAll(async () => {
    testNode = await startTestNode();
    const { node } = testNode;
    api = httpClient(node.baseUrl);
    urls = [node.uwsUrl, `${node.baseUrl.replace(/^http/, 'ws')}/ws`].filter(
      (url): url is string => url !== undefined,
    );
    hirer = await registerUser(api, { roles: ['hirer'] });
    worker = await registerUser(api, { roles: ['worker'] });
    stranger = await registerUser(api, { roles: ['worker', 'hirer'] });
    const list = await api.get<{ data: { id: string; slug: string }[] }>('/v1/categories', hirer.accessToken);
    software = list.body.data.find((c) => c.slug === 'software-development')?.id as string;
    design = list.body.data.find((c) => c.slug === 'design')?.id as string;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    for (const client of clients) client.close();
    await testNode.stop();
  });

  const postJob = async (overrides: Json) => {
    const response = await api.post<Json>(
      '/v1/jobs',
      {
        title: 'Port a build to Gradle',
        description: 'The private details stay in REST.',
        categoryId: software,
        skills: ['Kotlin'],
        budget: { kind: 'fixed', amount: 40_000, currency: 'USD' },
        remote: true,
        ...overrides,
      },
      hirer.accessToken,
    );
    expect(response.status).toBe(201);
    return response.body.id as string;
  };

  const posted = (jobId: string) => (frame: WireFrame) =>
    frame.t === 'job.posted' && (frame.d as Json).id === jobId;
  const market = (type: string, id: string) => (frame: WireFrame) =>
    frame.t === 'market' && (frame.d as Json).type === type && (frame.d as Json).bidId === id;

  /** Waits until the observer saw the job, then flushes `socket` with a ping round trip. */
  const settled = async (observer: TestSocket, jobId: string, socket: TestSocket) => {
    await observer.next(posted(jobId));
    expect((await socket.request('ping')).t).toBe('ok');
  };

  it('pushes job.posted to a matching watch only; a new watch replaces it; unwatch ends it', async () => {
    const [first, second] = [urls[0] as string, urls.at(-1) as string];
    const watcher = await connect(worker, first, 'json');
    const observer = await connect(stranger, second, 'msgpack');
    expect(await observer.request('jobs.watch', {})).toMatchObject({ t: 'ok' });
    const ok = await watcher.request('jobs.watch', { categoryId: software, skills: ['  KOTLIN ', 'rust'] });
    expect(ok.t).toBe('ok');
    expect(ok.d).toBeUndefined();

    const otherCategory = await postJob({ categoryId: design, skills: ['kotlin'], title: 'Logo' });
    const otherSkills = await postJob({ skills: ['python'] });
    const matching = await postJob({ skills: ['Kotlin', 'Gradle'], location: 'Lyon' });
    const push = await watcher.next(posted(matching));
    expect(push.d).toEqual({
      id: matching,
      title: 'Port a build to Gradle',
      categoryId: software,
      skills: ['kotlin', 'gradle'],
      budget: { kind: 'fixed', amount: 40_000, currency: 'USD' },
      remote: true,
      location: 'Lyon',
      hirerId: hirer.id,
      createdAt: expect.any(String),
    });
    await settled(observer, otherSkills, watcher);
    await settled(observer, otherCategory, watcher);
    expect(watcher.frames.filter((f) => f.t === 'job.posted').map((f) => (f.d as Json).id)).toEqual([
      matching,
    ]);

    // A second watch replaces the first: design jobs now, software ones no more.
    expect((await watcher.request('jobs.watch', { categoryId: design })).t).toBe('ok');
    const softwareJob = await postJob({});
    const designJob = await postJob({ categoryId: design, skills: [] });
    await watcher.next(posted(designJob));
    await settled(observer, softwareJob, watcher);
    expect(watcher.frames.some(posted(softwareJob))).toBe(false);

    expect((await watcher.request('jobs.unwatch', {})).t).toBe('ok');
    expect((await watcher.request('jobs.unwatch')).t).toBe('ok');
    const afterUnwatch = await postJob({ categoryId: design });
    await settled(observer, afterUnwatch, watcher);
    expect(watcher.frames.filter((f) => f.t === 'job.posted')).toHaveLength(2);
    // The poster's own REST call is no reason to push anything else to anyone.
    expect(observer.frames.some((f) => f.t === 'market')).toBe(false);
  });

  it('pushes market events to the parties named (bid placed → hirer, job closed → bidder), nobody else', async () => {
    const hirerSocket = await connect(hirer, urls[0] as string, 'msgpack');
    const workerSockets = await Promise.all(urls.map((url) => connect(worker, url, 'json')));
    const strangerSocket = await connect(stranger, urls.at(-1) as string, 'json');
    const jobId = await postJob({ title: 'Market events' });

    const bid = await api.call<Json>('POST', `/v1/jobs/${jobId}/bids`, {
      token: worker.accessToken,
      headers: { 'idempotency-key': randomUUID() },
      body: { amount: 35_000, deliveryDays: 4, coverLetter: 'A private cover letter.' },
    });
    expect(bid.status).toBe(201);
    const bidId = bid.body.id as string;
    const placed = await hirerSocket.next(market('bid.placed', bidId));
    expect(placed.d).toEqual({
      id: expect.any(String),
      type: 'bid.placed',
      jobId,
      bidId,
      state: 'pending',
      at: expect.any(String),
    });

    expect((await api.post(`/v1/jobs/${jobId}/close`, {}, hirer.accessToken)).status).toBe(200);
    for (const socket of workerSockets) {
      const rejected = await socket.next(market('bid.rejected', bidId));
      expect(rejected.d).toMatchObject({ type: 'bid.rejected', jobId, bidId, state: 'rejected' });
      expect(JSON.stringify(rejected.d)).not.toContain('cover letter');
    }

    // Nobody else was named: the stranger hears nothing, the worker not of their own bid.
    for (const socket of [strangerSocket, ...workerSockets])
      expect((await socket.request('ping')).t).toBe('ok');
    expect(strangerSocket.frames.some((f) => f.t === 'market')).toBe(false);
    for (const socket of workerSockets) {
      expect(socket.frames.filter((f) => f.t === 'market').map((f) => (f.d as Json).type)).toEqual([
        'bid.rejected',
      ]);
    }
    expect(hirerSocket.frames.filter((f) => f.t === 'market').map((f) => (f.d as Json).type)).toEqual([
      'bid.placed',
    ]);
  });

  it('refuses invalid jobs.watch frames VALIDATION_FAILED on both transports; the socket stays usable', async () => {
    const invalid: Json[] = [
      { categoryId: 'software' },
      { skills: 'kotlin' },
      { skills: [''] },
      { skills: ['x'.repeat(51)] },
      { skills: Array.from({ length: 31 }, (_, i) => `skill-${i}`) },
      { categoryId: software, extra: true },
    ];
    for (const url of urls) {
      const socket = await connect(worker, url, 'msgpack');
      for (const d of invalid) {
        const reply = await socket.request('jobs.watch', d);
        expect(reply.t, JSON.stringify(d)).toBe('error');
        expect((reply.d as Json).code).toBe('VALIDATION_FAILED');
      }
      expect((await socket.request('jobs.unwatch', { extra: 1 })).d).toMatchObject({
        code: 'VALIDATION_FAILED',
      });
      expect((await socket.request('jobs.watch', { skills: Array(30).fill('kotlin') })).t).toBe('ok');
      expect((await socket.request('ping')).t).toBe('ok');
      expect(socket.ws.readyState).toBe(socket.ws.OPEN);
    }
  });

  it('SDK: watchJobs() delivers job.posted events and is restored after a reconnect; market events arrive typed', async () => {
    let workerToken = worker.accessToken;
    const workerClient = createClient({
      url: urls.at(-1) as string,
      encoding: 'json',
      WebSocket: WebSocket as never,
      getAccessToken: async ({ reason }) => {
        if (reason === 'expired') {
          const login = await api.post<{ accessToken: string }>('/v1/auth/login', {
            login: worker.email,
            password: worker.password,
          });
          workerToken = login.body.accessToken;
        }
        return workerToken;
      },
    });
    const hirerClient = createClient({
      url: urls[0] as string,
      WebSocket: WebSocket as never,
      getAccessToken: () => hirer.accessToken,
    });
    clients.push(workerClient, hirerClient);
    const jobs: JobPostedPayload[] = [];
    const events: MarketEventPayload[] = [];
    let reconnected = false;
    workerClient.on('job.posted', (job) => jobs.push(job));
    workerClient.on('connected', (event) => {
      reconnected ||= event.reconnected;
    });
    hirerClient.on('market', (event) => events.push(event));
    const until = async (done: () => boolean) => {
      for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(done()).toBe(true);
    };

    await workerClient.watchJobs({ categoryId: design, skills: ['Figma'] });
    await hirerClient.whenConnected();
    expect(workerClient.jobsWatch).toEqual({ categoryId: design, skills: ['Figma'] });
    const first = await postJob({ categoryId: design, skills: ['figma', 'branding'], title: 'SDK 1' });
    await until(() => jobs.some((job) => job.id === first));

    // Every session of the worker revoked: 4001, a fresh login, the watch sent again.
    expect((await api.post('/v1/auth/logout-all', undefined, workerToken)).status).toBe(204);
    await until(() => reconnected);
    await workerClient.request('ping');
    const second = await postJob({ categoryId: design, skills: ['Figma'], title: 'SDK 2' });
    await until(() => jobs.some((job) => job.id === second));

    const bid = await api.call<Json>('POST', `/v1/jobs/${second}/bids`, {
      token: workerToken,
      headers: { 'idempotency-key': randomUUID() },
      body: { amount: 1_000, deliveryDays: 1, coverLetter: 'SDK' },
    });
    expect(bid.status).toBe(201);
    await until(() => events.some((event) => event.type === 'bid.placed' && event.bidId === bid.body.id));

    await workerClient.unwatchJobs();
    expect(workerClient.jobsWatch).toBeUndefined();
  });
});
