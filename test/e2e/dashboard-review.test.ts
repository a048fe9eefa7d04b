// The drift and review pages of the dashboard in a real browser (Debian's
// chromium, driven by playwright-core) against a real cloud and two
// `linesight agent` processes on synthetic lines: one lit 45 grey levels
// brighter than the model's training images (product drift), one unchanged.
// Their telemetry windows and sampled frames reach the cloud over MQTT and the
// signed upload URLs, exactly as a plant's would.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { writeDeviceCredentials } from '@linesight/agent';
import type { TelemetryWindow } from '@linesight/protocol';
import { dashboardContext, firstLoad, launchChromium } from '../helpers/dashboard-browser.ts';
import { startTestCloud, type TestCloud } from '@linesight/testkit/cloud';
import { eventually } from '@linesight/testkit/eventually';
import { LinesightProcess } from '../helpers/linesight-process.ts';

const models = inject('models');
const MODEL = 'surface';
// The e2e models are trained on 192 px synthetic images with 40 % defects: the steady line matches.
const LINES = [
  { id: 'lit-1', camera: 'synthetic:23:defects=0.4,size=192,brightness=45' },
  { id: 'steady-1', camera: 'synthetic:21:defects=0.4,size=192' },
];

let shots: string;
let testCloud: TestCloud;
let base: string;
let adminToken: string;
let viewerToken: string;
const agents: LinesightProcess[] = [];
let browser: Browser;
/** Uncaught errors in any page: the last test fails if there were some. */
const pageErrors: string[] = [];

async function shot(p: Page, name: string): Promise<void> {
  await p.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function get<T>(path: string, token = adminToken): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as T };
}

/** A page of a fresh context signed in with `token`, at `hash`. */
async function open(token: string, hash: string): Promise<Page> {
  const ctx = await dashboardContext(browser, pageErrors, token);
  const p = await ctx.newPage();
  await p.goto(`${base}/${hash}`);
  return p;
}

interface Labels {
  current: { label: string; actor: string } | null;
  history: unknown[];
}

beforeAll(async () => {
  shots = await mkdtemp(join(tmpdir(), 'linesight-dashboard-review-shots-'));
  console.error(`dashboard drift and review screenshots: ${shots}`);
  testCloud = await startTestCloud({
    config: {
      drift: {
        // Checked from the page's button, never on a schedule.
        enabled: false,
        lookbackSec: 3600,
        // Windows here are seconds, not minutes: judge from two windows' worth of frames.
        minFrames: 50,
        camera: { minFrames: 30 },
      },
    },
    logger: pino({ level: 'warn' }),
  });
  const { api, dir, httpUrl: http, mqttUrl: mqtt } = testCloud;
  base = http;
  adminToken = testCloud.adminToken;
  viewerToken = (await api.createToken('vera', 'viewer')).token;
  await api.publishModel({ name: MODEL, version: '1.0.0', onnx: await readFile(models.v1) });
  for (const line of LINES) {
    const creds = await api.provisionDevice(line.id, { line: line.id });
    const dataDir = join(dir, `agent-${line.id}`);
    await writeDeviceCredentials(join(dataDir, 'device.json'), { ...creds, cloudUrl: http });
    agents.push(
      new LinesightProcess([
        'agent',
        '--device-id',
        line.id,
        '--cloud',
        http,
        '--mqtt',
        mqtt,
        '--camera',
        line.camera,
        '--fps',
        '10',
        '--data-dir',
        dataDir,
        '--window-sec',
        '3',
      ]),
    );
  }
  await api.createRollout({ model: MODEL, version: '1.0.0', devices: LINES.map((l) => l.id) });
  browser = await launchChromium();
}, 420_000);

afterAll(async () => {
  await browser?.close();
  for (const agent of agents) await agent.stop();
  await testCloud?.close();
  console.error(`dashboard drift and review screenshots kept in ${shots}`);
});

