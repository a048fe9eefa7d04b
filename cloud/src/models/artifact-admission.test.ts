// Artifact downloads beyond artifactDownloadConcurrency are refused with 503 and
// Retry-After, and a slot comes back however its download ends, also when the
// client goes away in the middle.
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder, encodeModel, intAttr, intsAttr } from '@linesight/model';
import { greyInputSpec } from '@linesight/protocol';
import { startTestCloud, type TestCloud } from '@linesight/testkit/cloud';
import { eventually } from '@linesight/testkit/eventually';

/** Large enough that the socket buffers cannot take it all: a client that stops reading stalls the stream. */
const PADDING_FLOATS = 8 * 1024 * 1024;

let testCloud: TestCloud;

/** A mean-score model carrying 32 MiB of unused weights, so its download takes a while. */
function bigModel(): Uint8Array {
  const side = 8;
  const g = new GraphBuilder('big');
  const image = g.input('image', [1, 1, side, side]);
  const mean = g.op('ReduceMean', [image], [intsAttr('axes', [1, 2, 3]), intAttr('keepdims', 0)]);
  g.op('Identity', [mean], [], 'score');
  g.output('score', [1]);
  g.weight('padding', [PADDING_FLOATS], new Float32Array(PADDING_FLOATS));
  return encodeModel(g.build(), {
    schema: 'linesight.model/v1',
    kind: 'test-mean',
    inputSpec: greyInputSpec(side),
    outputs: { score: 'score' },
    threshold: 0.5,
  });
}

/** Starts a download and resolves with its response head; the body is left unread (paused). */
function startDownload(): Promise<{ req: ClientRequest; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = request(`${testCloud.httpUrl}/v1/models/big/1.0.0/artifact`, {
      headers: { authorization: `Bearer ${testCloud.adminToken}` },
    });
    req.once('response', (res) => {
      res.pause();
      resolve({ req, res });
    });
    req.once('error', reject);
    req.end();
  });
}

async function download(): Promise<{
  status: number;
  retryAfter: string | null;
  connection: string | null;
  body: Buffer;
}> {
  const res = await fetch(`${testCloud.httpUrl}/v1/models/big/1.0.0/artifact`, {
    headers: { authorization: `Bearer ${testCloud.adminToken}` },
  });
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    connection: res.headers.get('connection'),
    body: Buffer.from(await res.arrayBuffer()),
  };
}

