import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cloud } from '../cloud.ts';
import { loadCloudConfig } from '../config.ts';

const NO_SCHEDULED_RUN = '0 0 29 2 *';
let dir: string;
let cloud: Cloud;
let auth: { authorization: string };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-drift-routes-'));
  cloud = new Cloud(
    // The schedule fires only on 29 February, so the one run counted below is the test's own
    // (every five minutes, a test that crossed a boundary on a slow machine counted two).
    {
      httpPort: 0,
      mqttPort: 0,
      dataDir: dir,
      drift: { camera: { minFrames: 50 }, schedule: NO_SCHEDULED_RUN },
    },
    pino({ level: 'silent' }),
  );
  await cloud.start();
  auth = { authorization: `Bearer ${cloud.adminToken.token}` };
});

afterAll(async () => {
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

describe('drift routes in the cloud', () => {
  it('fills nested drift defaults around what was given', () => {
    expect(cloud.config.drift.camera.minFrames).toBe(50);
    expect(cloud.config.drift.camera.frozenShare).toEqual({ warning: 0.5, alert: 0.9 });
    expect(cloud.config.drift.schedule).toBe(NO_SCHEDULED_RUN);
    expect(loadCloudConfig({ drift: { camera: { minFrames: 50 } } }).drift.schedule).toBe(
      '*/5 * * * *',
    );
    expect(cloud.config.drift.psi).toEqual({ warning: 0.1, alert: 0.25 });
  });

  it('lists alerts for operators only and validates filters', async () => {
    const url = `${cloud.urls.http}/v1/alerts`;
    expect((await fetch(url)).status).toBe(401);
    const ok = await fetch(`${url}?state=open&level=alert&deviceId=line-1`, { headers: auth });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ alerts: [] });
    expect((await fetch(`${url}?state=sleeping`, { headers: auth })).status).toBe(400);
  });

  it('runs the job on demand and reports it in status and metrics', async () => {
    const run = await fetch(`${cloud.urls.http}/v1/drift/runs`, { method: 'POST', headers: auth });
    expect(run.status).toBe(200);
    expect(await run.json()).toMatchObject({ devices: 0, windows: 0, findings: 0 });
    const status = (await (
      await fetch(`${cloud.urls.http}/v1/drift/status`, { headers: auth })
    ).json()) as { runs: number; lastRun: unknown };
    expect(status.runs).toBe(1);
    const metrics = await (await fetch(`${cloud.urls.http}/metrics`)).text();
    expect(metrics).toContain('linesight_drift_alerts_open{kind="product",level="alert"} 0');
    expect(metrics).toContain('linesight_drift_runs_total{result="ok"} 1');
  });
});
