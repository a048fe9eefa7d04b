import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { Cloud } from '@linesight/cloud';
import { FramePoolCamera, SimulatedFleet, renderFramePool } from '@linesight/firmware-sim';
import {
  VIEWPORT,
  dashboardContext,
  firstLoad as measureFirstLoad,
  launchChromium,
  type FirstLoad,
} from '../helpers/dashboard-browser.ts';
import { eventually } from '@linesight/testkit/eventually';

// The dashboard in a real browser (Debian's chromium, driven by playwright-core)
// against a real cloud and a small simulated fleet on two lines.
const MODEL = 'surface';
const models = inject('models');

let dir: string;
let shots: string;
let cloud: Cloud;
let api: CloudApiClient;
let base: string;
let adminToken: string;
let aliceToken: string;
const fleets: SimulatedFleet[] = [];
let deviceIds: string[] = [];
let browser: Browser;
let context: BrowserContext;
let page: Page;
/** Uncaught errors in any page: the last test fails if there were some. */
const pageErrors: string[] = [];

async function allOn(version: string): Promise<boolean> {
  const list = await api.listDevices();
  return deviceIds.every((id) => list.find((d) => d.id === id)?.model?.version === version);
}

/** Waits until the rollout page shows `name` as the rollout's state. */
async function state(name: string, timeout = 60_000): Promise<void> {
  await page
    .getByTestId('rollout-state')
    .filter({ hasText: new RegExp(`^${name.replace('_', ' ')}$`) })
    .waitFor({ timeout });
}

