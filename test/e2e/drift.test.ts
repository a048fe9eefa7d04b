// End-to-end drift: `linesight agent` processes run the e2e model on synthetic
// lines that firmware-sim shifts (lighting, a new surface texture, blur, a frozen camera, a moved
// camera) or leaves unchanged; their telemetry windows reach the cloud over
// MQTT, and the cloud's drift job, driven by its run method at the end of a
// chosen window, opens the right kind of alert within three windows (of at least 150 frames) and none
// on the unchanged lines. Nothing here depends on wall-clock timing: the job
// judges exactly the windows that ended by the time it is told.
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { writeDeviceCredentials } from '@linesight/agent';
import type { TelemetryWindow } from '@linesight/protocol';
import { startTestCloud, type TestCloud } from '@linesight/testkit/cloud';
import { eventually } from '@linesight/testkit/eventually';
import { LinesightProcess } from '../helpers/linesight-process.ts';

const models = inject('models');

// The e2e models are trained on 192 px synthetic images with 40 % defects: the lines match.
const LINE = 'defects=0.4,size=192';
/** The lines of one round: two unchanged, one per drift or camera fault; seeds from `base`. */
function casesOf(base: number) {
  const line = (k: number, extra = '') => `synthetic:${base + k}:${LINE}${extra}`;
  return [
    { id: `unchanged-a-${base}`, camera: line(1), expect: [] as string[] },
    { id: `unchanged-b-${base}`, camera: line(2), expect: [] as string[] },
    { id: `lighting-${base}`, camera: line(3, ',brightness=45'), expect: ['product/brightness'] },
    { id: `texture-${base}`, camera: line(7, ',contrast=1.8'), expect: ['product/contrast'] },
    { id: `blurred-${base}`, camera: line(4, ',blur=3'), expect: ['camera/blur'] },
    { id: `frozen-${base}`, camera: line(5, ',freeze'), expect: ['camera/frozen'] },
    { id: `moved-${base}`, camera: line(6, ',move=0.35'), expect: ['camera/moved'] },
  ];
}
// A line is judged at the end of its third window scored by the model, or later if those
// hold fewer than JUDGE_FRAMES frames, and one more window is awaited for "over the same
// period". At 10 frames/s three 6 s windows hold about 180 frames; on a loaded machine fewer,
// and over 71 frames an unchanged line once reached a brightness PSI of 0.40 (alert: 0.25).
const JUDGED_WINDOWS = 3;
const JUDGE_FRAMES = 150;

/** The index of the window at whose end a line is judged, if it has delivered it. */
function judgedWindow(windows: readonly TelemetryWindow[]): number | undefined {
  let frames = 0;
  for (const [i, w] of windows.entries()) {
    frames += w.counts.good + w.counts.defect;
    if (i >= JUDGED_WINDOWS - 1 && frames >= JUDGE_FRAMES) return i;
  }
  return undefined;
}

interface Alert {
  id: number;
  deviceId: string;
  kind: string;
  feature: string;
  statistic: string;
  state: string;
  level: string;
  value: number;
}

let testCloud: TestCloud;
let hook: Server;
const hooked: { event: string; alert: Alert }[] = [];
const agents: LinesightProcess[] = [];

async function get<T>(path: string): Promise<T> {
  const response = await fetch(`${testCloud.httpUrl}${path}`, {
    headers: { authorization: `Bearer ${testCloud.adminToken}` },
  });
  if (!response.ok)
    throw new Error(`GET ${path}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** The device's windows that ran the model and scored frames, oldest first. */
async function modelWindows(id: string): Promise<TelemetryWindow[]> {
  const { windows } = await get<{ windows: TelemetryWindow[] }>(
    `/v1/edge/windows?deviceId=${id}&limit=10000`,
  );
  return windows
    .filter((w) => w.modelVersion === '1.0.0' && w.counts.good + w.counts.defect > 0)
    .sort((a, b) => Date.parse(a.end) - Date.parse(b.end));
}

beforeAll(async () => {
  hook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hooked.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as (typeof hooked)[number]);
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  testCloud = await startTestCloud({
    config: {
      drift: {
        // The test drives the job itself.
        enabled: false,
        lookbackSec: 3600,
        // Windows here are seconds, not minutes: judge from one window's worth of frames.
        minFrames: 60,
        camera: { minFrames: 30 },
        webhookUrl: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/alerts`,
      },
    },
    logger: pino({ level: 'warn' }),
  });
  await testCloud.api.publishModel({
    name: 'drift',
    version: '1.0.0',
    onnx: await readFile(models.v1),
  });
});

