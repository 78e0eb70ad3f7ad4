/**
 * web/src/errors.ts and outcome.ts in Node (review 21): an error answer without a problem body of
 * gigwire's (a proxy's HTML page: nginx's 413, a 500 page, a load balancer's 429) says what its
 * status means, for the app's own calls (`call`, through errors.ts `answerError`) and for the SDK's
 * commands alike, never "HTTP 413" nor "413 Request Entity Too Large"; JSON that is not a problem
 * (`null`, `errors` that is not a list) is not a crash.
 */
import { describe, expect, it } from 'vitest';
import { createRestClient } from '../../protocol/src/client/rest.js';
import { answerError } from '../../web/src/errors.js';
import { failureOf, UNREACHABLE } from '../../web/src/outcome.js';

const html = (status: number, text: string) =>
  new Response(
    `<html><body><center><h1>${status} ${text}</h1></center><hr><center>nginx</center></body></html>`,
    {
      status,
      statusText: text,
      headers: { 'content-type': 'text/html' },
    },
  );

/** What the app shows of an error answer of the app's own calls (web/src/api.ts `call`). */
const shown = async (answer: () => Response, kind: 'read' | 'command' = 'command') => {
  const response = answer();
  return failureOf(answerError(response.status, await response.text()), kind).message;
};

/** The SDK's error for a transfer every attempt of which `answer()` answers. */
const commandRefusal = (answer: () => Response) =>
  createRestClient({
    baseUrl: 'http://gigwire.test',
    accessToken: () => 'token',
    fetch: async () => answer(),
  })
    .transfer({ toUserId: '00000000-0000-4000-8000-000000000000', amount: 100 })
    .catch((error: unknown) => error);

describe("a proxy's error page", () => {
  it('answering a call of the app says what its status means', async () => {
    const tooLarge = await shown(() => html(413, 'Request Entity Too Large'));
    expect(tooLarge).toContain('too large');
    expect(tooLarge).not.toContain('413 Request');
    // HTTP/2 has no status text: no bare "413 " either.
    expect(await shown(() => new Response('<html></html>', { status: 413 }))).toContain('too large');
    const failed = await shown(() => html(500, 'Internal Server Error'));
    expect(failed).toContain('Try again');
    expect(failed).not.toContain('Internal Server Error');
    expect(await shown(() => html(429, 'Too Many Requests'))).toContain('wait a moment');
    expect(await shown(() => html(502, 'Bad Gateway'), 'read')).toBe(UNREACHABLE);
    // JSON, but not a problem: the status speaks, nothing throws on the way.
    expect(await shown(() => new Response('null', { status: 413 }))).toContain('too large');
    expect(await shown(() => new Response('{"errors":"no"}', { status: 413 }))).toContain('too large');
    // gigwire's own problem+json still says what it says.
    const problem = { code: 'PAYLOAD_TOO_LARGE', detail: 'the body is over the size limit (64 KiB)' };
    expect(await shown(() => Response.json(problem, { status: 413 }))).toBe(problem.detail);
  });

  it("answering one of the SDK's commands says the same, not the SDK's text", async () => {
    const tooLarge = failureOf(await commandRefusal(() => html(413, 'Request Entity Too Large')), 'command');
    expect(tooLarge.message).toContain('too large');
    expect(tooLarge.message).not.toContain('HTTP');
    const notFound = failureOf(await commandRefusal(() => html(404, 'Not Found')), 'command');
    expect(notFound.message).toContain('Reload the page');
    expect(notFound.message).not.toContain('HTTP');
  });
});
