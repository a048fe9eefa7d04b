import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the server saw, with what it sent back so far. */
export interface SeenRequest {
  path: string;
  range: string | undefined;
  status: number | undefined;
  bytesSent: number;
}

/**
 * Serves test artifacts from memory and proxies everything else to the
 * cloud's HTTP port, optionally throttling artifact responses so a download
 * takes seconds. Records every request (path, Range header, bytes sent).
 */
export class ArtifactServer {
  readonly artifacts = new Map<string, Uint8Array>();
  readonly requests: SeenRequest[] = [];
  /** Bytes per second for proxied artifact bodies; undefined = unthrottled. */
  throttleBytesPerSec: number | undefined;
  /**
   * Sent instead of the device's credentials on proxied requests: the cloud lets a
   * device download only models the cloud itself assigned it, and here the test
   * signs the desired state.
   */
  upstreamAuthorization: string | undefined;
  #server: Server | undefined;
  #upstream: URL | undefined;

  /** Listens on a free port of 127.0.0.1 and resolves with the server's base URL. */
  async start(upstream: string): Promise<string> {
    this.#upstream = new URL(upstream);
    const server = createServer((req, res) => this.#handle(req, res));
    this.#server = server;
    server.on('error', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    res.on('error', () => undefined);
    const seen: SeenRequest = {
      path: req.url ?? '',
      range: req.headers.range,
      status: undefined,
      bytesSent: 0,
    };
    this.requests.push(seen);
    const local = this.artifacts.get(seen.path);
    if (local !== undefined) {
      seen.status = 200;
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(local);
      seen.bytesSent = local.byteLength;
      return;
    }
    const upstream = this.#upstream!;
    const forward = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: {
          ...req.headers,
          host: upstream.host,
          ...(this.upstreamAuthorization ? { authorization: this.upstreamAuthorization } : {}),
        },
      },
      (up) => {
        seen.status = up.statusCode;
        res.writeHead(up.statusCode ?? 502, up.headers);
        void this.#relay(up, res, seen, seen.path.endsWith('/artifact'));
      },
    );
    forward.on('error', () => res.destroy());
    res.on('close', () => forward.destroy());
    req.pipe(forward);
  }

  async #relay(
    up: IncomingMessage,
    res: ServerResponse,
    seen: SeenRequest,
    throttle: boolean,
  ): Promise<void> {
    const slice = 64 * 1024;
    try {
      for await (const chunk of up as AsyncIterable<Buffer>) {
        for (let at = 0; at < chunk.length; at += slice) {
          if (res.destroyed) {
            up.destroy();
            return;
          }
          const part = chunk.subarray(at, at + slice);
          res.write(part);
          seen.bytesSent += part.length;
          const rate = throttle ? this.throttleBytesPerSec : undefined;
          if (rate !== undefined)
            await new Promise((r) => setTimeout(r, (part.length / rate) * 1000));
        }
      }
      res.end();
    } catch {
      res.destroy();
    }
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
