import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it, expect, beforeAll, afterEach, vi } from 'vitest';
import sharp from 'sharp';
import { isLinesightError, type LinesightError } from '@linesight/protocol';
import { HttpSnapshotCamera, type HttpSnapshotCameraOptions } from './http-snapshot-camera.ts';
import { eventually } from '@linesight/testkit/eventually';
import { recordingSink } from '@linesight/testkit/recording-sink';

type Behaviour = 'jpeg' | 'png' | 'error500' | 'text' | 'hang' | 'reset' | 'big';

interface SnapshotServer {
  url: string;
  /** Arrival time (performance.now()) of each request. */
  requestAtMs: number[];
  authorization: (string | undefined)[];
  maxConcurrent: number;
  close(): Promise<void>;
}

let jpeg: Buffer;
let png: Buffer;

beforeAll(async () => {
  const image = sharp({
    create: { width: 32, height: 24, channels: 3, background: { r: 10, g: 120, b: 200 } },
  });
  jpeg = await image.clone().jpeg().toBuffer();
  png = await image.clone().png().toBuffer();
});

/** Serves request k according to `script(k)` on 127.0.0.1, port 0. */
async function snapshotServer(script: (k: number) => Behaviour): Promise<SnapshotServer> {
  let inFlight = 0;
  const hanging: ServerResponse[] = [];
  const state = { requestAtMs: [] as number[], authorization: [] as (string | undefined)[] };
  let maxConcurrent = 0;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const k = state.requestAtMs.length;
    state.requestAtMs.push(performance.now());
    state.authorization.push(req.headers.authorization);
    inFlight += 1;
    maxConcurrent = Math.max(maxConcurrent, inFlight);
    res.on('close', () => (inFlight -= 1));
    switch (script(k)) {
      case 'jpeg':
        res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg);
        break;
      case 'png':
        res.writeHead(200, { 'content-type': 'image/png' }).end(png);
        break;
      case 'error500':
        res.writeHead(500, { 'content-type': 'text/plain' }).end('sensor offline');
        break;
      case 'text':
        res.writeHead(200, { 'content-type': 'image/jpeg' }).end('<html>login</html>');
        break;
      case 'hang':
        hanging.push(res);
        break;
      case 'reset':
        req.socket.destroy();
        break;
      case 'big':
        // No content-length: the camera must stop reading at maxBytes by itself.
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        res.write(jpeg);
        res.end(Buffer.alloc(64 * 1024));
        break;
    }
  };
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/snapshot.jpg`,
    ...state,
    get maxConcurrent() {
      return maxConcurrent;
    },
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) =>
        server.close((err) => (err ? reject(err) : resolve())),
      );
    },
  };
}

const teardown: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const step of teardown.splice(0).reverse()) await step();
  vi.useRealTimers();
});

function camera(options: HttpSnapshotCameraOptions): HttpSnapshotCamera {
  const cam = new HttpSnapshotCamera(options);
  teardown.push(() => cam.close());
  return cam;
}

async function server(script: (k: number) => Behaviour): Promise<SnapshotServer> {
  const s = await snapshotServer(script);
  teardown.push(() => s.close());
  return s;
}

function details(err: unknown): Record<string, unknown> {
  return (err as LinesightError).details ?? {};
}

// Backoff without jitter, so delays are exact: 20, 40, 80, 80, ...
const BACKOFF = { initialMs: 20, maxMs: 80, random: () => 0 };

describe('HttpSnapshotCamera against a real server', () => {
  it('delivers JPEG and PNG snapshots with contiguous seq', async () => {
    const srv = await server((k) => (k % 2 === 0 ? 'jpeg' : 'png'));
    const cam = camera({ url: srv.url, fps: 50 });
    const sink = recordingSink();
    await cam.start(sink);
    await eventually(() => sink.frames.length >= 6, { timeoutMs: 10_000, intervalMs: 5 });
    await cam.close();
    expect(sink.errors).toEqual([]);
    expect(sink.frames.map((f) => f.seq)).toEqual([...Array(sink.frames.length).keys()]);
    expect(sink.frames[0]?.image.equals(jpeg)).toBe(true);
    expect(sink.frames[1]?.image.equals(png)).toBe(true);
    expect((await sharp(sink.frames[1]?.image).metadata()).format).toBe('png');
    expect(srv.maxConcurrent).toBe(1);
  });

  it('reports failures as ERR_CAMERA, backs off exponentially, and resets after recovery', async () => {
    // 0-1 ok; 2 500; 3 not an image; 4 times out; 5 connection reset; 6 500;
    // 7-8 ok; 9 500; then ok.
    const plan: Behaviour[] = ['jpeg', 'jpeg', 'error500', 'text', 'hang', 'reset', 'error500'];
    plan.push('jpeg', 'jpeg', 'error500');
    const srv = await server((k) => plan[k] ?? 'jpeg');
    const cam = camera({ url: srv.url, fps: 100, timeoutMs: 300, backoff: BACKOFF });
    const sink = recordingSink();
    await cam.start(sink);
    await eventually(() => sink.frames.length >= 6, {
      timeoutMs: 10_000,
      intervalMs: 5,
      what: '6 frames',
    });
    await cam.close();

    expect(sink.frames.map((f) => f.seq)).toEqual([...Array(sink.frames.length).keys()]);
    expect(sink.errors).toHaveLength(6);
    expect(sink.errors.every((e) => isLinesightError(e, 'ERR_CAMERA'))).toBe(true);
    const d = sink.errors.map(details);
    expect(d.map((x) => x.retryInMs)).toEqual([20, 40, 80, 80, 80, 20]);
    expect(d.map((x) => x.attempt)).toEqual([1, 2, 3, 4, 5, 1]);
    expect(d[0]).toMatchObject({ status: 500, url: srv.url });
    expect(d[1]).toMatchObject({ contentType: 'image/jpeg' });
    const messages = sink.errors.map((e) => (e as Error).message);
    expect(messages[0]).toContain('500');
    expect(messages[1]).toContain('not a JPEG or PNG');
    expect(messages[2]).toContain('within 300 ms');
    expect(messages[3]).toMatch(/request failed/);
    expect(cam.stats).toMatchObject({ failures: 6, consecutiveFailures: 0 });

    // Each retry waited at least its backoff delay after the failure was reported.
    for (const [i, k] of [2, 3, 4, 5, 6, 9].entries()) {
      const retryAt = srv.requestAtMs[k + 1] ?? Number.NaN;
      const reportedAt = sink.errorAtMs[i] ?? Number.NaN;
      expect(retryAt - reportedAt).toBeGreaterThanOrEqual((d[i]?.retryInMs as number) - 2);
    }
    expect(srv.maxConcurrent).toBe(1);
  });

  it('refuses a body over maxBytes without reading it all', async () => {
    const srv = await server((k) => (k === 0 ? 'big' : 'jpeg'));
    const cam = camera({ url: srv.url, fps: 50, maxBytes: jpeg.length + 1000, backoff: BACKOFF });
    const sink = recordingSink();
    await cam.start(sink);
    await eventually(() => sink.frames.length >= 1, { timeoutMs: 10_000, intervalMs: 5 });
    expect(sink.errors).toHaveLength(1);
    expect((sink.errors[0] as Error).message).toContain(`exceeds ${jpeg.length + 1000} bytes`);
  });

  it('sends URL credentials as Basic auth and keeps them out of the description and errors', async () => {
    const srv = await server((k) => (k === 0 ? 'error500' : 'jpeg'));
    const url = srv.url.replace('http://', 'http://admin:s3cret@');
    const cam = camera({ url, fps: 50, backoff: BACKOFF });
    expect(cam.description).toBe(`http(${srv.url.replace('http://', 'http://***@')} @ 50 fps)`);
    const sink = recordingSink();
    await cam.start(sink);
    await eventually(() => sink.frames.length >= 1, { timeoutMs: 10_000, intervalMs: 5 });
    expect(srv.authorization[0]).toBe(`Basic ${Buffer.from('admin:s3cret').toString('base64')}`);
    expect(JSON.stringify(details(sink.errors[0]))).not.toContain('s3cret');
    expect((sink.errors[0] as Error).message).not.toContain('s3cret');
  });

  it('close() aborts a hanging request, resolves promptly, and nothing follows', async () => {
    const srv = await server(() => 'hang');
    const cam = camera({ url: srv.url, fps: 10, timeoutMs: 60_000 });
    const sink = recordingSink();
    await cam.start(sink);
    await eventually(() => srv.requestAtMs.length === 1, { timeoutMs: 10_000, intervalMs: 5 });
    const t0 = performance.now();
    await cam.close();
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(sink.frames).toEqual([]);
    expect(sink.errors).toEqual([]);
    await cam.close(); // Idempotent.
  });
});

describe('HttpSnapshotCamera pacing (fake clock, stub fetch)', () => {
  function stubFetch(answer: (k: number) => { delayMs: number; status?: number }): typeof fetch {
    let k = 0;
    return async (_input, init) => {
      const { delayMs, status = 200 } = answer(k++);
      // Like fetch, rejects with the signal's reason when aborted.
      await new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, delayMs);
        init?.signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(init.signal?.reason);
        });
      });
      return new Response(status === 200 ? jpeg : 'nope', { status });
    };
  }

  it('polls on an absolute schedule, one request at a time, and backs off on failure', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    const t0 = performance.now();
    const failing = new Set([3, 4, 7]);
    let active = 0;
    let maxActive = 0;
    const inner = stubFetch((k) => ({ delayMs: 30, status: failing.has(k) ? 503 : 200 }));
    const fetchStub: typeof fetch = async (...args) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      try {
        return await inner(...args);
      } finally {
        active -= 1;
      }
    };
    const cam = camera({
      url: 'http://camera.invalid/snap.jpg',
      fps: 10,
      fetch: fetchStub,
      backoff: { initialMs: 500, maxMs: 30_000, random: () => 0 },
    });
    const sink = recordingSink();
    await cam.start(sink);
    await vi.advanceTimersByTimeAsync(3000);
    const rel = (xs: number[]): number[] => xs.map((x) => Math.round(x - t0));
    // Polls at 0, 100, 200 succeed (answers come 30 ms later); poll 3 at 300
    // fails at 330 and is retried 500 ms later (830, fails at 860), then after
    // 1000 ms (1860, ok at 1890); the cadence resumes from there. Poll 7 at
    // 2060 fails: the backoff starts again at 500 ms.
    expect(rel(sink.frameAtMs)).toEqual([30, 130, 230, 1890, 1990, 2620, 2720, 2820, 2920]);
    expect(rel(sink.errorAtMs)).toEqual([330, 860, 2090]);
    expect(sink.errors.map((e) => details(e).retryInMs)).toEqual([500, 1000, 500]);
    expect(sink.errors.map((e) => details(e).status)).toEqual([503, 503, 503]);
    expect(sink.frames.map((f) => f.seq)).toEqual([...Array(sink.frames.length).keys()]);
    expect(maxActive).toBe(1);
  });

  it('polls right after a slow answer rather than bursting to catch up', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    const t0 = performance.now();
    const cam = camera({
      url: 'http://camera.invalid/snap.jpg',
      fps: 10,
      fetch: stubFetch((k) => ({ delayMs: k === 1 ? 450 : 10 })),
    });
    const sink = recordingSink();
    await cam.start(sink);
    await vi.advanceTimersByTimeAsync(800);
    expect(sink.frameAtMs.map((x) => Math.round(x - t0))).toEqual([10, 550, 561, 660, 760]);
  });

  it('rejects bad options naming every problem', () => {
    let caught: unknown;
    try {
      new HttpSnapshotCamera({ url: 'ftp://x/y', fps: 0, timeoutMs: -1, maxBytes: 0 });
    } catch (err) {
      caught = err;
    }
    expect(isLinesightError(caught, 'ERR_CAMERA')).toBe(true);
    for (const word of ['url', 'fps', 'timeoutMs', 'maxBytes']) {
      expect((caught as Error).message).toContain(word);
    }
  });
});
