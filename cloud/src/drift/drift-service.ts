import { Value } from '@sinclair/typebox/value';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { WindowReferenceSchema } from '@linesight/protocol';
import type { MetricSample } from '../metrics.ts';
import { AlertStore } from './alert-store.ts';
import { DriftJob, type DeviceWindow, type ModelReference } from './drift-job.ts';
import { driftRoutes } from './drift-routes.ts';
import { warningLevelOf, type DriftSettings } from './drift-settings.ts';
import { WebhookNotifier } from './webhook-notifier.ts';

/** What the drift service needs from the rest of the cloud. */
export interface DriftServiceOptions {
  settings: DriftSettings;
  /** The alert database file (`<dataDir>/drift.sqlite`). */
  path: string;
  windows: (fromMs: number, toMs: number) => DeviceWindow[];
  /** A model version's threshold and contract reference profile; undefined when unknown. */
  model: (
    name: string,
    version: string,
  ) => { threshold: number; referenceProfile?: Record<string, unknown> } | undefined;
  logger: Logger;
  now?: () => number;
}

/**
 * Drift monitoring in the cloud: the alert store, the scheduled job, the
 * webhook notifier, their routes and metrics. start() then close().
 */
export class DriftService {
  readonly alerts: AlertStore;
  readonly job: DriftJob;
  readonly notifier: WebhookNotifier | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: DriftServiceOptions) {
    const s = options.settings;
    this.alerts = new AlertStore(options.path, {
      clearRatio: s.clearRatio,
      clearRuns: s.clearRuns,
      warningOf: (f) => warningLevelOf(s, f),
    });
    this.notifier =
      s.webhookUrl === undefined
        ? undefined
        : new WebhookNotifier({
            url: s.webhookUrl,
            retries: s.webhookRetries,
            timeoutMs: s.webhookTimeoutMs,
            logger: options.logger.child({ component: 'alert-webhook' }),
          });
    const invalid = new Set<string>();
    this.job = new DriftJob({
      settings: s,
      windows: options.windows,
      reference: (name, version): ModelReference | undefined => {
        const model = options.model(name, version);
        if (model === undefined) return undefined;
        const window = model.referenceProfile?.['window'];
        if (window !== undefined && !Value.Check(WindowReferenceSchema, window)) {
          const key = `${name}@${version}`;
          if (!invalid.has(key)) {
            invalid.add(key);
            options.logger.warn(
              { model: key },
              'model has an invalid window reference; not judged',
            );
          }
          return { threshold: model.threshold, window: undefined };
        }
        return { threshold: model.threshold, window };
      },
      alerts: this.alerts,
      ...(this.notifier !== undefined ? { notifier: this.notifier } : {}),
      logger: options.logger,
      ...(options.now !== undefined ? { now: options.now } : {}),
    });
  }

  /** Schedules the job. */
  start(): void {
    this.job.start();
  }

  /** Registers `GET /v1/alerts`, `GET /v1/drift/status` and `POST /v1/drift/runs`. */
  async routes(app: FastifyInstance): Promise<void> {
    await driftRoutes(app, { alerts: this.alerts, job: this.job });
  }

  /** Prometheus samples: open alerts, runs, transitions, webhook deliveries. */
  metrics(): MetricSample[] {
    const stats = this.job.stats;
    const open = this.alerts.openCounts();
    const openValues = (['product', 'camera'] as const).flatMap((kind) =>
      (['warning', 'alert'] as const).map((level) => ({
        labels: { kind, level },
        value: open.find((o) => o.kind === kind && o.level === level)?.count ?? 0,
      })),
    );
    const webhook = this.notifier?.stats ?? { sent: 0, failed: 0, dropped: 0, queued: 0 };
    return [
      {
        name: 'linesight_drift_alerts_open',
        help: 'Open drift alerts by kind (product, camera) and level',
        type: 'gauge',
        values: openValues,
      },
      {
        name: 'linesight_drift_alert_value',
        help: 'Current value of the statistic of each open alert',
        type: 'gauge',
        values: this.alerts.list({ state: 'open', limit: 1000 }).map((a) => ({
          labels: {
            device: a.deviceId,
            model: a.modelName,
            version: a.modelVersion,
            kind: a.kind,
            feature: a.feature,
            statistic: a.statistic,
            level: a.level,
          },
          value: a.value,
        })),
      },
      {
        name: 'linesight_drift_runs_total',
        help: 'Drift job runs by result (overlapped: a tick skipped while a run was under way)',
        type: 'counter',
        values: [
          { labels: { result: 'ok' }, value: stats.runs },
          { labels: { result: 'failed' }, value: stats.failed },
          { labels: { result: 'overlapped' }, value: stats.overlapped },
        ],
      },
      {
        name: 'linesight_drift_last_run_seconds',
        help: 'Duration of the last drift run',
        type: 'gauge',
        values: [{ value: (stats.lastRun?.durationMs ?? 0) / 1000 }],
      },
      {
        name: 'linesight_drift_last_run_devices',
        help: 'Devices judged by the last drift run',
        type: 'gauge',
        values: [{ value: stats.lastRun?.devices ?? 0 }],
      },
      {
        name: 'linesight_drift_alert_transitions_total',
        help: 'Alert changes by transition',
        type: 'counter',
        values: (['opened', 'escalated', 'deescalated', 'resolved'] as const).map((t) => ({
          labels: { transition: t },
          value: stats.transitions[t],
        })),
      },
      {
        name: 'linesight_drift_webhook_notifications_total',
        help: 'Alert webhook notifications by result',
        type: 'counter',
        values: (['sent', 'failed', 'dropped'] as const).map((result) => ({
          labels: { result },
          value: webhook[result],
        })),
      },
    ];
  }

  /** Stops the schedule, waits for a run, stops the webhook, closes the store; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const errors: unknown[] = [];
      for (const step of [
        () => this.job.close(),
        () => this.notifier?.close(),
        () => this.alerts.close(),
      ]) {
        try {
          await step();
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length > 0) throw new AggregateError(errors, 'drift service close failed');
    })();
    return this.#closing;
  }
}
