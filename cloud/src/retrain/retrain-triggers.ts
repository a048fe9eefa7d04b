import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import { LinesightError } from '@linesight/protocol';
import type { DriftAlert } from '../drift/alert-store.ts';
import type { RetrainSettings } from './retrain-settings.ts';
import type { JobTrigger } from './retrain-store.ts';

/** What the triggers read and call. */
export interface RetrainTriggerOptions {
  settings: Pick<
    RetrainSettings,
    'models' | 'schedule' | 'onAlert' | 'newLabels' | 'triggerCheckSec'
  >;
  /** Model names that have registered versions. */
  models: () => Set<string>;
  start: (model: string, trigger: JobTrigger, detail: string) => void;
  /** True when the model has a queued or running job. */
  active: (model: string) => boolean;
  /** When the model's newest job was created; undefined when it never had one. */
  lastJobMs: (model: string) => number | undefined;
  openAlerts: () => DriftAlert[];
  /** When each current label of the model's samples was given. */
  labelTimes: (model: string) => number[];
  logger: Logger;
}

/**
 * Starts retraining jobs for the models listed in the settings: on a
 * node-cron schedule, when a product-drift alert opens at alert level after
 * the model's last job, or when that many labels were given since it. Each
 * trigger fires once per new evidence: the model's next job resets the count.
 */
export class RetrainTriggers {
  readonly #o: RetrainTriggerOptions;
  #task: ScheduledTask | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: RetrainTriggerOptions) {
    this.#o = options;
  }

  /** Schedules the cron trigger and the periodic alert and label check, as configured. */
  start(): void {
    const s = this.#o.settings;
    if (this.#closed || s.models.length === 0) return;
    if (s.schedule !== undefined && this.#task === undefined) {
      if (!cron.validate(s.schedule))
        throw new LinesightError(
          'ERR_CLOUD_CONFIG',
          `retrain.schedule ${JSON.stringify(s.schedule)} is not a node-cron expression`,
        );
      this.#task = cron.schedule(s.schedule, () => this.runSchedule());
    }
    if ((s.onAlert || s.newLabels > 0) && this.#timer === undefined) {
      this.#timer = setInterval(() => this.check(), s.triggerCheckSec * 1000);
      this.#timer.unref();
    }
  }

  /** The scheduled trigger: every configured model without a job under way. */
  runSchedule(): void {
    const known = this.#o.models();
    for (const model of this.#o.settings.models)
      if (known.has(model) && !this.#o.active(model)) this.#o.start(model, 'schedule', 'schedule');
  }

  /** One check of the alert and label triggers. */
  check(nowMs = Date.now()): void {
    const s = this.#o.settings;
    const known = this.#o.models();
    let alerts: DriftAlert[] | undefined;
    for (const model of s.models) {
      if (!known.has(model) || this.#o.active(model)) continue;
      const since = this.#o.lastJobMs(model) ?? Number.NEGATIVE_INFINITY;
      if (s.onAlert) {
        alerts ??= this.#o.openAlerts();
        // Camera faults (blur, a frozen or moved camera) are fixed at the camera, not by retraining.
        const alert = alerts.find(
          (a) =>
            a.modelName === model &&
            a.kind === 'product' &&
            a.level === 'alert' &&
            Date.parse(a.openedAt) > since,
        );
        if (alert !== undefined) {
          this.#o.start(
            model,
            'alert',
            `alert ${alert.id}: ${alert.deviceId} ${alert.feature} ${alert.statistic} ${alert.value.toFixed(3)}`,
          );
          continue;
        }
      }
      if (s.newLabels > 0) {
        const fresh = this.#o.labelTimes(model).filter((t) => t > since && t <= nowMs).length;
        if (fresh >= s.newLabels) this.#o.start(model, 'labels', `${fresh} new labels`);
      }
    }
  }

  /** Stops the schedule and the check; idempotent. */
  close(): void {
    this.#closed = true;
    void this.#task?.destroy();
    this.#task = undefined;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
