/**
 * The WebSocket side: the project's SDK (protocol/src/client) on this origin's /ws, authenticated
 * with the session's connect token (the access token for everything else; the SDK asks again
 * when the server says it expired).
 * JSON encoding: readable in the browser's devtools, and msgpackr's code generation (new Function)
 * would need 'unsafe-eval', which the CSP does not allow.
 */
import { createClient, type GigwireClient } from '../../protocol/src/client/index.js';
import type { Session } from './session.js';

export function connectLive(session: Session): GigwireClient {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return createClient({
    url: `${scheme}://${location.host}/ws`,
    encoding: 'json',
    getAccessToken: ({ reason }) => session.socketCredential(reason !== 'connect'),
  });
}
