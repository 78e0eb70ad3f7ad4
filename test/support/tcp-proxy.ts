/**
 * A small TCP forwarder for tests of network faults: every connection accepted on `port` is piped
 * to `target`. `blackhole()` makes it a path that died silently: nothing is forwarded in either
 * direction any more, and neither socket is closed (no FIN, no RST; a close of one side is not
 * passed on either), exactly what a dead NAT entry or a pulled cable looks like to both ends.
 * New connections accepted while blackholed hang the same way. `resume()` forwards again, bytes
 * held meanwhile included (reads were paused, so nothing was dropped mid-frame). `close()` ends it
 * all.
 */
import { createServer, type Server, Socket } from 'node:net';

export interface TcpProxy {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  blackhole(): void;
  resume(): void;
  close(): Promise<void>;
}

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let blackholed = false;
  let accepted = 0;

  // Reads are paused rather than discarded: the bytes wait in the kernel, as on a stalled path.
  const forward = (from: Socket, to: Socket) => {
    from.on('data', (chunk) => {
      if (!to.destroyed) to.write(chunk);
    });
    from.on('end', () => {
      if (!blackholed) to.end();
    });
    from.on('close', () => {
      if (!blackholed) to.destroy();
    });
    from.on('error', () => undefined);
  };

  const setFlowing = (pair: Pair, flowing: boolean) => {
    for (const socket of [pair.client, pair.upstream]) {
      if (flowing) socket.resume();
      else socket.pause();
    }
  };

  const server: Server = createServer((client) => {
    accepted += 1;
    const upstream = new Socket();
    const pair: Pair = { client, upstream };
    pairs.add(pair);
    client.on('close', () => {
      if (upstream.destroyed) pairs.delete(pair);
    });
    upstream.on('close', () => {
      if (client.destroyed) pairs.delete(pair);
    });
    forward(client, upstream);
    forward(upstream, client);
    upstream.connect(target.port, target.host);
    if (blackholed) setFlowing(pair, false);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('tcp proxy: no address');

  return {
    port: address.port,
    get accepted() {
      return accepted;
    },
    blackhole() {
      blackholed = true;
      for (const pair of pairs) setFlowing(pair, false);
    },
    resume() {
      blackholed = false;
      for (const pair of pairs) {
        // A side that closed while blackholed takes its partner with it now.
        if (pair.client.destroyed || pair.upstream.destroyed) {
          pair.client.destroy();
          pair.upstream.destroy();
        } else setFlowing(pair, true);
      }
    },
    async close() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
