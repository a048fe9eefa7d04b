import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FrameResult } from '@linesight/protocol';

/**
 * A plant's HTTP endpoint for verdicts on 127.0.0.1: collects the results POSTed
 * to it (one object or an array per request), answers 401 without the expected
 * bearer token, and 503 to the first `failFirst` requests, as a server that is
 * still starting would.
 */
export class WebhookReceiver {
  readonly results: FrameResult[] = [];
  /** Requests answered 503 (the agent must retry them). */
  refused = 0;
  /** Requests answered 401 (wrong or missing token). */
  unauthorized = 0;
  requests = 0;
  readonly #token: string;
  #failFirst: number;
  #server: Server | undefined;
  url = '';

  constructor(options: { token: string; failFirst?: number }) {
    this.#token = options.token;
    this.#failFirst = options.failFirst ?? 0;
  }

  async start(): Promise<string> {
    const server = createServer((req, res) => {
      void readBody(req).then((body) => {
        this.requests++;
        if (req.headers.authorization !== `Bearer ${this.#token}`) {
          this.unauthorized++;
          res.writeHead(401).end();
          return;
        }
        if (this.#failFirst > 0) {
          this.#failFirst--;
          this.refused++;
          res.writeHead(503).end();
          return;
        }
        const parsed = JSON.parse(body) as FrameResult | FrameResult[];
        this.results.push(...(Array.isArray(parsed) ? parsed : [parsed]));
        res.writeHead(204).end();
      });
    });
    this.#server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/verdicts`;
    return this.url;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
