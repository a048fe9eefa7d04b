import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { Cloud } from '../cloud.ts';

let dir: string;
let cloud: Cloud;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-rate-limits-'));
  cloud = new Cloud(
    {
      httpPort: 0,
      mqttPort: 0,
      dataDir: dir,
      rateLimits: { perMinute: 5, predictPerMinute: 3 },
    },
    pino({ level: 'silent' }),
  );
  await cloud.start();
});

afterAll(async () => {
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

async function call(token: string | undefined, method: string, path: string) {
  const response = await fetch(`${cloud.urls.http}${path}`, {
    method,
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    body: (await response.text()).slice(0, 500),
  };
}

describe('REST rate limits', () => {
  it('gives each token its own budget, counts central inference apart, answers 429 with Retry-After, and never limits probes', async () => {
    const admin = cloud.adminToken.token;
    // Made before the admin's budget is spent: creating it is one of its five requests.
    const api = new CloudApiClient({ baseUrl: cloud.urls.http, adminToken: admin });
    const viewer = (await api.createToken('vic', 'viewer')).token;
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await call(admin, 'GET', '/v1/devices')).status);
    // The token create above was the first of five.
    expect(statuses).toEqual([200, 200, 200, 200, 429]);
    const refused = await call(admin, 'GET', '/v1/models');
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    expect(JSON.parse(refused.body)).toMatchObject({
      error: 'ERR_CLOUD_RATE_LIMITED',
      message: expect.stringMatching(/rate limit of 5 requests per minute/),
    });

    // Another token is not affected, and central inference has its own budget: the admin
    // may still ask for predictions (no model is registered: refused for that, not the rate).
    expect((await call(viewer, 'GET', '/v1/devices')).status).toBe(200);
    const predictions: number[] = [];
    for (let i = 0; i < 4; i++) predictions.push((await call(admin, 'POST', '/v1/predict')).status);
    expect(predictions.slice(0, 3).every((s) => s !== 429)).toBe(true);
    expect(predictions[3]).toBe(429);

    // Probes and unauthenticated answers are not counted against anyone.
    for (let i = 0; i < 8; i++) expect((await call(undefined, 'GET', '/healthz')).status).toBe(200);
    const text = await (await fetch(`${cloud.urls.http}/metrics`)).text();
    expect(text).toMatch(/linesight_http_rate_limited_total\{budget="control"\} 2\n/);
    expect(text).toMatch(/linesight_http_rate_limited_total\{budget="predict"\} 1\n/);
  });
});