async function gauge(name: string): Promise<number> {
  const text = await (await fetch(`${testCloud.httpUrl}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
}

beforeAll(async () => {
  testCloud = await startTestCloud({ config: { artifactDownloadConcurrency: 1 } });
  const form = new FormData();
  form.set('name', 'big');
  form.set('version', '1.0.0');
  form.set('file', new Blob([bigModel()]), 'big.onnx');
  const res = await fetch(`${testCloud.httpUrl}/v1/models`, {
    method: 'POST',
    headers: { authorization: `Bearer ${testCloud.adminToken}` },
    body: form,
  });
  expect(res.status, await res.text()).toBe(201);
});

afterAll(async () => {
  await testCloud.close();
});

describe('artifact download admission (one slot)', () => {
  it('refuses a second download with 503, ERR_CLOUD_BUSY and Retry-After while one streams', async () => {
    const first = await startDownload();
    try {
      expect(first.res.statusCode).toBe(200);
      const second = await download();
      expect(second.status).toBe(503);
      expect(Number(second.retryAfter)).toBeGreaterThanOrEqual(1);
      // Not kept alive: a refused fleet holds no idle sockets in the cloud.
      expect(second.connection).toBe('close');
      const body = JSON.parse(second.body.toString()) as {
        error: string;
        details: { retryAfterSec: number; max: number; waiting: number };
      };
      expect(body.error).toBe('ERR_CLOUD_BUSY');
      expect(body.details).toMatchObject({ max: 1, waiting: 1 });
      expect(body.details.retryAfterSec).toBe(Number(second.retryAfter));
      expect(await gauge('linesight_artifact_downloads_deferred_total')).toBeGreaterThanOrEqual(1);
      expect(await gauge('linesight_artifact_downloads_in_progress')).toBe(1);
    } finally {
      first.req.destroy();
    }
  });

  it('gives the slot back when a client disconnects mid-download', async () => {
    await eventually(async () => (await gauge('linesight_artifact_downloads_in_progress')) === 0, {
      what: 'the slot of the first test freed',
    });
    const stalled = await startDownload();
    expect(stalled.res.statusCode).toBe(200);
    // Read a little, then stop: the rest cannot fit the socket buffers, so the stream is mid-way.
    const firstChunk = await new Promise<Buffer>((resolve) => {
      stalled.res.once('data', (chunk: Buffer) => {
        stalled.res.pause();
        resolve(chunk);
      });
      stalled.res.resume();
    });
    expect(firstChunk.length).toBeGreaterThan(0);
    expect((await download()).status).toBe(503);
    stalled.req.destroy();
    await eventually(async () => (await gauge('linesight_artifact_downloads_in_progress')) === 0, {
      what: 'the slot of the disconnected client freed',
    });
    const whole = await download();
    expect(whole.status).toBe(200);
    expect(whole.connection).toBe('close');
    expect(whole.body.length).toBeGreaterThan(PADDING_FLOATS * 4);
  });

  it('gives the slot back when the client left before the route took it', async () => {
    await eventually(async () => (await gauge('linesight_artifact_downloads_in_progress')) === 0, {
      what: 'earlier slots freed',
    });
    // Hold the route in its blob lookup (before it takes a slot) until the client has gone.
    const blobs = testCloud.cloud.blobs;
    const stat = blobs.stat.bind(blobs);
    const read = blobs.read.bind(blobs);
    let reading!: () => void;
    // The route reads the blob after it took its slot.
    const slotTaken = new Promise<void>((resolve) => (reading = resolve));
    blobs.read = async (key, range) => {
      reading();
      return read(key, range);
    };
    let entered!: () => void;
    const inLookup = new Promise<void>((resolve) => (entered = resolve));
    let proceed!: () => void;
    const gate = new Promise<void>((resolve) => (proceed = resolve));
    blobs.stat = async (key) => {
      entered();
      await gate;
      return stat(key);
    };
    try {
      const req = request(`${testCloud.httpUrl}/v1/models/big/1.0.0/artifact`, {
        headers: { authorization: `Bearer ${testCloud.adminToken}` },
      });
      req.on('error', () => undefined);
      req.end();
      await inLookup;
      const closed = new Promise((resolve) => req.once('close', resolve));
      req.destroy();
      await closed;
      // A request answered after the disconnect: the server has seen the socket close.
      expect((await fetch(`${testCloud.httpUrl}/healthz`)).status).toBe(200);
      proceed();
      await slotTaken;
    } finally {
      proceed();
      delete (blobs as { stat?: unknown }).stat;
      delete (blobs as { read?: unknown }).read;
    }
    // Given back as it was taken: its response had closed, and no 'close' would come.
    expect(await gauge('linesight_artifact_downloads_in_progress')).toBe(0);
    expect((await download()).status).toBe(200);
  });

  it('gives the slot back after a whole download and after a range request', async () => {
    await eventually(async () => (await gauge('linesight_artifact_downloads_in_progress')) === 0, {
      what: 'earlier slots freed',
    });
    for (let i = 0; i < 3; i++) expect((await download()).status).toBe(200);
    const ranged = await fetch(`${testCloud.httpUrl}/v1/models/big/1.0.0/artifact`, {
      headers: { authorization: `Bearer ${testCloud.adminToken}`, range: 'bytes=10-19' },
    });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer())).toHaveLength(10);
    await eventually(async () => (await gauge('linesight_artifact_downloads_in_progress')) === 0, {
      what: 'the slots of finished downloads freed',
    });
  });
});
