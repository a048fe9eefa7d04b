import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudApiClient, type PredictResult } from '@linesight/api-client';
import { Cloud } from '../cloud.ts';
import { greyImage, meanScoreOnnx } from '@linesight/testkit/onnx';

const MAX_PREDICT_BYTES = 64 * 1024;

let dir: string;
let cloud: Cloud;
let api: CloudApiClient;
let jpeg: Buffer;
let png: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-predict-'));
  cloud = new Cloud(
    { httpPort: 0, mqttPort: 0, dataDir: dir, maxPredictBytes: MAX_PREDICT_BYTES },
    pino({ level: process.env.TEST_LOG ?? 'silent' }),
  );
  const urls = await cloud.start();
  api = new CloudApiClient({ baseUrl: urls.http, adminToken: cloud.adminToken.token });
  [jpeg, png] = await Promise.all([greyImage(200, 'jpeg'), greyImage(50, 'png')]);
});

afterAll(async () => {
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

function post(
  body: NonNullable<Parameters<typeof fetch>[1]>['body'],
  options: { contentType?: string; query?: string; token?: string | null } = {},
): Promise<Response> {
  const headers: Record<string, string> = {};
  if (options.token !== null)
    headers.authorization = `Bearer ${options.token ?? cloud.adminToken.token}`;
  if (options.contentType !== undefined) headers['content-type'] = options.contentType;
  return fetch(`${cloud.urls.http}/v1/predict${options.query ?? ''}`, {
    method: 'POST',
    headers,
    body,
  });
}

async function answer(res: Response): Promise<{ status: number; body: Record<string, unknown> }> {
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function multipart(image: Uint8Array, fileName: string): FormData {
  const form = new FormData();
  form.set('file', new Blob([image]), fileName);
  return form;
}

describe('POST /v1/predict', () => {
  it('answers 404 with a message while no model is registered', async () => {
    const { status, body } = await answer(await post(jpeg, { contentType: 'image/jpeg' }));
    expect(status).toBe(404);
    expect(body.message).toMatch(/no model is registered/);
  });

  it('scores a raw JPEG and a raw PNG with the only registered model', async () => {
    await api.publishModel({
      name: 'line-a',
      version: '1.0.0',
      onnx: meanScoreOnnx({ side: 32, threshold: 0.5 }),
    });
    const bright = await answer(await post(jpeg, { contentType: 'image/jpeg' }));
    expect(bright.status).toBe(200);
    expect(bright.body).toMatchObject({
      defect: true,
      threshold: 0.5,
      model: { name: 'line-a', version: '1.0.0' },
    });
    expect(bright.body.score).toBeCloseTo(200 / 255, 2);
    expect(bright.body.latencyMs).toBeGreaterThan(0);
    expect(bright.body.preprocessMs).toBeGreaterThanOrEqual(0);
    expect(bright.body.inferenceMs).toBeGreaterThanOrEqual(0);

    const dark = await api.predict(png);
    expect(dark.defect).toBe(false);
    expect(dark.score).toBeCloseTo(50 / 255, 4);
  });

  it('scores JPEG and PNG sent as multipart file parts', async () => {
    const a = await answer(await post(multipart(jpeg, 'a.jpg')));
    expect(a.status).toBe(200);
    expect(a.body.score).toBeCloseTo(200 / 255, 2);
    const b = await answer(await post(multipart(png, 'b.png')));
    expect(b.status).toBe(200);
    expect(b.body.score).toBeCloseTo(50 / 255, 4);
    const empty = new FormData();
    empty.set('note', 'no file here');
    const none = await answer(await post(empty));
    expect(none.status).toBe(400);
    expect(none.body.message).toMatch(/no file part/);
  });

  it('answers corrupt bytes with 415 and a message, and keeps serving', async () => {
    const junk = await answer(
      await post(Buffer.from('definitely not a picture'), { contentType: 'image/jpeg' }),
    );
    expect(junk.status).toBe(415);
    expect(junk.body).toMatchObject({ error: 'ERR_IMAGE_DECODE' });
    expect(junk.body.message).toMatch(/not a JPEG or PNG/);

    const truncated = await answer(
      await post(png.subarray(0, Math.floor(png.length / 2)), { contentType: 'image/png' }),
    );
    expect(truncated.status).toBe(415);
    expect(truncated.body.message).toMatch(/cannot be decoded/);

    const inMultipart = await answer(
      await post(multipart(Buffer.from([0xff, 0xd8, 0xff, 0, 1]), 'x.jpg')),
    );
    expect(inMultipart.status).toBe(415);

    const empty = await answer(await post(Buffer.alloc(0), { contentType: 'image/png' }));
    expect(empty.status).toBe(400);
    expect((await post(jpeg, { contentType: 'image/jpeg' })).status).toBe(200);
  });

  it('answers an oversized body with 413 and a message, raw or multipart', async () => {
    const big = Buffer.alloc(MAX_PREDICT_BYTES + 1, 7);
    big.set([0xff, 0xd8, 0xff]);
    const raw = await answer(await post(big, { contentType: 'image/jpeg' }));
    expect(raw.status).toBe(413);
    expect(raw.body.message).toMatch(/larger than the 65536-byte limit/);
    const form = await answer(await post(multipart(big, 'big.jpg')));
    expect(form.status).toBe(413);
    expect(form.body.message).toMatch(/65536-byte limit/);
    // A small file whose header claims 20000x20000 pixels is refused before decoding.
    const bomb = Buffer.alloc(33);
    bomb.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
    bomb.write('IHDR', 12, 'latin1');
    bomb.writeUInt32BE(20_000, 16);
    bomb.writeUInt32BE(20_000, 20);
    const pixels = await answer(await post(bomb, { contentType: 'image/png' }));
    expect(pixels.status).toBe(413);
    expect(pixels.body.message).toMatch(/20000x20000 pixels/);
    expect((await fetch(`${cloud.urls.http}/healthz`)).status).toBe(200);
  });

  it('answers a body that is not an image with 415 and a message', async () => {
    for (const contentType of ['text/plain', 'application/json', 'application/octet-stream']) {
      const res = await answer(await post('{"image": "x"}', { contentType }));
      expect(res.status, contentType).toBe(415);
      expect(res.body.message).toMatch(/is not accepted: send the image as image\/jpeg/);
    }
    const bare = await answer(await post(undefined));
    expect(bare.status).toBe(400);
    expect(bare.body.message).toMatch(/no body/);
  });

  it('needs the admin token', async () => {
    expect((await post(jpeg, { contentType: 'image/jpeg', token: null })).status).toBe(401);
  });

  it('picks name@version exactly and name as its newest version', async () => {
    await api.publishModel({
      name: 'line-a',
      version: '1.1.0',
      onnx: meanScoreOnnx({ side: 16, threshold: 0.9 }),
    });
    const latest = await api.predict(jpeg, { model: 'line-a' });
    expect(latest.model).toEqual({ name: 'line-a', version: '1.1.0' });
    expect(latest).toMatchObject({ threshold: 0.9, defect: false });
    const pinned = await api.predict(jpeg, { model: 'line-a@1.0.0' });
    expect(pinned.model).toEqual({ name: 'line-a', version: '1.0.0' });
    expect(pinned).toMatchObject({ threshold: 0.5, defect: true });
    // One name with two versions still needs no parameter.
    expect((await api.predict(png)).model.version).toBe('1.1.0');
  });

  it('answers unknown models with 404 and malformed or ambiguous selectors with 400', async () => {
    for (const query of ['?model=nope', '?model=nope@1.0.0', '?model=line-a@9.9.9']) {
      const res = await answer(await post(jpeg, { contentType: 'image/jpeg', query }));
      expect(res.status, query).toBe(404);
      expect(res.body.message).toMatch(/not registered/);
    }
    const bad = await answer(
      await post(jpeg, { contentType: 'image/jpeg', query: '?model=Bad%20Name' }),
    );
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/invalid model selector/);

    await api.publishModel({
      name: 'slow',
      version: '1.0.0',
      onnx: meanScoreOnnx({ side: 32, threshold: 0.5, slow: { size: 256, steps: 12 } }),
    });
    const ambiguous = await answer(await post(jpeg, { contentType: 'image/jpeg' }));
    expect(ambiguous.status).toBe(400);
    expect(ambiguous.body.message).toMatch(/2 models are registered \(line-a, slow\)/);
  });

  it('serves 20 concurrent requests off the event loop while /healthz stays responsive', async () => {
    const warm = await api.predict(jpeg, { model: 'slow@1.0.0' });
    expect(warm.model.name).toBe('slow');
    const started = performance.now();
    let burstDoneMs = 0;
    const burst = Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        api.predict(i % 2 === 0 ? jpeg : png, { model: 'slow@1.0.0' }),
      ),
    ).then((results) => {
      burstDoneMs = performance.now() - started;
      return results;
    });
    // Give the burst a moment to reach the workers, then probe health.
    await new Promise((r) => setImmediate(r));
    const health = await fetch(`${cloud.urls.http}/healthz`);
    const healthDoneMs = performance.now() - started;
    const results: PredictResult[] = await burst;
    expect(health.status).toBe(200);
    expect(results).toHaveLength(20);
    results.forEach((r, i) => expect(r.defect, `request ${i}`).toBe(i % 2 === 0));
    // /healthz answered while predictions were still being scored.
    expect(healthDoneMs).toBeLessThan(burstDoneMs);
  });

  it('documents the route in OpenAPI', async () => {
    const doc = (await (await fetch(`${cloud.urls.http}/openapi.json`)).json()) as {
      paths: Record<string, { post?: { requestBody?: { content: Record<string, unknown> } } }>;
    };
    const content = doc.paths['/v1/predict']?.post?.requestBody?.content ?? {};
    expect(Object.keys(content)).toEqual(
      expect.arrayContaining(['image/jpeg', 'image/png', 'multipart/form-data']),
    );
  });
});
