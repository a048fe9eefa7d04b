import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { createGunzip, gunzipSync } from 'node:zlib';
import mqtt from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { CHANNEL_SCHEMAS, deviceTopic, encodePayload, type Telemetry } from '@linesight/protocol';
import { Cloud } from '../cloud.ts';
import { DEFAULT_GATES } from '../rollouts/rollout-types.ts';

let dir: string;
let cloud: Cloud;
let base: string;
let auth: { authorization: string };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-dashboard-plugin-'));
  cloud = new Cloud(
    { httpPort: 0, mqttPort: 0, dataDir: dir },
    pino({ level: process.env.TEST_LOG ?? 'silent' }),
  );
  base = (await cloud.start()).http;
  auth = { authorization: `Bearer ${cloud.adminToken.token}` };
});

afterAll(async () => {
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

function telemetry(deviceId: string, scored: number): Telemetry {
  return {
    schema: 'linesight.telemetry/v1',
    deviceId,
    at: new Date().toISOString(),
    intervalSec: 1,
    model: null,
    frames: { captured: scored + 2, scored, unknown: 1, droppedOverload: 0, defects: 3 },
    fps: 4.5,
    latencyMs: { p50: 3, p99: 9, max: 12 },
    errors: 0,
  };
}

/** Reads SSE events from a fetch response until `until` returns true. */
async function readUntil(
  res: Response,
  until: (event: string, data: { devices: { id: string; framesScored: number }[] }) => boolean,
): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error('stream ended');
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data && until(event, JSON.parse(data))) {
        await reader.cancel();
        return;
      }
    }
  }
}

