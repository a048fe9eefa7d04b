import { LinesightError } from '@linesight/protocol';

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

/** The /v1/retrain routes over fetch, with the caller's token. */
export class RetrainApi {
  readonly #base: string;
  readonly #token: string;

  constructor(cloudUrl: string, token: string) {
    this.#base = cloudUrl.replace(/\/+$/, '');
    this.#token = token;
  }

  /** Starts a job. */
  start(body: {
    model: string;
    parentVersion?: string;
    rollout?: string;
    epochs?: number;
    seed?: number;
    devices?: string[];
  }): Promise<RetrainJobView> {
    return this.#call('POST', '/v1/retrain/jobs', body);
  }

  /** Lists jobs, newest first. */
  async list(q: { model?: string; state?: string; limit?: number }): Promise<RetrainJobView[]> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined) params.set(k, String(v));
    const query = params.size === 0 ? '' : `?${params.toString()}`;
    return (await this.#call<{ jobs: RetrainJobView[] }>('GET', `/v1/retrain/jobs${query}`)).jobs;
  }

  /** One job. */
  get(id: string): Promise<RetrainJobView> {
    return this.#call('GET', `/v1/retrain/jobs/${encodeURIComponent(id)}`);
  }

  /** Cancels a job. */
  cancel(id: string): Promise<RetrainJobView> {
    return this.#call('POST', `/v1/retrain/jobs/${encodeURIComponent(id)}/cancel`);
  }

  /** Uploads one training image; false when the cloud already had it. */
  async putImage(sha256: string, bytes: Uint8Array): Promise<boolean> {
    const r = await this.#call<{ stored: boolean }>(
      'PUT',
      `/v1/retrain/datasets/images/${sha256}`,
      new Blob([bytes], { type: 'application/octet-stream' }),
    );
    return r.stored;
  }

  /** Registers a dataset of uploaded images. */
  registerDataset(body: {
    name: string;
    items: { sha256: string; label: 'good' | 'defect'; className: string }[];
  }): Promise<TrainingDatasetView> {
    return this.#call('POST', '/v1/retrain/datasets', body);
  }

  /** Registered datasets. */
  async datasets(): Promise<TrainingDatasetView[]> {
    return (await this.#call<{ datasets: TrainingDatasetView[] }>('GET', '/v1/retrain/datasets'))
      .datasets;
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}` };
    let payload: string | Blob | undefined;
    if (body instanceof Blob) {
      headers['content-type'] = body.type;
      payload = body;
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let response: Response;
    try {
      response = await fetch(`${this.#base}${path}`, {
        method,
        headers,
        body: payload,
        signal: AbortSignal.timeout(60_000),
      });
    } catch (cause) {
      throw new LinesightError(
        'ERR_CLOUD_BAD_REQUEST',
        `cannot reach the cloud at ${this.#base}: ${(cause as Error).message}`,
        { cause },
      );
    }
    const text = await response.text();
    if (!response.ok) {
      let message = text;
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? text;
      } catch {
        // Not JSON: the raw text is the message.
      }
      throw new LinesightError(
        response.status === 404
          ? 'ERR_CLOUD_NOT_FOUND'
          : response.status === 409
            ? 'ERR_CLOUD_CONFLICT'
            : 'ERR_CLOUD_BAD_REQUEST',
        `${method} ${path} failed (${response.status}): ${message}`,
        { details: { status: response.status } },
      );
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }
}