describe('the drift and review pages in chromium', () => {
  it('shows an open drift alert of the lit line and its PSI and KS against the levels', async () => {
    // Enough scored frames of the model on both lines for the job to judge (50 frames).
    for (const line of LINES)
      await eventually(
        async () => {
          const { body } = await get<{ windows: TelemetryWindow[] }>(
            `/v1/edge/windows?deviceId=${line.id}&limit=10000`,
          );
          const scored = body.windows
            .filter((w) => w.modelVersion === '1.0.0')
            .reduce((n, w) => n + w.counts.good + w.counts.defect, 0);
          return scored >= 120 ? true : undefined;
        },
        { what: `120 frames of ${line.id} scored by the model`, timeoutMs: 240_000 },
      );

    const page = await open(adminToken, '#/drift');
    await page.getByRole('heading', { name: 'Drift and alerts' }).waitFor();
    await page.getByText('No open alerts.').waitFor();
    await shot(page, '10-drift-no-alerts');
    await page.getByRole('button', { name: 'Check drift now' }).click();
    await page.getByTestId('drift-last-run').filter({ hasText: 'Last check' }).waitFor();
    const row = page.locator('tr[data-alert][data-state=open][data-device="lit-1"]');
    try {
      await row.first().waitFor({ timeout: 30_000 });
    } catch (err) {
      const status = await get<unknown>('/v1/drift/status');
      throw new Error(
        `no open alert of lit-1 on the page; the job: ${JSON.stringify(status.body)}`,
        {
          cause: err,
        },
      );
    }
    const text = (await row.allTextContents()).join(' | ');
    expect(text).toContain(`${MODEL} 1.0.0`);
    expect(text).toContain('brightness');
    // The same alert through the API.
    const { body } = await get<{ alerts: { deviceId: string; feature: string }[] }>(
      '/v1/alerts?state=open&deviceId=lit-1',
    );
    expect(body.alerts.map((a) => a.feature)).toContain('brightness');
    // The first open alert's device is charted: PSI and KS with the level lines.
    await page.locator('[data-testid=chart-psi] canvas').waitFor({ timeout: 60_000 });
    await page.locator('[data-testid=chart-ks] canvas').waitFor();
    expect(await page.locator('[data-testid=chart-psi] .u-legend').textContent()).toMatch(
      /brightness.*warning 0\.1.*alert 0\.25/,
    );
    // Camera health over time, against the camera alert levels.
    await page.locator('[data-testid=chart-camera-frames] canvas').waitFor({ timeout: 60_000 });
    await page.locator('[data-testid=chart-camera-clipped] canvas').waitFor();
    expect(await page.locator('[data-testid=chart-camera-frames] .u-legend').textContent()).toMatch(
      /frozen.*dark.*warning 50.*alert 90/,
    );
    await shot(page, '11-drift-alert');

    // The unchanged line: its own charts, picked from the device list.
    await page.getByLabel('Device').selectOption('steady-1');
    await page.waitForURL(/#\/drift\/steady-1$/);
    await page.locator('[data-testid=chart-psi] canvas').waitFor({ timeout: 60_000 });
    await shot(page, '12-drift-steady');

    // The fleet table shows each line's worst open product-drift alert, as the alerts API has it.
    await page.goto(`${base}/#/fleet`);
    const driftCell = (id: string) => page.locator(`tr[data-device="${id}"] [data-testid=drift]`);
    await driftCell('lit-1')
      .filter({ hasText: /^(warning|alert)$/ })
      .waitFor();
    // The steady line's cell matches the API; both are read again until they agree, since a
    // scheduled drift run may change its alerts in between.
    const worstProductLevel = async (id: string) => {
      const { body } = await get<{ alerts: { kind: string; level: string }[] }>(
        `/v1/alerts?state=open&deviceId=${id}`,
      );
      const levels = body.alerts.filter((a) => a.kind === 'product').map((a) => a.level);
      return levels.includes('alert') ? 'alert' : levels.includes('warning') ? 'warning' : 'ok';
    };
    await eventually(
      async () =>
        (await driftCell('steady-1').textContent()) === (await worstProductLevel('steady-1')),
      { what: "steady-1's drift cell to match its open alerts", timeoutMs: 30_000 },
    );
    await shot(page, '12b-fleet-drift-column');
    await page.context().close();

    // A viewer sees the alerts but no button that would run the job; the API refuses it anyway.
    const viewer = await open(viewerToken, '#/drift');
    await viewer.locator('tr[data-alert][data-device="lit-1"]').first().waitFor();
    expect(await viewer.locator('main button').count()).toBe(0);
    await viewer.context().close();
    const refused = await fetch(`${base}/v1/drift/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${viewerToken}` },
    });
    expect(refused.status).toBe(403);
  });

  it('labels samples with the keyboard, the next one at once, stored through the API', async () => {
    await eventually(
      async () => {
        const page = await testCloud.api.reviewQueue({ limit: 500 });
        return page.items.filter((i) => i.sample.verdict !== 'unknown').length >= 4
          ? true
          : undefined;
      },
      { what: 'four scored samples in the review queue', timeoutMs: 240_000 },
    );
    const page = await open(adminToken, '#/review');
    const current = page.getByTestId('review-current');
    await current.waitFor({ timeout: 60_000 });
    await page.locator('[data-testid=review-image] img.frame').waitFor();
    await page.waitForFunction(
      `document.querySelector('[data-testid=review-image] img.frame')?.naturalWidth > 0`,
    );
    await shot(page, '13-review');

    const labelled: [string, 'good' | 'defect'][] = [];
    for (const [key, label] of [
      ['g', 'good'],
      ['d', 'defect'],
    ] as const) {
      const sample = (await current.getAttribute('data-sample')) as string;
      await page.keyboard.press(key);
      // The next sample is on screen at once; the label is saved behind it.
      await page.locator(`[data-testid=review-current]:not([data-sample="${sample}"])`).waitFor();
      await page.locator(`li[data-labelled="${sample}"][data-status=saved]`).waitFor();
      labelled.push([sample, label]);
    }
    await shot(page, '14-review-labelled');
    for (const [sample, label] of labelled) {
      const [deviceId, sampleId] = sample.split('/') as [string, string];
      const { status, body } = await get<Labels>(
        `/v1/review/samples/${deviceId}/${sampleId}/labels`,
      );
      expect(status).toBe(200);
      expect(body.current).toMatchObject({ label, actor: 'admin' });
    }
    // Filters: one device only.
    await page.getByLabel('Device').selectOption('steady-1');
    await eventually(
      async () =>
        (await current.getAttribute('data-sample'))?.startsWith('steady-1/') ? true : undefined,
      { what: 'the queue of steady-1 only' },
    );
    await page.context().close();

    // A viewer: the queue without label buttons, keys do nothing, and the API refuses a label.
    const viewer = await open(viewerToken, '#/review');
    await viewer.getByTestId('review-read-only').waitFor({ timeout: 60_000 });
    expect(await viewer.getByRole('button', { name: /^(Good|Defect)/ }).count()).toBe(0);
    const seen = (await viewer.getByTestId('review-current').getAttribute('data-sample')) as string;
    await viewer.keyboard.press('g');
    await shot(viewer, '15-review-viewer');
    const [deviceId, sampleId] = seen.split('/') as [string, string];
    expect(
      (await get<Labels>(`/v1/review/samples/${deviceId}/${sampleId}/labels`)).body.current,
    ).toBeNull();
    const refused = await fetch(`${base}/v1/review/samples/${deviceId}/${sampleId}/labels`, {
      method: 'POST',
      headers: { authorization: `Bearer ${viewerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ label: 'good' }),
    });
    expect(refused.status).toBe(403);
    await viewer.context().close();
  });

  it('shows a device with its open alerts and newest samples with their maps, and the new pages on a tablet', async () => {
    const page = await open(adminToken, '#/devices/lit-1');
    await page.getByRole('heading', { name: 'lit-1' }).waitFor({ timeout: 60_000 });
    await page.locator('tr[data-alert][data-state=open][data-device="lit-1"]').first().waitFor();
    const frames = page.locator('[data-testid=recent-samples] img.frame');
    await frames.first().waitFor({ timeout: 60_000 });
    await page.waitForFunction(
      `[...document.querySelectorAll('[data-testid=recent-samples] img')].every((i) => i.complete && i.naturalWidth > 0)`,
      undefined,
      { timeout: 60_000 },
    );
    expect(await frames.count()).toBeGreaterThan(0);
    // The stored charts and a timeline with the alert that opened.
    await page.locator('[data-testid=chart-latency] canvas').waitFor({ timeout: 60_000 });
    await page
      .getByTestId('device-timeline')
      .locator('li[data-kind=alert]', { hasText: 'brightness' })
      .first()
      .waitFor();
    await shot(page, '16-device-alerts-samples');
    await page.context().close();

    // Readable on a tablet: both new pages at 820 x 1180.
    const tablet = await dashboardContext(browser, pageErrors, adminToken, {
      width: 820,
      height: 1180,
    });
    const tab = await tablet.newPage();
    await tab.goto(`${base}/#/drift`);
    await tab.locator('[data-testid=chart-psi] canvas').waitFor({ timeout: 60_000 });
    await shot(tab, '17-drift-tablet');
    await tab.goto(`${base}/#/review`);
    await tab.locator('[data-testid=review-image] img.frame').waitFor({ timeout: 60_000 });
    await shot(tab, '18-review-tablet');
    await tablet.close();
  });

  it('reports the first-load weight and time to interactive of the drift and review pages', async () => {
    const report: Record<string, { kB: number; requests: number; interactiveMs: number }> = {};
    for (const [name, hash, ready] of [
      ['drift', '#/drift', '[data-testid=chart-psi] canvas'],
      ['review', '#/review', '[data-testid=review-image] img.frame'],
    ] as const) {
      const m = await firstLoad(browser, `${base}/${hash}`, ready, pageErrors, {
        token: adminToken,
        settle: true,
      });
      report[name] = {
        kB: Math.round(m.bytes / 102.4) / 10,
        requests: m.requests,
        interactiveMs: m.interactiveMs,
      };
      expect(m.bytes).toBeGreaterThan(0);
    }
    expect(pageErrors).toEqual([]);
    console.error(
      `dashboard first loads (1280x800, empty cache, images included):\n${JSON.stringify(report, null, 1)}`,
    );
  });
});
