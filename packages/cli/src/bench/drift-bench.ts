import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import pino from 'pino';
import { Value } from '@sinclair/typebox/value';
import {
  DriftService,
  DriftSettingsSchema,
  EdgeDataStore,
  type DriftSettings,
} from '@linesight/cloud';
import {
  FIXTURE_THRESHOLD,
  NORMAL_LOOK,
  referenceOf,
  seededRandom,
  windowOf,
  type LineLook,
} from '@linesight/cloud/testing';
import type { TelemetryWindow } from '@linesight/protocol';
import { parsePositive, parsePositiveInt } from '../options.ts';
import { progressLine } from '../progress.ts';

const MINUTE_MS = 60_000;
// Distinct windows per look; rows reuse them with their own seq and times (generating
// 600-frame histograms for 1.4 million rows would time the generator, not the job).
const POOL = 32;
const INSERT_BATCH = 5000;

/** `linesight bench drift`: the cloud's drift job over a fleet with a day of windows each. */
export function benchDriftCommand(): Command {
  return new Command('drift')
    .description(
      'the drift job over N devices with a day of 1-minute windows each in a real edge-data.sqlite; some lines drift, some cameras freeze',
    )
    .option('--devices <n>', 'devices', parsePositiveInt, 1000)
    .option('--hours <h>', 'hours of 1-minute windows per device', parsePositive, 24)
    .option('--runs <n>', 'drift runs timed', parsePositiveInt, 3)
    .option('--json', 'print one line of JSON')
    .action(async (opts: { devices: number; hours: number; runs: number; json?: boolean }) => {
      const result = await benchDrift(opts);
      process.stdout.write(`${JSON.stringify(result, null, opts.json ? undefined : 2)}\n`);
    });
}

/** What `bench drift` measured. */
export interface DriftBenchResult {
  devices: number;
  windowsPerDevice: number;
  windowsStored: number;
  dbMb: number;
  generateSeconds: number;
  runs: number;
  secondsPerRun: number;
  maxSecondsPerRun: number;
  windowsPerRun: number;
  findingsPerRun: number;
  openAlerts: { product: number; camera: number };
  peakRssMb: number;
  lookbackSec: number;
}

async function benchDrift(opts: {
  devices: number;
  hours: number;
  runs: number;
}): Promise<DriftBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'linesight-bench-drift-'));
  const edge = new EdgeDataStore(join(dir, 'edge-data.sqlite'));
  const settings = Value.Default(DriftSettingsSchema, {}) as DriftSettings;
  const reference = referenceOf(NORMAL_LOOK, 400, 1);
  const drift = new DriftService({
    settings: { ...settings, enabled: false },
    path: join(dir, 'drift.sqlite'),
    windows: (fromMs, toMs) => edge.windows({ fromMs, toMs, limit: Number.MAX_SAFE_INTEGER }),
    model: () => ({ threshold: FIXTURE_THRESHOLD, referenceProfile: { window: reference } }),
    logger: pino({ level: 'silent' }),
  });
  try {
    const perDevice = Math.max(1, Math.round(opts.hours * 60));
    const endMs = Date.UTC(2026, 0, 2);
    const startMs = endMs - perDevice * MINUTE_MS;
    // 5 % of the lines drift in their last hour, 2 % of the cameras freeze: the job opens alerts too.
    const looks: Record<string, LineLook> = {
      normal: NORMAL_LOOK,
      brighter: { ...NORMAL_LOOK, brightness: NORMAL_LOOK.brightness + 40 },
      frozen: { ...NORMAL_LOOK, frozen: true },
    };
    const next = seededRandom(7);
    const pools = Object.fromEntries(
      Object.entries(looks).map(([name, look]) => [
        name,
        Array.from({ length: POOL }, (_, i) =>
          windowOf({ seq: i, startMs, durationMs: MINUTE_MS, frameCount: 600, look, next }),
        ),
      ]),
    ) as Record<keyof typeof looks, TelemetryWindow[]>;

    const generated = performance.now();
    let stored = 0;
    let batch: { kind: 'windows'; deviceId: string; records: TelemetryWindow[] }[] = [];
    let pending = 0;
    const flush = (): void => {
      if (pending === 0) return;
      stored += edge.write(batch).stored;
      batch = [];
      pending = 0;
    };
    for (let d = 0; d < opts.devices; d++) {
      const deviceId = `line-${String(d).padStart(5, '0')}`;
      const kind = d % 50 === 1 ? 'frozen' : d % 20 === 0 ? 'brighter' : 'normal';
      const records: TelemetryWindow[] = [];
      for (let m = 0; m < perDevice; m++) {
        const shifted = kind !== 'normal' && m >= perDevice - 60;
        const pool = pools[shifted ? kind : 'normal'] as TelemetryWindow[];
        const template = pool[(d * 7 + m) % POOL] as TelemetryWindow;
        const start = startMs + m * MINUTE_MS;
        records.push({
          ...template,
          seq: m,
          start: new Date(start).toISOString(),
          end: new Date(start + MINUTE_MS).toISOString(),
        });
        if (++pending >= INSERT_BATCH) {
          batch.push({ kind: 'windows', deviceId, records: records.splice(0) });
          flush();
        }
      }
      if (records.length > 0) batch.push({ kind: 'windows', deviceId, records });
      progressLine(`drift bench: windows of ${d + 1}/${opts.devices} devices`);
    }
    flush();
    progressLine('');
    const generateSeconds = (performance.now() - generated) / 1000;

    const durations: number[] = [];
    let windowsPerRun = 0;
    let findingsPerRun = 0;
    for (let r = 0; r < opts.runs; r++) {
      const t = performance.now();
      const summary = await drift.job.run(endMs + 1);
      durations.push((performance.now() - t) / 1000);
      windowsPerRun = summary.windows;
      findingsPerRun = summary.findings;
    }
    const open = drift.alerts.list({ state: 'open', limit: 1_000_000 });
    const dbBytes = (await stat(join(dir, 'edge-data.sqlite'))).size;
    return {
      devices: opts.devices,
      windowsPerDevice: perDevice,
      windowsStored: stored,
      dbMb: Math.round(dbBytes / 1024 / 1024),
      generateSeconds: round3(generateSeconds),
      runs: opts.runs,
      secondsPerRun: round3(durations.reduce((a, b) => a + b, 0) / durations.length),
      maxSecondsPerRun: round3(Math.max(...durations)),
      windowsPerRun,
      findingsPerRun,
      openAlerts: {
        product: new Set(open.filter((a) => a.kind === 'product').map((a) => a.deviceId)).size,
        camera: new Set(open.filter((a) => a.kind === 'camera').map((a) => a.deviceId)).size,
      },
      // maxRSS is in kilobytes on Linux: the whole process, generation included.
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      lookbackSec: settings.lookbackSec,
    };
  } finally {
    await drift.close();
    edge.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