async function shot(p: Page, name: string): Promise<void> {
  await p.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

/** A fresh context (empty cache) signed in with `token`, if given. */
function newContext(token?: string, viewport = VIEWPORT): Promise<BrowserContext> {
  return dashboardContext(browser, pageErrors, token, viewport);
}

/** Loads `path` in a fresh context: bytes transferred until `ready` shows, and when it did. */
function firstLoad(path: string, ready: string, token?: string): Promise<FirstLoad> {
  return measureFirstLoad(browser, `${base}${path}`, ready, pageErrors, {
    ...(token !== undefined ? { token } : {}),
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-dashboard-'));
  shots = await mkdtemp(join(tmpdir(), 'linesight-dashboard-shots-'));
  console.error(`dashboard screenshots: ${shots}`);
  cloud = new Cloud(
    { httpPort: 0, mqttPort: 0, dataDir: join(dir, 'cloud') },
    pino({ level: 'warn' }),
  );
  const urls = await cloud.start();
  base = urls.http;
  adminToken = cloud.adminToken.token;
  api = new CloudApiClient({ baseUrl: urls.http, adminToken });
  const created = await fetch(`${base}/v1/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ actor: 'alice' }),
  });
  aliceToken = ((await created.json()) as { token: string }).token;
  await api.publishModel({ name: MODEL, version: '1.0.0', onnx: await readFile(models.v1) });
  await api.publishModel({ name: MODEL, version: '1.1.0', onnx: await readFile(models.v2) });

  const frames = await renderFramePool({
    seed: 5,
    count: 32,
    width: 192,
    height: 192,
    defectRate: 0.2,
  });
  for (const [line, prefix] of [
    ['1', 'press'],
    ['2', 'weld'],
  ] as const) {
    const fleet = new SimulatedFleet({
      cloudUrl: urls.http,
      adminToken,
      devices: 3,
      idPrefix: prefix,
      labels: { line },
      dataDir: join(dir, `fleet-${prefix}`),
      camera: (index) => new FramePoolCamera({ frames, fps: 3, offset: index * 5 }),
      telemetryIntervalSec: 1,
      // Short telemetry windows, so the device page's stored charts fill within the test.
      agentConfig: { windowSec: 2 },
      logger: pino({ level: 'warn' }),
      shareModels: true,
    });
    fleets.push(fleet);
    await fleet.start();
    deviceIds.push(...fleet.deviceIds);
  }
  deviceIds = deviceIds.sort();
  await api.createRollout({ model: MODEL, version: '1.0.0' });
  await eventually(() => allOn('1.0.0'), {
    what: 'all devices on 1.0.0',
    timeoutMs: 90_000,
    intervalMs: 250,
  });

  browser = await launchChromium();
  context = await newContext();
  page = await context.newPage();
  page.on('dialog', (dialog) => void dialog.accept());
}, 420_000);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  for (const fleet of fleets) await fleet.close();
  await cloud?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  console.error(`dashboard screenshots kept in ${shots}`);
});

describe('the fleet dashboard in chromium', () => {
  it('signs in with a token kept in sessionStorage, never in the URL', async () => {
    await page.goto(base);
    await page.locator('#token').waitFor();
    await shot(page, '01-sign-in');
    await page.fill('#token', 'lsa_not-a-real-token-at-all');
    await page.click('button[type=submit]');
    await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor();
    await page.fill('#token', adminToken);
    await page.click('button[type=submit]');
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    expect(await page.evaluate("sessionStorage.getItem('linesight.token')")).toBe(adminToken);
    expect(page.url()).not.toContain(adminToken);
    expect(await page.getByTestId('role').textContent()).toBe('admin');
  });

  it('shows every device and its frame count rising without a reload', async () => {
    const navigations: string[] = [];
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations.push(f.url());
    });
    const rows = page.locator('tr[data-device]');
    await eventually(async () => (await rows.count()) === deviceIds.length, {
      what: 'all devices listed',
    });
    expect(
      await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-device'))),
    ).toEqual(deviceIds);
    const first = deviceIds[0] as string;
    const cell = page.locator(`tr[data-device="${first}"] [data-testid=frames]`);
    const before = Number(await cell.textContent());
    await page.waitForFunction(
      `Number(document.querySelector('tr[data-device="${first}"] [data-testid=frames]')?.textContent) > ${before}`,
      undefined,
      { timeout: 30_000 },
    );
    expect(navigations).toEqual([]);
    await page
      .getByTestId('live-state')
      .filter({ hasText: /^Live$/ })
      .waitFor();
    await shot(page, '02-fleet');

    // Filter by label, then by state.
    await page.getByLabel('Label').selectOption('line=2');
    await eventually(async () => (await rows.count()) === 3, { what: 'only line 2' });
    expect(
      await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-device'))),
    ).toEqual(deviceIds.filter((id) => id.startsWith('weld')));
    await page.getByLabel('Label').selectOption('');
    await page.getByLabel('State').selectOption('offline');
    await page.getByText('No device matches these filters.').waitFor();
    await page.getByLabel('State').selectOption('all');

    const tablet = await newContext(adminToken, { width: 820, height: 1180 });
    const tab = await tablet.newPage();
    await tab.goto(base);
    await tab.locator('tr[data-device]').first().waitFor();
    await shot(tab, '02b-fleet-tablet');
    await tablet.close();
  });

  it('shows a device with its stored charts, model versions and timeline', async () => {
    const id = deviceIds[0] as string;
    await page.click(`a[href="#/devices/${id}"]`);
    await page.getByRole('heading', { name: id }).waitFor();
    await page
      .getByTestId('running')
      .filter({ hasText: `${MODEL} 1.0.0` })
      .waitFor();
    // From the telemetry windows the cloud stored, refreshed while the page is open.
    for (const chart of ['chart-fps', 'chart-latency', 'chart-defects'])
      await page.locator(`[data-testid=${chart}] canvas`).waitFor({ timeout: 60_000 });
    await page
      .locator('[data-testid=version-bar] li[data-version="1.0.0"]')
      .waitFor({ timeout: 30_000 });
    const timeline = page.getByTestId('device-timeline');
    await timeline.locator('li[data-kind=model]').first().waitFor({ timeout: 30_000 });
    await timeline.locator('li[data-kind=rollout]').first().waitFor();
    await timeline.locator('li[data-kind=audit]', { hasText: 'device.provision' }).waitFor();
    // The same series through the API, behind the same token.
    const res = await fetch(`${base}/v1/dashboard/devices/${id}/series?hours=1`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    const series = (await res.json()) as { points: { frames: number; fps: number | null }[] };
    expect(series.points.reduce((n, p) => n + p.frames, 0)).toBeGreaterThan(0);
    await shot(page, '03-device');
  });

  it('lists model versions and enforces the second-actor approval', async () => {
    await page.click('nav a[href="#/models"]');
    const row = page.locator('tr[data-version="1.1.0"]');
    await row.waitFor();
    await page.locator('tr[data-version="1.0.0"]').filter({ hasText: 'candidate' }).waitFor();
    await row.getByRole('button', { name: /^Approve/ }).click();
    await row.getByRole('alert').filter({ hasText: 'ERR_CLOUD_FORBIDDEN' }).waitFor();
    await shot(page, '04-models-refused');

    // A second operator approves and promotes it.
    const ctx = await newContext(aliceToken);
    const alice = await ctx.newPage();
    await alice.goto(`${base}/#/models`);
    const arow = alice.locator('tr[data-version="1.1.0"]');
    await arow.getByRole('button', { name: /^Approve/ }).click();
    await arow.filter({ hasText: 'alice' }).waitFor();
    await arow.getByRole('combobox').selectOption('production');
    await arow.getByRole('button', { name: 'Set stage' }).click();
    await arow.locator('.badge', { hasText: 'production' }).waitFor();
    await shot(alice, '04-models');
    await ctx.close();
    expect((await api.listModels()).find((m) => m.version === '1.1.0')?.stage).toBe('production');
  });

  it('starts a rollout from the form and watches it finish', async () => {
    await page.click('nav a[href="#/rollouts"]');
    await page.getByText('New rollout').click();
    const form = page.getByRole('form', { name: 'New rollout' });
    expect(await form.locator('input[name=gate-maxP99LatencyRatio]').inputValue()).toBe('2');
    await form.locator('select[name=version]').selectOption(`${MODEL}@1.1.0`);
    await form.locator('input[name=waves]').fill('50, 100');
    await form.locator('input[name=soakSec]').fill('2');
    await shot(page, '05-rollout-form');
    await form.getByRole('button', { name: 'Start rollout' }).click();
    await page.waitForURL(/#\/rollouts\/[0-9a-f-]{36}$/);
    const id = page.url().split('/').pop() as string;
    // Waves advance on the page as the engine moves them.
    await page.locator('li[data-wave="0"][data-state=passed]').waitFor({ timeout: 120_000 });
    await state('completed', 120_000);
    await page.locator('li[data-wave="1"][data-state=passed]').waitFor();
    expect(await page.getByTestId('rollout-done').textContent()).toBe(String(deviceIds.length));
    await shot(page, '06-rollout-completed');
    expect((await api.getRollout(id)).state).toBe('completed');
    await eventually(() => allOn('1.1.0'), {
      what: 'all devices on 1.1.0',
      timeoutMs: 60_000,
      intervalMs: 250,
    });
  });

  it('aborts a rollout from its page', async () => {
    await page.click('nav a[href="#/rollouts"]');
    await page.getByText('New rollout').click();
    const form = page.getByRole('form', { name: 'New rollout' });
    await form.locator('select[name=version]').selectOption(`${MODEL}@1.0.0`);
    await form.locator('input[name=labels]').fill('line=1');
    await form.locator('input[name=waves]').fill('34, 100');
    await form.locator('input[name=soakSec]').fill('600');
    await form.getByRole('button', { name: 'Start rollout' }).click();
    await page.waitForURL(/#\/rollouts\/[0-9a-f-]{36}$/);
    const id = page.url().split('/').pop() as string;
    await page.locator('li[data-wave="0"][data-state=soaking]').waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Pause' }).click();
    await state('paused');
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByRole('button', { name: 'Pause' }).waitFor();
    await page.getByRole('button', { name: 'Abort' }).click();
    await state('aborted');
    await page.getByRole('button', { name: 'Abort' }).waitFor({ state: 'detached' });
    await shot(page, '07-rollout-aborted');
    expect((await api.getRollout(id)).state).toBe('aborted');
    await eventually(() => allOn('1.1.0'), {
      what: 'line 1 back on 1.1.0',
      timeoutMs: 60_000,
      intervalMs: 250,
    });

    await page.click('nav a[href="#/rollouts"]');
    await page.locator(`tr[data-rollout="${id}"]`).waitFor();
    await shot(page, '08-rollouts');
  });

  it('offers a viewer token no control that would change anything, and the API refuses it anyway', async () => {
    const made = await fetch(`${base}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ actor: 'vera', role: 'viewer' }),
    });
    const viewerToken = ((await made.json()) as { token: string }).token;
    const ctx = await newContext(viewerToken);
    const viewer = await ctx.newPage();
    await viewer.goto(`${base}/#/models`);
    await viewer.getByTestId('role').filter({ hasText: 'viewer' }).waitFor();
    await viewer.locator('tr[data-version="1.0.0"]').waitFor();
    // The admin's page offers Approve on the candidate row; the viewer's offers no button at all.
    expect(await viewer.locator('main button, main select').count()).toBe(0);
    await shot(viewer, '09-models-viewer');
    await viewer.click('nav a[href="#/rollouts"]');
    await viewer.locator('tr[data-rollout]').first().waitFor();
    expect(await viewer.getByText('New rollout').count()).toBe(0);
    expect(await viewer.locator('main button, main form').count()).toBe(0);
    await ctx.close();
    const refused = await fetch(`${base}/v1/rollouts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${viewerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, version: '1.0.0', devices: deviceIds.slice(0, 1) }),
    });
    expect(refused.status).toBe(403);
  });

  it('reports each page’s first-load weight and time to interactive', async () => {
    const pages: [string, string, string, string | undefined][] = [
      ['sign-in', '/', '#token', undefined],
      ['fleet', '/#/fleet', 'tr[data-device]', adminToken],
      ['device', `/#/devices/${deviceIds[0]}`, '[data-testid=chart-fps] canvas', adminToken],
      ['models', '/#/models', 'tr[data-version]', adminToken],
      ['rollouts', '/#/rollouts', 'tr[data-rollout]', adminToken],
    ];
    const rollout = (await api.listRollouts())[0];
    if (rollout) pages.push(['rollout', `/#/rollouts/${rollout.id}`, 'li[data-wave]', adminToken]);
    const report: Record<string, { kB: number; requests: number; interactiveMs: number }> = {};
    for (const [name, path, ready, token] of pages) {
      const m = await firstLoad(path, ready, token);
      report[name] = {
        kB: Math.round(m.bytes / 102.4) / 10,
        requests: m.requests,
        interactiveMs: m.interactiveMs,
      };
      expect(m.bytes).toBeGreaterThan(0);
    }
    expect(pageErrors).toEqual([]);
    console.error(
      `dashboard first loads (1280x800, empty cache):\n${JSON.stringify(report, null, 1)}`,
    );
  });

  it('stays usable with 1,000 devices: only the rows in view are in the page', async () => {
    const extra = Array.from(
      { length: 1000 - deviceIds.length },
      (_, i) => `bulk-${String(i).padStart(4, '0')}`,
    );
    for (let i = 0; i < extra.length; i += 25)
      await Promise.all(
        extra.slice(i, i + 25).map((id) => api.provisionDevice(id, { line: String(3 + (i % 4)) })),
      );
    const m = await firstLoad('/#/fleet', 'tr[data-device]', adminToken);
    const ctx = await newContext(adminToken);
    try {
      const p = await ctx.newPage();
      await p.goto(`${base}/#/fleet`);
      await p.getByTestId('fleet-totals').filter({ hasText: '1000 devices' }).waitFor();
      const rendered = await p.locator('tr[data-device]').count();
      expect(rendered).toBeGreaterThan(5);
      expect(rendered).toBeLessThan(100);
      // Scrolling to the end brings the last device into the page.
      await p.locator('.table-box').evaluate((el) => el.scrollTo(0, el.scrollHeight));
      await p.locator('tr[data-device="weld-003"]').waitFor();
      await shot(p, '09-fleet-1000-devices');
      // bulk-0980 to bulk-0989.
      await p.getByLabel('Search').fill('bulk-098');
      await p.locator('tr[data-device]').nth(9).waitFor();
      expect(await p.locator('tr[data-device]').count()).toBe(10);
      console.error(
        `fleet page with 1,000 devices: ${Math.round(m.bytes / 102.4) / 10} kB, ${m.interactiveMs} ms to the first row, ${rendered} rows in the page`,
      );
    } finally {
      await ctx.close();
    }
  });
});
