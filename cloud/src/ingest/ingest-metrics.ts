import type { MetricSample } from '../metrics.ts';
import type { EdgeIngestStats } from './edge-ingest.ts';

/** The edge-data ingest's counters as Prometheus samples. */
export function ingestMetrics(stats: EdgeIngestStats, pendingRecords: number): MetricSample[] {
  return [
    labelledCounter(
      'linesight_ingest_batches_total',
      'Edge-data batches received from devices, by channel',
      'channel',
      stats.batches,
    ),
    labelledCounter(
      'linesight_ingest_records_total',
      'Edge-data records by outcome: stored, duplicate (a resend, dropped) or failed (write error)',
      'outcome',
      { stored: stats.stored, duplicate: stats.duplicates, failed: stats.failedRecords },
    ),
    labelledCounter(
      'linesight_ingest_batches_dropped_total',
      'Edge-data batches dropped before storing, by reason',
      'reason',
      {
        invalid: stats.invalid,
        foreign_device: stats.foreignDevice,
        unknown_device: stats.unknownDevice,
      },
    ),
    labelledCounter(
      'linesight_ingest_samples_not_indexed_total',
      'Sample records not indexed because their object in storage is not as announced, by reason',
      'reason',
      {
        missing: stats.samplesMissing,
        mismatch: stats.samplesMismatch,
        unverified: stats.samplesUnverified,
      },
    ),
    {
      name: 'linesight_ingest_failed_writes_total',
      help: 'Edge-data commits that failed',
      type: 'counter',
      values: [{ value: stats.failedWrites }],
    },
    {
      name: 'linesight_ingest_pending_records',
      help: 'Edge-data records received and waiting for their commit',
      type: 'gauge',
      values: [{ value: pendingRecords }],
    },
  ];
}

/** A counter with one value per value of one label, in the order given. */
function labelledCounter(
  name: string,
  help: string,
  label: string,
  values: Readonly<Record<string, number>>,
): MetricSample {
  return {
    name,
    help,
    type: 'counter',
    values: Object.entries(values).map(([key, value]) => ({ labels: { [label]: key }, value })),
  };
}
