import type { MetricSample } from '../metrics.ts';
import { summarizeQuality } from './review-quality.ts';
import type { ReviewStore } from './review-store.ts';

/**
 * Review gauges for /metrics: samples waiting for a label, and each model
 * version's labelled samples, precision and recall over the last
 * `windowDays` of captures, overall and per device. A rate with no
 * denominator yet is left out rather than shown as 0.
 */
export function reviewMetrics(
  store: ReviewStore,
  windowDays: number,
  nowMs = Date.now(),
): MetricSample[] {
  const versions = summarizeQuality(store.labelCounts({ fromMs: nowMs - windowDays * 86_400_000 }));
  const labelled: MetricSample['values'] = [];
  const precision: MetricSample['values'] = [];
  const recall: MetricSample['values'] = [];
  const devicePrecision: MetricSample['values'] = [];
  const deviceRecall: MetricSample['values'] = [];
  for (const v of versions) {
    const model = { model: v.modelName ?? '', version: v.modelVersion ?? '' };
    labelled.push({ labels: model, value: v.total.labelled });
    if (v.total.precision !== null) precision.push({ labels: model, value: v.total.precision });
    if (v.total.recall !== null) recall.push({ labels: model, value: v.total.recall });
    for (const d of v.devices) {
      const labels = { ...model, device: d.deviceId };
      if (d.total.precision !== null) devicePrecision.push({ labels, value: d.total.precision });
      if (d.total.recall !== null) deviceRecall.push({ labels, value: d.total.recall });
    }
  }
  const window = `over captures of the last ${windowDays} days`;
  return [
    {
      name: 'linesight_review_queue_samples',
      help: 'Sampled images waiting for a review label',
      type: 'gauge',
      values: [{ value: store.unlabelledCount() }],
    },
    {
      name: 'linesight_review_labelled_samples',
      help: `Labelled samples per model version, ${window}`,
      type: 'gauge',
      values: labelled,
    },
    {
      name: 'linesight_review_precision',
      help: `Precision of each model version on labelled samples (defect is positive), ${window}`,
      type: 'gauge',
      values: precision,
    },
    {
      name: 'linesight_review_recall',
      help: `Recall of each model version on labelled samples (defect is positive), ${window}`,
      type: 'gauge',
      values: recall,
    },
    {
      name: 'linesight_review_device_precision',
      help: `Precision of each model version on each device's labelled samples, ${window}`,
      type: 'gauge',
      values: devicePrecision,
    },
    {
      name: 'linesight_review_device_recall',
      help: `Recall of each model version on each device's labelled samples, ${window}`,
      type: 'gauge',
      values: deviceRecall,
    },
  ];
}
