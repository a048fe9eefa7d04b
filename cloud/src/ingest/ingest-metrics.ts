import type { MetricSample } from '../metrics.ts';
import type { EdgeIngestStats } from './edge-ingest.ts';

/** The edge-data ingest's counters as Prometheus samples. */
export function ingestMetrics(stats: EdgeIngestStats, pendingRecords: number): MetricSample[] {
  return [
    {
      name: 'linesight_ingest_batches_total',
      help: 'Edge-data batches received from devices, by channel',
      type: 'counter',
      values: Object.entries(stats.batches).map(([channel, value]) => ({
        labels: { channel },
        value,
      })),
    },
    {
      name: 'linesight_ingest_records_total',
      help: 'Edge-data records by outcome: stored, duplicate (a resend, dropped) or failed (write error)',
      type: 'counter',
      values: [
        { labels: { outcome: 'stored' }, value: stats.stored },
        { labels: { outcome: 'duplicate' }, value: stats.duplicates },
        { labels: { outcome: 'failed' }, value: stats.failedRecords },
      ],
    },
    {
      name: 'linesight_ingest_batches_dropped_total',
      help: 'Edge-data batches dropped before storing, by reason',
      type: 'counter',
      values: [
        { labels: { reason: 'invalid' }, value: stats.invalid },
        { labels: { reason: 'foreign_device' }, value: stats.foreignDevice },
        { labels: { reason: 'unknown_device' }, value: stats.unknownDevice },
      ],
    },
    {
      name: 'linesight_ingest_samples_not_indexed_total',
      help: 'Sample records not indexed because their object in storage is not as announced, by reason',
      type: 'counter',
      values: [
        { labels: { reason: 'missing' }, value: stats.samplesMissing },
        { labels: { reason: 'mismatch' }, value: stats.samplesMismatch },
        { labels: { reason: 'unverified' }, value: stats.samplesUnverified },
      ],
    },
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
