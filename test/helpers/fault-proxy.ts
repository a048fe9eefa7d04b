import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/** One client connection and its upstream twin. */
interface Pair {
  client: Socket;
  upstream: Socket | undefined;
  /** A close that came during a partition, passed on when it heals. */
  pendingClose: boolean;
}

/**
 * A TCP proxy on 127.0.0.1 between a device and a server, for fault tests.
 * `partition()` blackholes traffic the way a cut cable does: bytes already
 * sent stay in flight (both sockets stop reading, so TCP holds them), closes
 * are not passed on, and new connections are accepted but get no answer; a
 * connection never fails fast. `heal()` lets everything through again.
 * `throttleBytesPerSec` slows what the server sends (a slow link), so a
 * download takes long enough to be interrupted.
 */
export class FaultProxy {
  readonly #pairs = new Set<Pair>();
  readonly #target: { host: string; port: number };
  #server: Server | undefined;
  #partitioned = false;
  /** Bytes per second from the server to the client; undefined = unthrottled. */
  throttleBytesPerSec: number | undefined;
  /** Connections accepted so far. */
  connections = 0;

  constructor(targetUrl: string) {
    const url = new URL(targetUrl);
    this.#target = { host: url.hostname, port: Number(url.port) };
  }

  /** Listens on a free port; resolves with its port. */
  async start(): Promise<number> {
    const server = createServer((client) => this.#accept(client));
    server.on('error', () => undefined);
    this.#server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  /** The proxy's URL with the scheme of `like` (mqtt://, http://). */
  url(like: string): string {
    const port = (this.#server?.address() as AddressInfo).port;
    return `${new URL(like).protocol}//127.0.0.1:${port}`;
  }

  get partitioned(): boolean {
    return this.#partitioned;
  }

  /** Blackholes every connection, open and new, until {@link heal}. */
  partition(): void {
    this.#partitioned = true;
    for (const p of this.#pairs) {
      p.client.pause();
      p.upstream?.pause();
    }
  }

  /** Lets traffic through again: held bytes, closes and connections go on. */
  heal(): void {
    this.#partitioned = false;
    for (const p of [...this.#pairs]) {
      if (p.pendingClose) {
        this.#drop(p);
        continue;
      }
      if (p.upstream === undefined) this.#connectUpstream(p);
      p.client.resume();
      p.upstream?.resume();
    }
  }

  #accept(client: Socket): void {
    this.connections++;
    const pair: Pair = { client, upstream: undefined, pendingClose: false };
    this.#pairs.add(pair);
    client.on('error', () => undefined);
    client.on('close', () => this.#closed(pair));
    if (this.#partitioned) client.pause();
    else this.#connectUpstream(pair);
  }

  #connectUpstream(pair: Pair): void {
    const upstream = createConnection(this.#target);
    pair.upstream = upstream;
    upstream.on('error', () => undefined);
    upstream.on('close', () => this.#closed(pair));
    pair.client.on('data', (chunk: Buffer) => {
      if (!upstream.write(chunk)) pair.client.pause();
    });
    upstream.on('drain', () => {
      if (!this.#partitioned) pair.client.resume();
    });
    upstream.on('data', (chunk: Buffer) => this.#toClient(pair, chunk));
    pair.client.on('drain', () => {
      if (!this.#partitioned) upstream.resume();
    });
    if (this.#partitioned) upstream.pause();
  }

  #toClient(pair: Pair, chunk: Buffer): void {
    const { client, upstream } = pair;
    const full = !client.write(chunk);
    const rate = this.throttleBytesPerSec;
    if (rate !== undefined && upstream !== undefined) {
      upstream.pause();
      setTimeout(
        () => {
          if (!this.#partitioned && !full) upstream.resume();
        },
        (chunk.length / rate) * 1000,
      ).unref();
    } else if (full) upstream?.pause();
  }

  #closed(pair: Pair): void {
    if (!this.#pairs.has(pair)) return;
    if (this.#partitioned) {
      // The other side must not learn of it before the partition heals.
      pair.pendingClose = true;
      return;
    }
    this.#drop(pair);
  }

  #drop(pair: Pair): void {
    this.#pairs.delete(pair);
    pair.client.destroy();
    pair.upstream?.destroy();
  }

  /** Closes every connection and the listener; idempotent. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.#partitioned = false;
    for (const p of [...this.#pairs]) this.#drop(p);
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
