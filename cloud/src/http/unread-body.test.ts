import { Agent, createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { drainUnreadBody } from './unread-body.ts';

let server: Server | undefined;
/** TCP connections the server accepted. */
let connections = 0;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** A server that reads one chunk of each body, answers, then drains the rest with `maxBytes`. */
async function answerAfterFirstChunk(maxBytes: number): Promise<string> {
  server = createServer((req, res) => {
    req.once('data', () => {
      req.pause();
      res.end('refused');
      drainUnreadBody(req, maxBytes);
    });
    req.once('end', () => {
      if (!res.writableEnded) res.end('empty');
    });
  });
  connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function send(agent: Agent, url: string, body?: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { method: body ? 'POST' : 'GET', agent }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve(text));
    });
    req.setTimeout(20_000, () => {
      resolve('no answer');
      req.destroy();
    });
    req.on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? String(err)));
    req.end(body);
  });
}

describe('drainUnreadBody', () => {
  it('reads the rest of a body nobody finished, so the next request on the connection is answered', async () => {
    const url = await answerAfterFirstChunk(64 * 1024 * 1024);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect(await send(agent, url, Buffer.alloc(4 * 1024 * 1024))).toBe('refused');
    expect(await send(agent, url)).toBe('empty');
    expect(connections).toBe(1);
    agent.destroy();
  });

  it('closes the connection instead when more than the limit is left to read', async () => {
    const url = await answerAfterFirstChunk(1024 * 1024);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const first = await send(agent, url, Buffer.alloc(8 * 1024 * 1024));
    // The answer may or may not reach a client still sending; the connection must not live on.
    expect(['refused', 'EPIPE', 'ECONNRESET']).toContain(first);
    expect(await send(agent, url)).toBe('empty');
    expect(connections).toBe(2);
    agent.destroy();
  });
});
