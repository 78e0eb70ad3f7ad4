/**
 * What the web app says when a request over the live connection gets no answer (review 16): the
 * SDK's GigwireError (a room joined, a message sent, the board watched while the socket is down)
 * reads as "Can't reach gigwire…", never as the SDK's developer text; a refusal by the server keeps
 * its own message.
 */
import { describe, expect, it } from 'vitest';
import { GigwireError } from '../../protocol/src/client/errors.js';
import { failureOf, isUnreachable, UNREACHABLE } from '../../web/src/outcome.js';

describe('failureOf for the socket', () => {
  it.each([
    ['TIMEOUT', 'no reply to "room.join" within 10000 ms'],
    ['DISCONNECTED', 'connection closed (1006)'],
    ['QUEUE_FULL', '100 requests are already waiting'],
  ] as const)('a request with %s says the server cannot be reached', (code, message) => {
    const error = new GigwireError(code, message, { requestType: 'room.join' });
    expect(isUnreachable(error)).toBe(true);
    expect(failureOf(error)).toEqual({ message: UNREACHABLE, fields: {} });
    expect(failureOf(error, 'command').message).toContain('It may have been applied');
  });

  it("keeps the server's refusal", () => {
    const error = new GigwireError('FORBIDDEN', 'You are not a member of this room.');
    expect(isUnreachable(error)).toBe(false);
    expect(failureOf(error).message).toBe('You are not a member of this room.');
  });
});