describe('dashboard plugin', () => {
  it('serves the page and its modules without a token', async () => {
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('<script type="module" src="/app.js">');
    const app = await fetch(`${base}/app.js`);
    expect(app.status).toBe(200);
    expect(app.headers.get('content-type')).toContain('javascript');
    expect((await fetch(`${base}/no-such-page.js`)).status).toBe(404);
  });

  it('serves the allowlisted browser libraries gzipped, and nothing else from node_modules', async () => {
    // fetch decodes the body; the headers still tell what travelled.
    const res = await fetch(`${base}/vendor/uplot.mjs`, { headers: { 'accept-encoding': 'gzip' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-encoding')).toBe('gzip');
    const text = await res.text();
    expect(text).toContain('uPlot');
    expect(Number(res.headers.get('content-length'))).toBeLessThan(text.length / 2);
    const again = await fetch(`${base}/vendor/uplot.mjs`, {
      headers: { 'if-none-match': res.headers.get('etag') ?? '' },
    });
    expect(again.status).toBe(304);
    for (const name of ['preact.mjs', 'preact-hooks.mjs', 'htm.mjs', 'uplot.css'])
      expect((await fetch(`${base}/vendor/${name}`)).status, name).toBe(200);
    expect((await fetch(`${base}/vendor/..%2Fpackage.json`)).status).toBe(404);
    expect((await fetch(`${base}/vendor/pino.mjs`)).status).toBe(404);
  });

  it('tells the page who the token is and the gate defaults; refuses without a token', async () => {
    expect((await fetch(`${base}/v1/dashboard/session`)).status).toBe(401);
    const res = await fetch(`${base}/v1/dashboard/session`, { headers: auth });
    expect(await res.json()).toEqual({
      actor: 'admin',
      role: 'admin',
      canWrite: true,
      gateDefaults: DEFAULT_GATES,
    });
    expect((await fetch(`${base}/v1/dashboard/fleet/stream`)).status).toBe(401);
  });

  it('streams a snapshot, then the rows a device changes', async () => {
    const api = new CloudApiClient({ baseUrl: base, adminToken: cloud.adminToken.token });
    const { password } = await api.provisionDevice('cell-1', { line: '4' });
    const summary = (await (
      await fetch(`${base}/v1/dashboard/fleet`, { headers: auth })
    ).json()) as {
      totals: { devices: number };
      devices: { id: string; labels: Record<string, string> }[];
    };
    expect(summary.totals.devices).toBe(1);
    expect(summary.devices[0]).toMatchObject({ id: 'cell-1', labels: { line: '4' } });

    const device = await mqtt.connectAsync(cloud.urls.mqtt, {
      clientId: 'cell-1',
      username: 'cell-1',
      password,
      reconnectPeriod: 0,
      protocolVersion: 4,
    });
    try {
      const res = await fetch(`${base}/v1/dashboard/fleet/stream`, { headers: auth });
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      let sawSnapshot = false;
      let published = false;
      await readUntil(res, (event, data) => {
        if (event === 'snapshot') {
          sawSnapshot = true;
          expect(data.devices.map((d) => d.id)).toEqual(['cell-1']);
        }
        if (!published) {
          published = true;
          void device.publishAsync(
            deviceTopic('cell-1', 'telemetry'),
            encodePayload(CHANNEL_SCHEMAS.telemetry, telemetry('cell-1', 40), 'telemetry'),
            { qos: 1 },
          );
          return false;
        }
        if (event !== 'update') return false;
        const row = data.devices.find((d) => d.id === 'cell-1') as
          (Record<string, unknown> & { framesScored: number }) | undefined;
        if (row?.framesScored !== 40) return false;
        expect(row).toMatchObject({ fps: 4.5, p99Ms: 9, defectRate: 3 / 40, unknownRate: 1 / 42 });
        return true;
      });
      expect(sawSnapshot).toBe(true);
    } finally {
      await device.endAsync(true);
    }
  });
});

/** A GET with the given accept-encoding; resolves to the response (its body unread). */
function rawGet(path: string, encoding: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${base}${path}`,
      { headers: { ...auth, 'accept-encoding': encoding } },
      resolve,
    );
    req.on('error', reject);
    req.end();
  });
}

async function bodyOf(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('fleet snapshot compression', () => {
  it('gzips the fleet snapshot and the stream for clients that accept it', async () => {
    const api = new CloudApiClient({ baseUrl: base, adminToken: cloud.adminToken.token });
    for (let i = 0; i < 60; i++)
      await api.provisionDevice(`bulk-${String(i).padStart(3, '0')}`, { line: String(i % 4) });
    const plain = await rawGet('/v1/dashboard/fleet', 'identity');
    expect(plain.headers['content-encoding']).toBeUndefined();
    const plainBody = await bodyOf(plain);
    const zipped = await rawGet('/v1/dashboard/fleet', 'gzip, deflate');
    expect(zipped.headers['content-encoding']).toBe('gzip');
    const zippedBody = await bodyOf(zipped);
    const snapshot = JSON.parse(gunzipSync(zippedBody).toString('utf8')) as {
      totals: { devices: number };
      devices: { id: string }[];
    };
    expect(snapshot.devices.length).toBe(snapshot.totals.devices);
    expect(snapshot.totals.devices).toBeGreaterThanOrEqual(60);
    expect(zippedBody.length).toBeLessThan(plainBody.length / 4);

    // The stream: the first event arrives whole, without waiting for more output to fill a block.
    const stream = await rawGet('/v1/dashboard/fleet/stream', 'gzip');
    try {
      expect(stream.headers['content-encoding']).toBe('gzip');
      let text = '';
      for await (const chunk of stream.pipe(createGunzip())) {
        text += (chunk as Buffer).toString('utf8');
        if (text.includes('\n\n')) break;
      }
      const data = /^event: snapshot\ndata: (.*)$/m.exec(text)?.[1];
      expect(data).toBeDefined();
      expect((JSON.parse(data as string) as { devices: unknown[] }).devices.length).toBe(
        snapshot.totals.devices,
      );
    } finally {
      stream.destroy();
    }
  });
});

describe('cloud metrics', () => {
  it('times the dashboard routes in the request histogram of /metrics, by route pattern', async () => {
    expect((await fetch(`${base}/v1/dashboard/fleet`, { headers: auth })).status).toBe(200);
    expect((await fetch(`${base}/v1/devices/no-such-device`, { headers: auth })).status).toBe(404);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(
      /^linesight_http_request_duration_seconds_count\{method="GET",route="\/v1\/dashboard\/fleet",status="2xx"\} [1-9]/m,
    );
    expect(text).toMatch(
      /^linesight_http_request_duration_seconds_count\{method="GET",route="\/v1\/devices\/:id",status="4xx"\} [1-9]/m,
    );
    // The cloud's own metrics keep their names.
    expect(text).toMatch(/^linesight_devices \d/m);
  });
});
