/**
 * Scaffolding of the Chromium browser tests: Debian's Chromium found (and the web app built) for a
 * test file, its pages (a context each, with a default timeout, closed at the end, their uncaught
 * exceptions collected), signing in to the web app through its form, and a page's WebSocket routed
 * through Playwright so that a test can cut the connection and restore it; `webAppTestFile` registers
 * the hooks a web-app test file shares (browser, web app and test node up before all, down after).
 */
import { spawnSync } from 'node:child_process';
import {
  type Browser,
  type BrowserContext,
  chromium,
  type Page,
  type ViewportSize,
  type WebSocketRoute,
} from 'playwright-core';
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { ensureProgram } from '../../src/platform/system-packages.js';
import { startTestNode, type TestNode } from './context.js';
import { type HttpClient, httpClient, makeContacts, type Registered, registerUser } from './http.js';

export const DESKTOP: ViewportSize = { width: 1280, height: 800 };

/**
 * Debian's Chromium headless shell, like PostgreSQL and Redis in the harness: apt's package
 * (`chromium-headless-shell`, the old headless mode as a binary of its own — what Playwright itself
 * runs for headless Chromium), installed when missing and running as root (never downloaded by
 * Playwright). The full `chromium` in headless mode draws the same pages with ~30 % more CPU
 * (web-session + web-review17-network: 64 → 46 CPU-s). Its path.
 */
export function findChromium(): Promise<string> {
  return ensureProgram(
    { command: 'chromium-headless-shell', debianPackage: 'chromium-headless-shell' },
    { install: process.getuid?.() === 0, searchPath: process.env.PATH ?? '/usr/bin:/bin' },
  );
}

/** Builds the web app (what the node serves) when it is stale: .ci/run builds it first, this covers a direct vitest run. */
export function buildWebApp(): void {
  const build = spawnSync(process.execPath, ['scripts/web-build.mjs', '--if-stale'], { stdio: 'inherit' });
  expect(build.status).toBe(0);
}

/** Headless Chromium at `executablePath` (no sandbox: tests may run as root), with `args` added. */
export function launchChromium(executablePath: string, args: string[] = []): Promise<Browser> {
  // --disable-gpu: no GPU process rendering in software beside the renderer (~8 % less CPU per
  // browser file on the CI box; the pages draw the same).
  return chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', ...args],
    headless: true,
  });
}

export interface PageOptions {
  /** DESKTOP unless said. */
  viewport?: ViewportSize;
  /** Runs on the new context before its first page opens (routes, init scripts). */
  prepare?: (context: BrowserContext) => Promise<unknown>;
  /** Prefixes this page's uncaught exceptions (`name: message`), for a test with several pages. */
  name?: string;
}

/**
 * One browser for a test file, launched in `beforeAll` and closed in `afterAll`. Each `newPage` is
 * the first page of a context of its own whose actions wait `timeout` ms at most; the uncaught
 * exceptions of every page of those contexts go to `pageErrors` (none expected: tests empty it as
 * they need). The functions are plain closures: destructure them.
 */
export function chromiumPages(timeout: number) {
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  const pageErrors: string[] = [];
  return {
    pageErrors,
    async launch(executablePath: string): Promise<Browser> {
      browser = await launchChromium(executablePath);
      return browser;
    },
    async newPage({ viewport = DESKTOP, prepare, name }: PageOptions = {}): Promise<Page> {
      if (browser === undefined) throw new Error('chromiumPages: launch() first');
      const context = await browser.newContext({ viewport });
      contexts.push(context);
      context.setDefaultTimeout(timeout);
      context.on('page', (page) =>
        page.on('pageerror', (error) =>
          pageErrors.push(name === undefined ? error.message : `${name}: ${error.message}`),
        ),
      );
      await prepare?.(context);
      return context.newPage();
    },
    /** Closes every context, then the browser. */
    async close(): Promise<void> {
      for (const context of contexts) await context.close().catch(() => undefined);
      await browser?.close();
    },
  };
}

/** The node a web-app test file's pages talk to: its base URL and a REST client of it. */
export interface WebAppNode {
  readonly base: string;
  readonly api: ReturnType<typeof httpClient>;
}

/**
 * The hooks of a test file of the web app in Chromium, registered where it is called (a file's top
 * level): before all, Chromium is found, the web app built, a test node started with `env` (handed
 * to `started`) and the browser launched, its pages' actions waiting `timeout` ms at most; before
 * each test, `pageErrors` is emptied; after all, the pages and the browser are closed, then the node
 * is stopped. Answers the file's `chromiumPages`.
 */
export function webAppTestFile(
  timeout: number,
  env: Record<string, string>,
  started: (node: WebAppNode) => void,
): ReturnType<typeof chromiumPages> {
  const pages = chromiumPages(timeout);
  let testNode: TestNode | undefined;
  beforeAll(async () => {
    const executablePath = await findChromium();
    buildWebApp();
    testNode = await startTestNode(env);
    const base = testNode.node.baseUrl;
    started({ base, api: httpClient(base) });
    await pages.launch(executablePath);
  });
  beforeEach(() => {
    pages.pageErrors.length = 0;
  });
  afterAll(async () => {
    await pages.close();
    await testNode?.stop();
  });
  return pages;
}

