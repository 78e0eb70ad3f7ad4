/**
 * Protocol version and encoding negotiation. The version lives in the subprotocol names, so a
 * future v2 can be offered next to v1 by the same client and picked by the server during the
 * upgrade, without a round trip after the socket opens.
 */

/**
 * Version of the WebSocket frame contract described in PROTOCOL.md. Bumped only for breaking
 * changes (removed or re-typed fields, changed semantics); adding frame types, optional fields or
 * error codes keeps it. Sent to the client in `hello.protocolVersion`.
 */
export const PROTOCOL_VERSION = 1 as const;
export type PROTOCOL_VERSION = typeof PROTOCOL_VERSION;

/**
 * How frames travel on a connection. `msgpack`: one standard MessagePack map per binary frame
 * (no extensions, no records). `json`: one JSON object per UTF-8 text frame, same schema, for
 * debugging and simple clients. Fixed for the life of a connection.
 */
export const Encoding = {
  MSGPACK: 'msgpack',
  JSON: 'json',
} as const;
export type Encoding = (typeof Encoding)[keyof typeof Encoding];

/** Used when the client offers none of our subprotocols (e.g. a plain `new WebSocket(url)`). */
export const DEFAULT_ENCODING: Encoding = Encoding.MSGPACK;

/**
 * WebSocket subprotocol names (`Sec-WebSocket-Protocol`) selecting the encoding. Matched exactly
 * (case-sensitive), as RFC 6455 compares them.
 */
export const Subprotocol = {
  MSGPACK: 'gigwire.v1.msgpack',
  JSON: 'gigwire.v1.json',
} as const;
export type Subprotocol = (typeof Subprotocol)[keyof typeof Subprotocol];

/** The subprotocol name of each encoding, e.g. what an SDK offers for the encoding it wants. */
export const SUBPROTOCOL: Readonly<Record<Encoding, Subprotocol>> = {
  [Encoding.MSGPACK]: Subprotocol.MSGPACK,
  [Encoding.JSON]: Subprotocol.JSON,
};

const encodingBySubprotocol: Readonly<Record<Subprotocol, Encoding>> = {
  [Subprotocol.MSGPACK]: Encoding.MSGPACK,
  [Subprotocol.JSON]: Encoding.JSON,
};

/**
 * Prefix of the subprotocol entry carrying an access token (`bearer.<jwt>`), the only way a
 * browser can send a credential with the upgrade request. Never echoed back by the server: the
 * response header would leak the token into proxies' logs. JWTs are base64url segments joined by
 * dots, all valid subprotocol token characters.
 */
export const BEARER_SUBPROTOCOL_PREFIX = 'bearer.';

/**
 * Prefix of the subprotocol entry carrying a connect token (`connect.<connectToken>`, returned
 * next to every access token): the same session and expiry, checked with an HMAC instead of an
 * Ed25519 signature, so opening a socket costs the server far less. Never echoed either.
 */
export const CONNECT_SUBPROTOCOL_PREFIX = 'connect.';

/**
 * Splits a `Sec-WebSocket-Protocol` header value (`"a, b,c"`) into its entries, trimmed, empty
 * ones dropped. Several header lines joined by the HTTP layer arrive comma-separated as well.
 */
export function parseSubprotocols(header: string | undefined): string[] {
  if (header === undefined) return [];
  return header
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
}

/** Outcome of the negotiation: the encoding to use, and the subprotocol to echo in the 101 response. */
export interface NegotiatedEncoding {
  readonly encoding: Encoding;
  /**
   * The entry to send back in `Sec-WebSocket-Protocol`, or null to send none (the client offered
   * none of ours). MUST be echoed when not null: a browser that offered subprotocols fails the
   * handshake when the response selects none.
   */
  readonly subprotocol: Subprotocol | null;
}

/**
 * Picks the encoding from the client's offered subprotocols (a header value or its parsed
 * entries). The first of ours in the client's order wins; `bearer.<jwt>`, `connect.<token>` and unknown
 * entries are ignored; when none of ours is offered the result is msgpack with no subprotocol to echo.
 */
export function negotiateEncoding(offered: string | readonly string[] | undefined): NegotiatedEncoding {
  const entries = typeof offered === 'string' || offered === undefined ? parseSubprotocols(offered) : offered;
  for (const entry of entries) {
    if (isSubprotocol(entry)) return { encoding: encodingBySubprotocol[entry], subprotocol: entry };
  }
  return { encoding: DEFAULT_ENCODING, subprotocol: null };
}

function isSubprotocol(entry: string): entry is Subprotocol {
  return Object.hasOwn(encodingBySubprotocol, entry);
}
