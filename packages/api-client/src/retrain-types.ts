// What the /v1/retrain routes answer: the protocol's REST contract (packages/protocol/src/api/retrain.ts).
import type { RetrainJobView } from '@linesight/protocol';

export type { RetrainJobView, RetrainMetrics, TrainingDatasetView } from '@linesight/protocol';

/** True for a state a job never leaves. */
export function jobEnded(job: Pick<RetrainJobView, 'state'>): boolean {
  return job.state !== 'queued' && job.state !== 'running';
}