/** Provisions the round's devices, starts an agent per line and rolls the model out to them. */
async function startLines(cases: ReturnType<typeof casesOf>): Promise<void> {
  const { api, dir, httpUrl, mqttUrl } = testCloud;
  for (const c of cases) {
    const creds = await api.provisionDevice(c.id);
    const dataDir = join(dir, `agent-${c.id}`);
    await writeDeviceCredentials(join(dataDir, 'device.json'), { ...creds, cloudUrl: httpUrl });
    agents.push(
      new LinesightProcess([
        'agent',
        '--device-id',
        c.id,
        '--cloud',
        httpUrl,
        '--mqtt',
        mqttUrl,
        '--camera',
        c.camera,
        '--fps',
        '10',
        '--data-dir',
        dataDir,
        '--window-sec',
        '6',
      ]),
    );
  }
  await api.createRollout({ model: 'drift', version: '1.0.0', devices: cases.map((c) => c.id) });
}

async function stopLines(): Promise<void> {
  for (const agent of agents.splice(0)) await agent.stop();
}

afterAll(async () => {
  await stopLines();
  await testCloud?.close();
  await new Promise<void>((resolve) => (hook ? hook.close(() => resolve()) : resolve()));
});

describe('drift and camera health', () => {
  // Each round runs every case with its own seeds.
  it.each([20, 40])(
    'opens the right kind of alert within three windows of 150 frames, and none on unchanged lines (seeds %i+)',
    async (base) => {
      const CASES = casesOf(base);
      await startLines(CASES);
      const windowsOf = new Map<string, TelemetryWindow[]>();
      for (const c of CASES) {
        windowsOf.set(
          c.id,
          await eventually(
            async () => {
              const w = await modelWindows(c.id);
              const judged = judgedWindow(w);
              return judged !== undefined && w.length > judged + 1 ? w : undefined;
            },
            {
              what: `${JUDGED_WINDOWS} windows and ${JUDGE_FRAMES} frames of ${c.id} scored by the model, and one more window`,
              timeoutMs: 240_000,
            },
          ),
        );
      }
      const job = testCloud.cloud.drift?.job;
      if (job === undefined) throw new Error('the cloud has no drift job');
      // Judge each line at the end of its judged window (earlier lines first), then all at the end.
      const judgedEnd = (id: string) => {
        const w = windowsOf.get(id) ?? [];
        return Date.parse(w[judgedWindow(w) ?? -1]?.end ?? '');
      };
      const judgedEnds = CASES.map((c) => judgedEnd(c.id)).sort((a, b) => a - b);
      const openedBy = new Map<string, string[]>();
      for (const endMs of judgedEnds) {
        const summary = await job.run(endMs + 1);
        const open = await get<{ alerts: Alert[] }>('/v1/alerts?state=open');
        for (const c of CASES) {
          if (judgedEnd(c.id) === endMs)
            openedBy.set(c.id, [
              ...new Set(
                open.alerts.filter((a) => a.deviceId === c.id).map((a) => `${a.kind}/${a.feature}`),
              ),
            ]);
        }
        expect(summary.devices).toBeGreaterThan(0);
      }
      const lastEnd = Math.max(
        ...CASES.map((c) => {
          const w = windowsOf.get(c.id) ?? [];
          return Date.parse(w[(judgedWindow(w) ?? -2) + 1]?.end ?? '');
        }),
      );
      await job.run(lastEnd + 1);
      const all = (await get<{ alerts: Alert[] }>('/v1/alerts')).alerts;
      const report = JSON.stringify({ openedBy: [...openedBy], all, last: job.stats.lastRun });

      for (const c of CASES) {
        const seen = openedBy.get(c.id) ?? [];
        for (const expected of c.expect) expect(seen, report).toContain(expected);
        const kinds = new Set(c.expect.map((e) => e.split('/')[0]));
        // The right kind: a camera fault is not reported as product drift, nor the reverse.
        expect(
          all.filter((a) => a.deviceId === c.id && !kinds.has(a.kind)),
          report,
        ).toEqual([]);
      }
      expect(
        all.filter((a) => a.deviceId.startsWith('unchanged')),
        report,
      ).toEqual([]);

      await stopLines();
      // Operators see the same alerts filtered, in /metrics and at the webhook.
      const camera = await get<{ alerts: Alert[] }>(
        `/v1/alerts?kind=camera&deviceId=frozen-${base}`,
      );
      expect(camera.alerts.map((a) => a.feature)).toContain('frozen');
      const metrics = await (await fetch(`${testCloud.httpUrl}/metrics`)).text();
      expect(metrics).toMatch(/linesight_drift_alerts_open\{kind="camera",level="alert"\} [1-9]/);
      await eventually(
        () =>
          hooked.some((n) => n.event === 'opened' && n.alert.deviceId === `lighting-${base}`)
            ? true
            : undefined,
        { what: 'the webhook told of the lighting alert', timeoutMs: 60_000 },
      );
    },
    420_000,
  );
});
