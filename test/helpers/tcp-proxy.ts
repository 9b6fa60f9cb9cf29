/**
 * A TCP proxy for tests, in pure node:net, that can be told to stop forwarding without closing
 * anything: what a network partition looks like to both ends — no refusal, no reset, no answer.
 * Put it between the service and PostgreSQL, MariaDB or Redis.
 *
 *   stall('drop')  bytes in both directions are thrown away (the harsh case: whatever was sent
 *                  during the stall never arrives, so a connection used then is out of step for
 *                  good and must be discarded by its owner);
 *   stall('hold')  bytes are kept and delivered on resume(), as TCP retransmission would after a
 *                  short partition;
 *   resume()       forwards again (new connections included); closes that happened meanwhile
 *                  reach the other side now;
 *   cut()          resets every open connection (a crash or a firewall RST).
 */
import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections open now. */
  readonly open: number;
  stall(mode: 'drop' | 'hold'): void;
  resume(): void;
  cut(): void;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  held: { to: net.Socket; chunk: Buffer }[];
  /** A side closed while stalled: the other side is closed on resume. */
  closedWhileStalled: boolean;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let mode: 'forward' | 'drop' | 'hold' = 'forward';
  let accepted = 0;

  const send = (pair: Pair, to: net.Socket, chunk: Buffer) => {
    if (mode === 'drop') return;
    if (mode === 'hold') pair.held.push({ to, chunk });
    else if (!to.destroyed) to.write(chunk);
  };
  const closeBoth = (pair: Pair) => {
    if (mode !== 'forward') {
      pair.closedWhileStalled = true;
      return;
    }
    pair.client.destroy();
    pair.upstream.destroy();
    pairs.delete(pair);
  };

  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect(target.port, target.host);
    const pair: Pair = { client, upstream, held: [], closedWhileStalled: false };
    pairs.add(pair);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on('data', (chunk: Buffer) => send(pair, upstream, chunk));
    upstream.on('data', (chunk: Buffer) => send(pair, client, chunk));
    for (const socket of [client, upstream]) {
      socket.on('error', () => {});
      socket.on('close', () => closeBoth(pair));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;

  return {
    port,
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    stall(next) {
      mode = next;
    },
    resume() {
      mode = 'forward';
      for (const pair of [...pairs]) {
        for (const { to, chunk } of pair.held.splice(0)) if (!to.destroyed) to.write(chunk);
        if (pair.closedWhileStalled) closeBoth(pair);
      }
    },
    cut() {
      for (const pair of [...pairs]) {
        pair.client.resetAndDestroy();
        pair.upstream.resetAndDestroy();
        pairs.delete(pair);
      }
    },
    async close() {
      mode = 'forward';
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** `url` with its host and port replaced by the proxy's. */
export function throughProxy(url: string, proxy: TcpProxy): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
}
