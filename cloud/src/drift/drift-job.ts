import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { TelemetryWindow, WindowReference } from '@linesight/protocol';
import type { AlertStore, AlertSubject, AlertTransition } from './alert-store.ts';
import { evaluateCamera, evaluateProduct, type DriftFinding } from './drift-evaluate.ts';
import type { DriftSettings } from './drift-settings.ts';
import type { WebhookNotifier } from './webhook-notifier.ts';

/** A stored window with the device it came from. */
export type DeviceWindow = TelemetryWindow & { deviceId: string };

/** A model version's reference for drift checks. */
export interface ModelReference {
  threshold: number;
  /** Undefined for models trained before window references (or with an invalid one). */
  window: WindowReference | undefined;
}

/** What the drift job uses. */
export interface DriftJobOptions {
  settings: DriftSettings;
  /** Windows that ended in [fromMs, toMs), any order. */
  windows: (fromMs: number, toMs: number) => DeviceWindow[];
  /** The reference of a model version; undefined when the registry does not know it. */
  reference: (name: string, version: string) => ModelReference | undefined;
  alerts: AlertStore;
  notifier?: WebhookNotifier;
  logger: Logger;
  now?: () => number;
}

/** What one run did. */
export interface DriftRunSummary {
  startedAt: string;
  durationMs: number;
  devices: number;
  windows: number;
  findings: number;
  transitions: Partial<Record<AlertTransition, number>>;
  /** Why features were not judged, with how many devices each reason held for. */
  skipped: Record<string, number>;
}

/** Counters of the job for metrics. */
export interface DriftJobStats {
  runs: number;
  failed: number;
  overlapped: number;
  transitions: Record<AlertTransition, number>;
  lastRun: DriftRunSummary | undefined;
}

// Yield to the event loop after this many devices, so a big fleet does not stall HTTP and MQTT.
const DEVICES_PER_SLICE = 50;
// Reasons kept per run summary; more are counted under one key.
const MAX_SKIP_REASONS = 50;

/**
 * The drift job: on a node-cron schedule (one run at a time; a tick that
 * comes while a run is under way is skipped and logged), each device's
 * windows of the lookback are compared with the reference of the model
 * version the device runs now, camera health is judged on its newest
 * windows, and alerts open, update and resolve in the alert store; opens and
 * resolves go to the webhook.
 */
