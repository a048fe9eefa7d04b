import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { FrameResult } from '@linesight/protocol';
import type { OutputVerdict } from './output.ts';
import type { WebhookOutputConfig } from './outputs-config.ts';
import { WebhookOutput } from './webhook-output.ts';

function verdict(seq: number): OutputVerdict {
  const result: FrameResult = {
    schema: 'linesight.result/v1',
    deviceId: 'line-1',
    seq,
    capturedAt: new Date().toISOString(),
    verdict: 'unknown',
    score: null,
    threshold: null,
    model: null,
    reason: 'no model loaded',
    latencyMs: { capture: 0, queue: 0, preprocess: 0, inference: 0, total: 0 },
  };
  return { result, verdictAtMs: performance.now() };
}

function config(url: string, extra: Partial<WebhookOutputConfig> = {}): WebhookOutputConfig {
  return {
    kind: 'webhook',
    url,
    batchMax: 1,
    queueMax: 10,
    dropPolicy: 'drop-oldest',
    maxAgeMs: 0,
    timeoutMs: 1000,
    retryBackoff: { initialMs: 10, maxMs: 100 },
    ...extra,
  };
}

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function receiver(
  answer: (req: IncomingMessage, body: string) => number | 'hang',
): Promise<string> {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const status = answer(req, body);
      if (status !== 'hang') res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}

describe('WebhookOutput', () => {
  it('POSTs one verdict as JSON, or a batch as an array, with the configured headers', async () => {
    const bodies: unknown[] = [];
    const url = await receiver((req, body) => {
      expect(req.method).toBe('POST');
      expect(req.headers['content-type']).toBe('application/json');
      expect(req.headers['x-line']).toBe('3');
      bodies.push(JSON.parse(body));
      return 204;
    });
    const signal = new AbortController().signal;
    await new WebhookOutput(config(url, { headers: { 'x-line': '3' } })).write(
      [verdict(1)],
      signal,
    );
    await new WebhookOutput(config(url, { batchMax: 5, headers: { 'x-line': '3' } })).write(
      [verdict(2), verdict(3)],
      signal,
    );
    expect(bodies).toMatchObject([
      { seq: 1, verdict: 'unknown' },
      [
        { seq: 2, verdict: 'unknown' },
        { seq: 3, verdict: 'unknown' },
      ],
    ]);
  });

  it('fails on a non-2xx answer and stops when the signal aborts', async () => {
    let status: number | 'hang' = 503;
    const url = await receiver(() => status);
    const out = new WebhookOutput(config(url));
    await expect(out.write([verdict(1)], new AbortController().signal)).rejects.toMatchObject({
      code: 'ERR_AGENT_OUTPUT',
    });
    status = 'hang';
    const controller = new AbortController();
    const pending = out.write([verdict(2)], controller.signal);
    controller.abort();
    await expect(pending).rejects.toThrow();
  });
});
