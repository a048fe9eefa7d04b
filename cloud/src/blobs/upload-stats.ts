import type { MetricSample } from '../metrics.ts';
import type { UploadSlots } from '../http/upload-slots.ts';

/** Why the storage refused a signed upload. */
export type UploadRefusal = 'expired' | 'forbidden' | 'mismatch' | 'bad_request' | 'other';

/** Counters of device uploads and model uploads, for /metrics. */
export class UploadStats {
  urlsIssued = 0;
  alreadyStored = 0;
  /** Uploads the local store accepted (S3 uploads do not pass through the cloud). */
  stored = 0;
  readonly refused: Record<UploadRefusal, number> = {
    expired: 0,
    forbidden: 0,
    mismatch: 0,
    bad_request: 0,
    other: 0,
  };

  /** Counts a refused local upload by its error code. */
  refuse(code: unknown): void {
    const reason: UploadRefusal =
      code === 'ERR_CLOUD_UPLOAD_EXPIRED'
        ? 'expired'
        : code === 'ERR_CLOUD_FORBIDDEN'
          ? 'forbidden'
          : code === 'ERR_CLOUD_UPLOAD_MISMATCH'
            ? 'mismatch'
            : code === 'ERR_CLOUD_BAD_REQUEST'
              ? 'bad_request'
              : 'other';
    this.refused[reason]++;
  }

  /** The counters as Prometheus samples, with the model-upload slots. */
  metrics(modelSlots: UploadSlots): MetricSample[] {
    return [
      {
        name: 'linesight_upload_urls_total',
        help: 'Device upload requests by outcome: a signed URL issued, or the object already stored',
        type: 'counter',
        values: [
          { labels: { outcome: 'issued' }, value: this.urlsIssued },
          { labels: { outcome: 'already_stored' }, value: this.alreadyStored },
        ],
      },
      {
        name: 'linesight_local_uploads_total',
        help: 'PUTs to the local blob store by result (stored, or the reason it was refused)',
        type: 'counter',
        values: [
          { labels: { result: 'stored' }, value: this.stored },
          ...Object.entries(this.refused).map(([reason, value]) => ({
            labels: { result: reason },
            value,
          })),
        ],
      },
      {
        name: 'linesight_model_uploads_in_progress',
        help: 'Model uploads being streamed and validated now',
        type: 'gauge',
        values: [{ value: modelSlots.stats.inUse }],
      },
      {
        name: 'linesight_model_uploads_refused_busy_total',
        help: 'Model uploads refused with 503 because the concurrency limit was reached',
        type: 'counter',
        values: [{ value: modelSlots.stats.refused }],
      },
    ];
  }
}
