// kill -9 of a `linesight agent` in the middle of a sampled image's upload, end to end:
// `linesight cloud` with --s3-* as one process, s3rver as another, and between them and the
// agent a TCP proxy that lets sample PUTs through slowly (the window), and tells the test
// when one is half sent. The agent dies there; after its restart the sample is uploaded
// once more, completely, indexed once, and the stored object's sha256 is the image's.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CloudApiClient } from '@linesight/api-client';
import { writeDeviceCredentials } from '@linesight/agent';
import { startS3TestServer, type S3TestServer } from '@linesight/cloud/testing';
import { eventually } from '@linesight/testkit/eventually';
import { startCloudProcess } from '../helpers/cloud-process.ts';
import { LinesightProcess } from '../helpers/linesight-process.ts';

const models = inject('models');
const ID = 'upload-kill-1';
const ADMIN_TOKEN = 'upload-kill-admin-token-0123456789';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** One sample PUT seen by the proxy. */
interface PutSeen {
  path: string;
  bodyBytes: number;
  declaredBytes: number;
}

/**
 * A TCP proxy to s3rver. The bodies of sample PUTs are forwarded at `bytesPerTick` every
 * 50 ms while `slow` is on; everything else passes at once.
 */
class SlowSampleProxy {
  readonly puts: PutSeen[] = [];
  slow = true;
  onProgress: ((put: PutSeen) => void) | undefined;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(
    readonly target: URL,
    readonly bytesPerTick = 1024,
  ) {
    this.#server = createServer((client) => this.#connect(client));
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const address = this.#server.address() as { port: number };
    return `http://127.0.0.1:${address.port}`;
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #connect(client: Socket): void {
    const upstream = createConnection(Number(this.target.port), this.target.hostname);
    this.#sockets.add(client);
    this.#sockets.add(upstream);
    const timer = setInterval(() => pump(), 50);
    this.#timers.add(timer);
    const end = () => {
      clearInterval(timer);
      this.#timers.delete(timer);
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    upstream.pipe(client);
    // Bytes to send upstream, in order; a sample PUT's body goes at the slow rate.
    const queue: { buf: Buffer; put?: PutSeen }[] = [];
    const pump = () => {
      let budget = this.slow ? this.bytesPerTick : Number.POSITIVE_INFINITY;
      while (queue.length > 0) {
        const item = queue[0] as { buf: Buffer; put?: PutSeen };
        if (item.put === undefined) {
          upstream.write(item.buf);
          queue.shift();
          continue;
        }
        if (budget <= 0) break;
        const part = item.buf.subarray(0, Math.min(item.buf.length, budget));
        budget -= part.length;
        if (part.length === item.buf.length) queue.shift();
        else item.buf = item.buf.subarray(part.length);
        upstream.write(part);
        item.put.bodyBytes += part.length;
        this.onProgress?.(item.put);
      }
    };
    // Requests are parsed one after another (keep-alive) on connections that start with a
    // sample PUT (the device's, with Content-Length); any other connection passes through.
    let passthrough: boolean | undefined;
    let head = Buffer.alloc(0);
    let remaining = 0;
    let current: PutSeen | undefined;
    client.on('data', (data: Buffer) => {
      passthrough ??= !/^PUT [^ ]*\/samples\//.test(data.toString('latin1', 0, 256));
      if (passthrough) {
        upstream.write(data);
        return;
      }
      let rest = data;
      while (rest.length > 0) {
        if (remaining > 0) {
          const body = rest.subarray(0, remaining);
          remaining -= body.length;
          rest = rest.subarray(body.length);
          queue.push(current === undefined ? { buf: body } : { buf: body, put: current });
          if (remaining === 0) current = undefined;
          continue;
        }
        head = Buffer.concat([head, rest]);
        rest = Buffer.alloc(0);
        const at = head.indexOf('\r\n\r\n');
        if (at < 0) break;
        const header = head.subarray(0, at + 4);
        rest = head.subarray(at + 4);
        head = Buffer.alloc(0);
        const text = header.toString('latin1');
        const [method, path] = text.slice(0, text.indexOf('\r\n')).split(' ');
        remaining = Number(/content-length:\s*(\d+)/i.exec(text)?.[1] ?? 0);
        current = undefined;
        if (method === 'PUT' && path?.includes('/samples/') === true) {
          current = {
            path: (path.split('?')[0] ?? path).replace(/^\/[^/]+\//, ''),
            bodyBytes: 0,
            declaredBytes: remaining,
          };
          this.puts.push(current);
        }
        queue.push({ buf: header });
      }
      pump();
    });
  }
}

let s3: S3TestServer;
let proxy: SlowSampleProxy;
let dir: string;
let cloud: LinesightProcess;
let agent: LinesightProcess | undefined;
let httpUrl: string;
let mqttUrl: string;
let api: CloudApiClient;

function startAgent(dataDir: string): LinesightProcess {
  agent = new LinesightProcess([
    'agent',
    '--device-id',
    ID,
    '--cloud',
    httpUrl,
    '--mqtt',
    mqttUrl,
    '--camera',
    'synthetic:3:size=512',
    '--fps',
    '10',
    '--data-dir',
    dataDir,
    '--telemetry-interval',
    '1',
  ]);
  return agent;
}

async function get<T>(path: string): Promise<T> {
  const response = await fetch(`${httpUrl}${path}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

beforeAll(async () => {
  s3 = await startS3TestServer('linesight-upload-kill');
  proxy = new SlowSampleProxy(new URL(s3.endpoint));
  const endpoint = await proxy.start();
  dir = await mkdtemp(join(tmpdir(), 'linesight-upload-kill-'));
  ({
    process: cloud,
    httpUrl,
    mqttUrl,
    api,
  } = await startCloudProcess({
    dataDir: join(dir, 'cloud'),
    adminToken: ADMIN_TOKEN,
    s3: { server: s3, endpoint },
  }));
  await api.publishModel({
    name: 'm',
    version: '1.0.0',
    onnx: new Uint8Array(await readFile(models.v1)),
  });
}, 300_000);

afterAll(async () => {
  await agent?.stop();
  await cloud?.stop();
  await proxy?.close();
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('kill -9 of the agent mid-upload of a sampled image (S3 behind a slow link)', () => {
  it('uploads the sample once more after the restart, indexes it once, and its sha256 matches', async () => {
    const creds = await api.provisionDevice(ID);
    const dataDir = join(dir, 'agent');
    await writeDeviceCredentials(join(dataDir, 'device.json'), { ...creds, cloudUrl: httpUrl });
    await api.createRollout({ model: 'm', version: '1.0.0', devices: [ID] });
    // A few random samples, nothing else: large JPEGs at full quality, so a PUT takes seconds.
    await api.setEdgeSettings(ID, {
      sampling: {
        randomShare: 1,
        defects: false,
        uncertaintyBand: 0,
        capsPerHour: { random: 3, defect: 0, uncertain: 0, unknown: 0 },
        jpegQuality: 100,
        maxSide: 512,
        anomalyMap: false,
      },
    });
    const halfSent = new Promise<PutSeen>((resolve) => {
      proxy.onProgress = (put) => {
        if (put.bodyBytes >= 2048 && put.bodyBytes < put.declaredBytes - 2048) resolve(put);
      };
    });
    const first = startAgent(dataDir);
    const put = await Promise.race([
      halfSent,
      first.exited.then(() => {
        throw new Error(`agent exited:\n${first.text.slice(-15).join('\n')}`);
      }),
    ]);
    first.child.kill('SIGKILL');
    await first.exited;
    proxy.onProgress = undefined;
    const killedAt = put.bodyBytes;
    expect(killedAt).toBeLessThan(put.declaredBytes);
    proxy.slow = false;

    const again = startAgent(dataDir);
    await again.waitForLog((l) => l.msg === 'agent started', 90_000);
    const name = put.path.split('/').at(-1) as string;
    const [boot, seq] = name.replace('.jpg', '').split('-').map(Number) as [number, number];
    const sample = await eventually(
      async () => {
        const list = (
          await get<{ samples: { id: string; boot: number; seq: number; objectKey: string }[] }>(
            `/v1/samples?deviceId=${ID}&limit=1000`,
          )
        ).samples.filter((s) => s.boot === boot && s.seq === seq);
        return list.length > 0 ? list : undefined;
      },
      { what: `sample ${name} indexed after the restart`, timeoutMs: 120_000 },
    );
    // Indexed once.
    expect(sample).toHaveLength(1);
    expect(sample[0]?.objectKey).toBe(put.path);
    // The image the device kept, the object in S3 and the index agree.
    const one = await get<{
      sample: { sha256: string; bytes: number };
      downloadUrl: string;
    }>(`/v1/samples/${ID}/${sample[0]?.id}`);
    const body = Buffer.from(await (await fetch(one.downloadUrl)).arrayBuffer());
    expect(body.length).toBe(put.declaredBytes);
    expect(body.length).toBe(one.sample.bytes);
    expect(sha256(body)).toBe(one.sample.sha256);
    // Uploaded exactly once more: the cut PUT and one complete one, no further PUT of it.
    const putsOfIt = proxy.puts.filter((p) => p.path === put.path);
    expect(putsOfIt).toHaveLength(2);
    expect(putsOfIt[1]?.bodyBytes).toBe(put.declaredBytes);
    // Every sample of the killed run reaches the index exactly once.
    const stats = await get<{ ingest: { samplesMissing: number; samplesMismatch: number } }>(
      '/v1/edge/ingest-stats',
    );
    expect(stats.ingest.samplesMissing + stats.ingest.samplesMismatch).toBe(0);
    await again.stop();
  });
});