/** The node of a web-app test file, and its two users, contacts of each other (`me`, `other`). */
export interface TwoContacts extends WebAppNode {
  readonly me: Registered;
  readonly other: Registered;
}

/**
 * `webAppTestFile` (ledger audits off) with two registered users who are contacts, as room and
 * outbox tests need them; `ready` hands them over once registered, before the file's tests.
 */
export function twoContactsWebAppFile(
  timeout: number,
  ready: (file: TwoContacts) => void,
): ReturnType<typeof chromiumPages> {
  let node: WebAppNode | undefined;
  const pages = webAppTestFile(timeout, { LEDGER_AUDIT_INTERVAL_S: '0' }, (started) => {
    node = started;
  });
  beforeAll(async () => {
    if (node === undefined) throw new Error('the test node did not start');
    const me = await registerUser(node.api);
    const other = await registerUser(node.api);
    await makeContacts(node.api, me, other);
    ready({ ...node, me, other });
  });
  return pages;
}

/**
 * A new group room of `owner` and `member`, created by `owner`: its id. A group, since a direct room
 * of the same two would be the same room each time.
 */
export async function newGroupRoom(
  api: HttpClient,
  owner: Registered,
  member: Registered,
  title: string,
): Promise<string> {
  const room = await api.post<{ id: string }>(
    '/v1/rooms',
    { kind: 'group', title, memberIds: [member.id] },
    owner.accessToken,
  );
  expect(room.status).toBe(201);
  return room.body.id;
}

/** The web app's signed-in shell is there (its main navigation: the unreachable screen has a "Sign out" too). */
export const signedIn = (page: Page): Promise<void> =>
  page.getByRole('navigation', { name: 'Main' }).waitFor();

/** Signs `user` in through the web app's form at `base` (with `password` if not theirs) and waits for the shell. */
export async function signIn(
  page: Page,
  base: string,
  user: { username: string; password: string },
  password = user.password,
): Promise<void> {
  await page.goto(`${base}/#/signin`);
  await page.getByLabel('Username or email').fill(user.username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await signedIn(page);
}

/**
 * A page's link to the WebSocket endpoint through Playwright's WebSocket routing (Chromium's offline
 * mode leaves an open WebSocket alone). `route` it on the context (`PageOptions.prepare`); `drop`
 * closes open sockets and refuses new ones at once (and, unless `rest: false`, turns REST off with
 * offline mode), `reconnect` lets the SDK connect again. `cut` and `restore` do the same for a page
 * and wait for the app's connection indicator to say "offline" and "connected".
 */
export function socketLink() {
  const link = {
    down: false,
    sockets: new Set<WebSocketRoute>(),
    async route(context: BrowserContext): Promise<void> {
      await context.routeWebSocket(/\/ws$/, (socket) => {
        if (link.down) return void socket.close();
        socket.connectToServer();
        link.sockets.add(socket);
      });
    },
    /** `rest: false` leaves REST alone: only the socket is down. */
    async drop(context: BrowserContext, { rest = true } = {}): Promise<void> {
      link.down = true;
      if (rest) await context.setOffline(true);
      for (const socket of link.sockets) await socket.close();
      link.sockets.clear();
    },
    async reconnect(context: BrowserContext): Promise<void> {
      link.down = false;
      await context.setOffline(false);
    },
    async cut(page: Page, { rest = true } = {}): Promise<void> {
      await link.drop(page.context(), { rest });
      await page.getByRole('img', { name: 'offline' }).waitFor();
    },
    async restore(page: Page): Promise<void> {
      await link.reconnect(page.context());
      await page.getByRole('img', { name: 'connected' }).waitFor();
    },
  };
  return link;
}

/**
 * Holds the answer of the page's next GET matching `matches` on its way back (the server has
 * answered; the page has not seen it yet), so a test can make an older read answer last.
 * `held()` counts the answers held (0 or 1); `release()` lets it through and waits until the page
 * has it.
 */
export async function holdNextRead(
  page: Page,
  matches: (url: URL) => boolean,
): Promise<{ held: () => number; release: () => Promise<void> }> {
  let holdNext = true;
  let held = 0;
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  await page.route(matches, async (route) => {
    if (route.request().method() !== 'GET' || !holdNext) return route.continue();
    holdNext = false;
    const response = await route.fetch();
    held += 1;
    await gate;
    await route.fulfill({ response });
  });
  const answered = page.waitForResponse(
    (response) => matches(new URL(response.url())) && response.request().method() === 'GET',
  );
  return {
    held: () => held,
    release: async () => {
      open();
      await (await answered).finished();
    },
  };
}
