import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isLinesightError } from '@linesight/protocol';
import { putObject, uploadObject } from './put-object.ts';
import { requestUploads, type UploadTarget } from './upload-client.ts';

// A storage server whose answers the test scripts: each request takes the next step.
type Step = 'ok' | 'hang' | 'drop' | number | { status: number; body: string };

interface Script {
  server: Server;
  url: string;
  requests: { method: string; headers: IncomingMessage['headers']; body: Buffer }[];
  steps: Step[];
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

async function storage(
  steps: Step[],
  handler?: (req: IncomingMessage, res: ServerResponse, body: Buffer) => boolean,
): Promise<Script> {
  const script: Script = { server: undefined as unknown as Server, url: '', requests: [], steps };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      script.requests.push({ method: req.method ?? '', headers: req.headers, body });
      if (handler?.(req, res, body) === true) return;
      const step = script.steps.shift() ?? 'ok';
      if (step === 'hang') return;
      if (step === 'drop') {
        req.socket.destroy();
        return;
      }
      if (step === 'ok') {
        res.writeHead(200).end('{}');
        return;
      }
      const { status, body: text } = typeof step === 'number' ? { status: step, body: '{}' } : step;
      res.writeHead(status, { 'content-type': 'application/json' }).end(text);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  script.server = server;
  script.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return script;
}

const body = Buffer.from('jpeg bytes of a sampled frame');
const expected = { bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') };
const fast = { initialMs: 1, maxMs: 5 };

function target(url: string, expiresInMs = 60_000): UploadTarget {
  return {
    key: 'samples/d1/x.jpg',
    url: `${url}/put?sig=1`,
    method: 'PUT',
    headers: { 'content-type': 'image/jpeg', 'x-extra': 'kept' },
    expiresAt: new Date(Date.now() + expiresInMs).toISOString(),
    alreadyStored: false,
  };
}

async function failure(p: Promise<unknown>) {
  try {
    await p;
  } catch (err) {
    if (isLinesightError(err)) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('putObject', () => {
  it('PUTs the body with exactly the given method and headers', async () => {
    const s = await storage(['ok']);
    const report = await putObject({ target: target(s.url), body, expected, timeoutMs: 5000 });
    expect(report.attempts).toBe(1);
    expect(s.requests).toHaveLength(1);
    expect(s.requests[0]!.method).toBe('PUT');
    expect(s.requests[0]!.headers['content-type']).toBe('image/jpeg');
    expect(s.requests[0]!.headers['x-extra']).toBe('kept');
    expect(s.requests[0]!.body.equals(body)).toBe(true);
  });

  it('retries 5xx, 429, dropped connections and timeouts with backoff, then succeeds', async () => {
    const s = await storage([503, 'drop', 429, 'hang', 'ok']);
    const report = await putObject({
      target: target(s.url),
      body,
      expected,
      timeoutMs: 300,
      backoff: fast,
    });
    expect(report.attempts).toBe(5);
    expect(s.requests).toHaveLength(5);
  });

  it('gives up after maxAttempts, saying the failure is retryable', async () => {
    const s = await storage([500, 500, 500]);
    const err = await failure(
      putObject({
        target: target(s.url),
        body,
        expected,
        timeoutMs: 5000,
        maxAttempts: 3,
        backoff: fast,
      }),
    );
    expect(err.code).toBe('ERR_AGENT_UPLOAD');
    expect(err.details).toMatchObject({ retryable: true, attempts: 3 });
    expect(s.requests).toHaveLength(3);
  });

  it('never retries another 4xx', async () => {
    const s = await storage([
      { status: 400, body: '{"error":"ERR_CLOUD_UPLOAD_MISMATCH","message":"sha256 differs"}' },
    ]);
    const err = await failure(
      putObject({ target: target(s.url), body, expected, timeoutMs: 5000, backoff: fast }),
    );
    expect(err.code).toBe('ERR_AGENT_UPLOAD');
    expect(err.message).toContain('sha256 differs');
    expect(err.details).toMatchObject({ status: 400, retryable: false });
    expect(s.requests).toHaveLength(1);
  });

  it('reports an expired URL (local store and S3 answers) and one past expiresAt without sending', async () => {
    for (const text of [
      '{"error":"ERR_CLOUD_UPLOAD_EXPIRED","message":"expired"}',
      '<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>',
    ]) {
      const s = await storage([{ status: 403, body: text }]);
      const err = await failure(
        putObject({ target: target(s.url), body, expected, timeoutMs: 5000, backoff: fast }),
      );
      expect(err.code).toBe('ERR_AGENT_UPLOAD_EXPIRED');
      expect(s.requests).toHaveLength(1);
    }
    const s = await storage([]);
    const err = await failure(
      putObject({ target: target(s.url, -1000), body, expected, timeoutMs: 5000 }),
    );
    expect(err.code).toBe('ERR_AGENT_UPLOAD_EXPIRED');
    expect(s.requests).toHaveLength(0);
  });

  it('refuses to send bytes that differ from the declaration', async () => {
    const s = await storage([]);
    const err = await failure(
      putObject({
        target: target(s.url),
        body: Buffer.from('something else'),
        expected,
        timeoutMs: 5000,
      }),
    );
    expect(err.details).toMatchObject({ retryable: false, corrupt: true });
    expect(s.requests).toHaveLength(0);
  });

  it('stops waiting when aborted', async () => {
    const s = await storage([500, 500, 500]);
    const controller = new AbortController();
    const pending = putObject({
      target: target(s.url),
      body,
      expected,
      timeoutMs: 5000,
      backoff: { initialMs: 60_000, maxMs: 60_000 },
      signal: controller.signal,
    });
    // Abort once the first attempt has failed and the backoff wait began.
    const deadline = Date.now() + 10_000;
    while (s.requests.length === 0 && Date.now() < deadline)
      await new Promise((r) => setImmediate(r));
    controller.abort();
    const err = await failure(pending);
    expect(err.code).toBe('ERR_AGENT_UPLOAD');
    expect(s.requests).toHaveLength(1);
  });
});

describe('requestUploads and uploadObject', () => {
  const creds = (url: string) => ({
    cloudUrl: url,
    deviceId: 'd1',
    username: 'd1',
    password: 'secret',
    timeoutMs: 5000,
  });

  it('asks for URLs with device credentials and parses the answer', async () => {
    let seen: { path?: string; auth?: string; json?: unknown } = {};
    const s = await storage([], (req, res, raw) => {
      seen = { path: req.url, auth: req.headers.authorization, json: JSON.parse(raw.toString()) };
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ uploads: [{ key: 'samples/d1/x.jpg', alreadyStored: true }] }));
      return true;
    });
    const object = { name: 'x.jpg', contentType: 'image/jpeg' as const, ...expected };
    const uploads = await requestUploads({ ...creds(s.url), objects: [object] });
    expect(uploads).toEqual([{ key: 'samples/d1/x.jpg', alreadyStored: true }]);
    expect(seen.path).toBe('/v1/devices/d1/uploads');
    expect(seen.auth).toBe(`Basic ${Buffer.from('d1:secret').toString('base64')}`);
    expect(seen.json).toEqual({ objects: [object] });
  });

  it('marks 5xx retryable and 4xx not', async () => {
    const object = { name: 'x.jpg', contentType: 'image/jpeg' as const, ...expected };
    const s = await storage([502, { status: 403, body: '{"message":"not yours"}' }]);
    const first = await failure(requestUploads({ ...creds(s.url), objects: [object] }));
    expect(first.details).toMatchObject({ status: 502, retryable: true });
    const second = await failure(requestUploads({ ...creds(s.url), objects: [object] }));
    expect(second.details).toMatchObject({ status: 403, retryable: false });
    expect(second.message).toContain('not yours');
  });

  it('asks for a new URL when one expires, then uploads', async () => {
    let asked = 0;
    const s = await storage([], (req, res) => {
      if (req.method === 'POST') {
        asked++;
        const expiresAt = new Date(Date.now() + 60_000).toISOString();
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            uploads: [
              {
                key: 'samples/d1/x.jpg',
                url: `${s.url}/put?n=${asked}`,
                method: 'PUT',
                headers: { 'content-type': 'image/jpeg' },
                expiresAt,
                alreadyStored: false,
              },
            ],
          }),
        );
        return true;
      }
      if (req.url === '/put?n=1') {
        res.writeHead(403).end('{"error":"ERR_CLOUD_UPLOAD_EXPIRED"}');
        return true;
      }
      return false;
    });
    const report = await uploadObject({
      ...creds(s.url),
      object: { name: 'x.jpg', contentType: 'image/jpeg', ...expected },
      body,
      backoff: fast,
    });
    expect(report).toMatchObject({ key: 'samples/d1/x.jpg', alreadyStored: false, renewals: 1 });
    expect(asked).toBe(2);
  });
});