export class DriftJob {
  readonly #o: DriftJobOptions;
  readonly #now: () => number;
  #task: ScheduledTask | undefined;
  #running: Promise<DriftRunSummary> | undefined;
  #closed = false;
  readonly #stats: DriftJobStats = {
    runs: 0,
    failed: 0,
    overlapped: 0,
    transitions: { opened: 0, escalated: 0, deescalated: 0, updated: 0, resolved: 0, none: 0 },
    lastRun: undefined,
  };

  constructor(options: DriftJobOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Counters and the last run's summary. */
  get stats(): DriftJobStats {
    return { ...this.#stats, transitions: { ...this.#stats.transitions } };
  }

  /** Whether a run is under way. */
  get running(): boolean {
    return this.#running !== undefined;
  }

  /** Schedules the job (when enabled). */
  start(): void {
    if (!this.#o.settings.enabled || this.#task !== undefined || this.#closed) return;
    this.#task = cron.schedule(this.#o.settings.schedule, async () => {
      await this.runIfIdle();
    });
  }

  /** Runs now unless a run is under way (then logs, counts and returns undefined). */
  async runIfIdle(): Promise<DriftRunSummary | undefined> {
    if (this.#closed) return undefined;
    if (this.#running !== undefined) {
      this.#stats.overlapped++;
      this.#o.logger.warn('drift run skipped: the previous run is still under way');
      return undefined;
    }
    try {
      return await this.run();
    } catch {
      return undefined; // run() logged and counted it
    }
  }

  /** Runs now; if a run is under way, waits for it and returns its summary. */
  run(nowMs = this.#now()): Promise<DriftRunSummary> {
    if (this.#running !== undefined) return this.#running;
    const run = this.#run(nowMs)
      .catch((err: unknown) => {
        this.#stats.failed++;
        this.#o.logger.error({ err }, 'drift run failed');
        throw err;
      })
      .finally(() => {
        this.#running = undefined;
      });
    this.#running = run;
    return run;
  }

  async #run(nowMs: number): Promise<DriftRunSummary> {
    const started = performance.now();
    const s = this.#o.settings;
    const windows = this.#o.windows(nowMs - s.lookbackSec * 1000, nowMs + 1);
    const byDevice = new Map<string, DeviceWindow[]>();
    for (const w of windows) {
      let list = byDevice.get(w.deviceId);
      if (list === undefined) byDevice.set(w.deviceId, (list = []));
      list.push(w);
    }
    const summary: DriftRunSummary = {
      startedAt: new Date(nowMs).toISOString(),
      durationMs: 0,
      devices: byDevice.size,
      windows: windows.length,
      findings: 0,
      transitions: {},
      skipped: {},
    };
    const references = new Map<string, ModelReference | undefined>();
    const referenceOf = (name: string | null, version: string | null) => {
      if (name === null || version === null) return undefined;
      const key = `${name}@${version}`;
      if (!references.has(key)) references.set(key, this.#o.reference(name, version));
      return references.get(key);
    };
    const skip = (reason: string): void => {
      const key =
        reason in summary.skipped || Object.keys(summary.skipped).length < MAX_SKIP_REASONS
          ? reason
          : 'other reasons';
      summary.skipped[key] = (summary.skipped[key] ?? 0) + 1;
    };

    let slice = 0;
    for (const [deviceId, list] of byDevice) {
      if (this.#closed) break;
      if (++slice % DEVICES_PER_SLICE === 0) await yieldToEventLoop();
      list.sort((a, b) => Date.parse(a.end) - Date.parse(b.end));
      const newest = list[list.length - 1] as DeviceWindow;
      // The model the device runs now; windows of other versions are not its evidence.
      const subject: AlertSubject = {
        deviceId,
        modelName: newest.modelName ?? '',
        modelVersion: newest.modelVersion ?? '',
      };
      const ref = referenceOf(newest.modelName, newest.modelVersion);
      if (newest.modelName !== null && ref === undefined)
        skip(`${subject.modelName}@${subject.modelVersion}: not in the registry`);
      const current = list.filter(
        (w) => w.modelName === newest.modelName && w.modelVersion === newest.modelVersion,
      );

      const camera = evaluateCamera(
        list,
        ref?.window,
        ref?.window?.meanImage === undefined ? this.#o.alerts.baseline(subject) : undefined,
        s,
      );
      camera.skipped.forEach(skip);
      const cameraTrouble = camera.findings.filter((f) => f.level !== 'ok');
      let findings: DriftFinding[] = camera.findings;
      if (newest.modelName !== null && ref !== undefined) {
        if (cameraTrouble.length > 0) {
          // Product drift seen through a broken camera is the camera's: held until it is fixed.
          skip('product: held while the camera is unhealthy');
        } else {
          const product = evaluateProduct(current, ref.window, ref.threshold, s);
          product.skipped.forEach(skip);
          findings = [...findings, ...product.findings];
        }
      }
      if (
        camera.meanImage !== undefined &&
        ref?.window?.meanImage === undefined &&
        cameraTrouble.length === 0
      )
        this.#o.alerts.setBaselineOnce(subject, camera.meanImage, nowMs);

      summary.findings += findings.length;
      for (const { transition, alert } of this.#o.alerts.apply(subject, findings, nowMs)) {
        summary.transitions[transition] = (summary.transitions[transition] ?? 0) + 1;
        this.#stats.transitions[transition]++;
        if (transition === 'opened' || transition === 'resolved') {
          this.#o.logger.info(
            {
              alertId: alert.id,
              deviceId,
              model: `${alert.modelName}@${alert.modelVersion}`,
              kind: alert.kind,
              feature: alert.feature,
              statistic: alert.statistic,
              value: alert.value,
              level: alert.level,
            },
            `drift alert ${transition}`,
          );
          this.#o.notifier?.notify({ schema: 'linesight.alert/v1', event: transition, alert });
        }
      }
    }
    summary.durationMs = Math.round(performance.now() - started);
    this.#stats.runs++;
    this.#stats.lastRun = summary;
    this.#o.logger.info(
      {
        devices: summary.devices,
        windows: summary.windows,
        findings: summary.findings,
        transitions: summary.transitions,
        skipped: summary.skipped,
        durationMs: summary.durationMs,
      },
      'drift run finished',
    );
    return summary;
  }

  /** Stops the schedule and waits for a run under way (which stops between devices); idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#task?.destroy();
    this.#task = undefined;
    await this.#running?.catch(() => undefined);
  }
}
