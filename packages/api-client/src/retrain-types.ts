// What the /v1/retrain routes answer (cloud/src/retrain/retrain-routes.ts).

/** Metrics of one model on a job's held-out set. */
export interface RetrainMetrics {
  auroc: number | null;
  ap: number | null;
  f1: number | null;
  precision: number | null;
  recall: number | null;
  threshold: number;
  images: number;
}

/** A retraining job as GET /v1/retrain/jobs/:id answers it. */
export interface RetrainJobView {
  id: string;
  model: string;
  parentVersion: string | null;
  state: 'queued' | 'running' | 'registered' | 'rejected' | 'failed' | 'cancelled';
  trigger: string;
  triggerDetail: string | null;
  actor: string;
  options: { rollout: string; epochs: number; seed: number; members: number; size?: number };
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  progress: {
    step: string;
    done: number;
    total: number;
    epoch?: number;
    epochs?: number;
    loss?: number;
  } | null;
  result: {
    championVersion: string;
    candidateVersion: string | null;
    metric: string;
    minImprovement: number;
    champion: RetrainMetrics;
    challenger: RetrainMetrics;
    improvement: number | null;
    parentDatasetFingerprint: string;
    datasetFingerprint: string;
    labels: { train: number[]; holdout: number[] };
    counts: Record<string, number>;
    trainingMs: number;
    rolloutId: string | null;
    rolloutError: string | null;
  } | null;
  error: string | null;
}

/** A registered training dataset. */
export interface TrainingDatasetView {
  fingerprint: string;
  name: string;
  createdAt: string;
  createdBy: string;
  source: string;
  jobId: string | null;
  count: number;
  good: number;
  defect: number;
}

/** True for a state a job never leaves. */
export function jobEnded(job: Pick<RetrainJobView, 'state'>): boolean {
  return job.state !== 'queued' && job.state !== 'running';
}
