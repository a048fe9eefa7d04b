import {
  LinesightError,
  type AlertFilterQuery,
  type AlertList,
  type ApiRole,
  type AuditEntryView,
  type AuditQuery,
  type ConnectionView,
  type CreateRolloutBody,
  type CreatedMqttReader,
  type CreatedToken,
  type DecommissionedDevice,
  type DeviceEdgeSettings as DeviceEdgeSettingsView,
  type DeviceEventList,
  type DeviceView,
  type DriftAlertView,
  type DriftRunSummaryView,
  type DriftStatus,
  type EdgeDataSettings,
  type EdgeEventList,
  type EdgeEventView,
  type EdgeFilterQuery,
  type EdgeIngestStats,
  type EdgeSampleDownload,
  type EdgeSampleList,
  type EdgeSamplesQuery,
  type EdgeVerdictCount,
  type EdgeVerdictCountList,
  type EdgeVerdictCountsQuery,
  type EdgeVerdictList,
  type EdgeVerdictView,
  type EdgeWindowList,
  type EdgeWindowView,
  type EnrolmentToken as EnrolmentTokenView,
  type KeyRotation,
  type GateResult,
  type ModelView,
  type PredictionView,
  type MqttReaderView,
  type ProvisionedDevice as ProvisionedDeviceView,
  type RegisterDatasetBody,
  type RetrainJobList,
  type RevokedMqttReader,
  type RevokeCertificateBody,
  type RevokedCertificateList,
  type RevokedCertificateResult,
  type ReviewDatasetManifest,
  type ReviewExportQuery,
  type ReviewFilter,
  type ReviewLabel,
  type ReviewLabelBody,
  type ReviewQuality,
  type ReviewQualityCounts,
  type ReviewQueueItem,
  type ReviewQueuePage,
  type ReviewQueueQuery,
  type ReviewVersionQuality,
  type SampleLabels,
  type SampleView,
  type RevokedToken,
  type RolloutDeviceState as RolloutDeviceStateView,
  type RolloutSpecView,
  type RolloutStatusView,
  type RolloutWave as RolloutWaveView,
  type StartRetrainBody,
  type TokenView,
  type TrainingDatasetDetail,
  type TrainingDatasetList,
  type TrainingImageStored,
} from '@linesight/protocol';
import type { RetrainJobView, TrainingDatasetView } from './retrain-types.ts';

/** A one-device enrolment token (the token is shown only once). */
export type EnrolmentToken = EnrolmentTokenView;

/** What provisioning a device returns (the password is shown only once). */
export type ProvisionedDevice = ProvisionedDeviceView;

/** Where the cloud is reachable now, as GET /v1/connection answers. */
export type CloudConnection = ConnectionView;

/** A device's edge-data settings: asked for in its desired state, and what it reports it runs. */
export type DeviceEdgeSettings = DeviceEdgeSettingsView;

/** A device as GET /v1/devices lists it. */
export type DeviceSummary = DeviceView;

/** A model version as the registry lists it. */
export type ModelSummary = ModelView;

/** Per-device rollout states. */
export type RolloutDeviceState = RolloutDeviceStateView;

/** One health gate's verdict. */
export type RolloutGateResult = GateResult;

/** One wave of a rollout with its progress. */
export type RolloutWave = RolloutWaveView;

/** A rollout's request with defaults applied (see docs/rollouts.md for the gates). */
export type RolloutSpecSummary = RolloutSpecView;

/** A rollout with per-wave progress, and per-device progress unless asked without. */
export type RolloutSummary = RolloutStatusView;

/** A rollout with per-wave and per-device progress (every answer but a `devices: false` read). */
export type RolloutWithDevices = RolloutSummary & {
  devices: NonNullable<RolloutSummary['devices']>;
};

/** What POST /v1/rollouts takes. */
export type CreateRolloutInput = CreateRolloutBody;

/** What POST /v1/predict answers. */
export type PredictResult = PredictionView;

/** A sampled image as the sample index lists it. */
export type SampleSummary = SampleView;

/** A label to give: `good` or `defect`, with an optional defect class, note and reviewer name. */
export type NewReviewLabel = ReviewLabelBody;

export type {
  ReviewDatasetManifest,
  ReviewFilter,
  ReviewLabel,
  ReviewQualityCounts,
  ReviewQueueItem,
  ReviewQueuePage,
  ReviewVersionQuality,
};

/** The error the client throws for a non-2xx answer; `status` and the API's `error` code. */
export class CloudApiError extends LinesightError {
  readonly status: number;
  readonly apiCode: string;

  constructor(status: number, apiCode: string, message: string) {
    super(
      status === 401
        ? 'ERR_CLOUD_UNAUTHORIZED'
        : status === 404
          ? 'ERR_CLOUD_NOT_FOUND'
          : status === 409
            ? 'ERR_CLOUD_CONFLICT'
            : 'ERR_CLOUD_BAD_REQUEST',
      message,
      {
        details: { status, apiCode },
      },
    );
    this.status = status;
    this.apiCode = apiCode;
  }
}

/** fetch as the client calls the cloud with it. */
export type ApiFetch = (url: string, init?: RequestInit) => Promise<Response>;

/** How to reach the cloud. */
export interface CloudApiClientOptions {
  baseUrl: string;
  adminToken: string;
  /** Per request (default 60 s). */
  timeoutMs?: number;
  /**
   * The fetch to use (default the global one): e.g. one that trusts only the
   * cloud's own CA (`cloudFetch` of @linesight/agent) for a cloud on HTTPS
   * with a private CA.
   */
  fetch?: ApiFetch;
}

/** A small typed client of the cloud REST API, authenticated with the admin token. */
export class CloudApiClient {
  readonly baseUrl: string;
  readonly #token: string;
  readonly #timeoutMs: number;
  readonly #fetch: ApiFetch;

  constructor(options: CloudApiClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#token = options.adminToken;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#fetch = options.fetch ?? ((url, init) => fetch(url, init));
  }

  /**
   * Provisions a device; the answer holds its only copy of the password. The
   * client's token may be an admin token or that device's enrolment token
   * (which fixes the labels: give none).
   */
  provisionDevice(id: string, labels: Record<string, string> = {}): Promise<ProvisionedDevice> {
    return this.#request('POST', '/v1/devices', {
      id,
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
    });
  }

  /**
   * Provisions many devices in one request (admin; all or none, at most
   * MAX_DEVICES_PER_BATCH); the answer holds each one's only copy of its password, in order.
   */
  async provisionDevices(
    devices: readonly { id: string; labels?: Record<string, string> }[],
  ): Promise<ProvisionedDevice[]> {
    const answer = await this.#request<{ devices: ProvisionedDevice[] }>(
      'POST',
      '/v1/devices/batch',
      {
        devices: devices.map(({ id, labels }) => ({
          id,
          ...(labels !== undefined && Object.keys(labels).length > 0 ? { labels } : {}),
        })),
      },
    );
    return answer.devices;
  }

  /** A token that may provision exactly this device, once, before it expires (admin). */
  createEnrolmentToken(
    id: string,
    options: { ttlSec?: number; labels?: Record<string, string> } = {},
  ): Promise<EnrolmentToken> {
    return this.#request('POST', `/v1/devices/${encodeURIComponent(id)}/enrolment-token`, options);
  }

  /** Where the cloud is reachable now (advertised, else bound, URLs). */
  connection(): Promise<CloudConnection> {
    return this.#request('GET', '/v1/connection');
  }

  /** Lists devices. */
  listDevices(): Promise<DeviceSummary[]> {
    return this.#request('GET', '/v1/devices');
  }

  /** One device. */
  getDevice(id: string): Promise<DeviceSummary> {
    return this.#request('GET', `/v1/devices/${encodeURIComponent(id)}`);
  }

  /** New credentials for a device (the old secret stops working; its session is ended). */
  rotateDeviceCredentials(id: string): Promise<ProvisionedDevice> {
    return this.#request('POST', `/v1/devices/${encodeURIComponent(id)}/credentials`);
  }

  /** A device's telemetry window and sampling policy: asked for, and reported. */
  getEdgeSettings(id: string): Promise<DeviceEdgeSettings> {
    return this.#request('GET', `/v1/devices/${encodeURIComponent(id)}/edge-data`);
  }

  /** Sets a device's telemetry window and sampling policy (in its signed desired state). */
  setEdgeSettings(id: string, settings: EdgeDataSettings): Promise<DeviceEdgeSettings> {
    return this.#request('PUT', `/v1/devices/${encodeURIComponent(id)}/edge-data`, settings);
  }

  /** Decommissions a device: credentials revoked, session ended, retained topics cleared. */
  decommissionDevice(id: string): Promise<DecommissionedDevice> {
    return this.#request('DELETE', `/v1/devices/${encodeURIComponent(id)}`);
  }

  /**
   * Revokes one client certificate of a device that stays in service (by its PEM or its
   * SHA-256 fingerprint): refused from now on, and a live session that used it is ended.
   */
  revokeDeviceCertificate(
    id: string,
    certificate: RevokeCertificateBody,
  ): Promise<RevokedCertificateResult> {
    return this.#request(
      'POST',
      `/v1/devices/${encodeURIComponent(id)}/certificates/revoke`,
      certificate,
    );
  }

  /** A device's revoked client certificates, newest first. */
  listRevokedCertificates(id: string): Promise<RevokedCertificateList> {
    return this.#request('GET', `/v1/devices/${encodeURIComponent(id)}/certificates/revoked`);
  }

  /** One model version. */
  getModel(name: string, version: string): Promise<ModelSummary> {
    return this.#request(
      'GET',
      `/v1/models/${encodeURIComponent(name)}/${encodeURIComponent(version)}`,
    );
  }

  /** Moves a model version to a stage (candidate, staging, production, archived). */
  stageModel(name: string, version: string, stage: string): Promise<ModelSummary> {
    return this.#request(
      'POST',
      `/v1/models/${encodeURIComponent(name)}/${encodeURIComponent(version)}/stage`,
      { stage },
    );
  }

  /** Approves a model version for production (by another actor than its registrant). */
  approveModel(name: string, version: string): Promise<ModelSummary> {
    return this.#request(
      'POST',
      `/v1/models/${encodeURIComponent(name)}/${encodeURIComponent(version)}/approve`,
    );
  }

  /** Creates a named API token (admin only) with a role (default operator); the token is shown only once. */
  createToken(actor: string, role?: ApiRole): Promise<CreatedToken> {
    return this.#request('POST', '/v1/tokens', role === undefined ? { actor } : { actor, role });
  }

  /** Named API tokens with their roles (never the tokens themselves). */
  listTokens(): Promise<TokenView[]> {
    return this.#request('GET', '/v1/tokens');
  }

  /** Revokes an actor's token (admin only). */
  revokeToken(actor: string): Promise<RevokedToken> {
    return this.#request('DELETE', `/v1/tokens/${encodeURIComponent(actor)}`);
  }

  /** Creates a read-only MQTT credential (admin only) for results and telemetry of these devices (["*"]: all). */
  createMqttReader(name: string, devices: string[]): Promise<CreatedMqttReader> {
    return this.#request('POST', '/v1/mqtt-readers', { name, devices });
  }

  /** Read-only MQTT credentials and their grants (never the passwords). */
  listMqttReaders(): Promise<MqttReaderView[]> {
    return this.#request('GET', '/v1/mqtt-readers');
  }

  /** Revokes a read-only MQTT credential and ends its session. */
  revokeMqttReader(name: string): Promise<RevokedMqttReader> {
    return this.#request('DELETE', `/v1/mqtt-readers/${encodeURIComponent(name)}`);
  }

  /** Adds a signing key and makes it active. */
  rotateKeys(): Promise<KeyRotation> {
    return this.#request('POST', '/v1/keys/rotate');
  }

  listModels(): Promise<ModelSummary[]> {
    return this.#request('GET', '/v1/models');
  }

  /** Uploads and registers a model version. */
  publishModel(input: {
    name: string;
    version: string;
    onnx: Uint8Array;
    fileName?: string;
  }): Promise<ModelSummary> {
    const form = new FormData();
    form.set('name', input.name);
    form.set('version', input.version);
    form.set(
      'file',
      new Blob([input.onnx], { type: 'application/octet-stream' }),
      input.fileName ?? `${input.name}-${input.version}.onnx`,
    );
    return this.#request('POST', '/v1/models', form);
  }

  /**
   * Starts a rollout of name@version (to every device when no devices or
   * selector are given; all at once unless waves, gates or shadow are given).
   */
  createRollout(input: CreateRolloutInput): Promise<RolloutWithDevices> {
    return this.#request('POST', '/v1/rollouts', input);
  }

  /**
   * One rollout with progress; `{ devices: false }` leaves out the per-device list
   * (most of the answer for a large fleet: poll that way when the counts are enough).
   */
  getRollout(id: string): Promise<RolloutWithDevices>;
  getRollout(id: string, view: { devices?: boolean }): Promise<RolloutSummary>;
  getRollout(id: string, view: { devices?: boolean } = {}): Promise<RolloutSummary> {
    return this.#request('GET', `/v1/rollouts/${encodeURIComponent(id)}${viewQuery(view)}`);
  }

  /** Every rollout, newest first (`{ devices: false }`: without per-device lists). */
  listRollouts(view: { devices?: boolean } = {}): Promise<RolloutSummary[]> {
    return this.#request('GET', `/v1/rollouts${viewQuery(view)}`);
  }

  /** Holds a running rollout. */
  pauseRollout(id: string): Promise<RolloutWithDevices> {
    return this.#request('POST', `/v1/rollouts/${encodeURIComponent(id)}/pause`);
  }

  /** Continues a paused rollout. */
  resumeRollout(id: string): Promise<RolloutWithDevices> {
    return this.#request('POST', `/v1/rollouts/${encodeURIComponent(id)}/resume`);
  }

  /** Stops a rollout and sends the devices it moved back to their previous version. */
  abortRollout(id: string): Promise<RolloutWithDevices> {
    return this.#request('POST', `/v1/rollouts/${encodeURIComponent(id)}/abort`);
  }

  /**
   * Scores one JPEG or PNG with a registered model (`name@version`, or `name`
   * for its production version; omit when one model name is registered).
   */
  predict(image: Uint8Array, options: { model?: string } = {}): Promise<PredictResult> {
    const query = options.model === undefined ? '' : `?model=${encodeURIComponent(options.model)}`;
    const contentType = image[0] === 0x89 ? 'image/png' : 'image/jpeg';
    return this.#request('POST', `/v1/predict${query}`, new Blob([image], { type: contentType }));
  }

  /**
   * A page of the review queue: unlabelled samples most uncertain first, then
   * defects, then random (with `labelled: true`, labelled ones, newest label first).
   */
  reviewQueue(filter: ReviewQueueQuery = {}): Promise<ReviewQueuePage> {
    return this.#request('GET', `/v1/review/queue${queryString(filter)}`);
  }

  /** Labels a sample (`<boot>-<seq>` of a device); a new label corrects the previous one. */
  labelSample(deviceId: string, sampleId: string, label: NewReviewLabel): Promise<ReviewLabel> {
    return this.#request(
      'POST',
      `/v1/review/samples/${encodeURIComponent(deviceId)}/${encodeURIComponent(sampleId)}/labels`,
      label,
    );
  }

  /** A sample's labels, oldest first, and the current (newest) one. */
  sampleLabels(deviceId: string, sampleId: string): Promise<SampleLabels> {
    return this.#request(
      'GET',
      `/v1/review/samples/${encodeURIComponent(deviceId)}/${encodeURIComponent(sampleId)}/labels`,
    );
  }

  /** Precision and recall of each model version on labelled samples, per device and day. */
  reviewQuality(filter: ReviewFilter = {}): Promise<ReviewQuality> {
    return this.#request('GET', `/v1/review/quality${queryString(filter)}`);
  }

  /** The labelled samples as a dataset manifest with its fingerprint (labels before `asOf`, when given). */
  reviewExport(filter: ReviewExportQuery = {}): Promise<ReviewDatasetManifest> {
    return this.#request('GET', `/v1/review/export${queryString(filter)}`);
  }

  /** Starts a retraining job for a model (one queued or running job per model). */
  startRetrain(body: StartRetrainBody): Promise<RetrainJobView> {
    return this.#request('POST', '/v1/retrain/jobs', body);
  }

  /** Retraining jobs, newest first. */
  async listRetrainJobs(
    q: { model?: string; state?: string; limit?: number } = {},
  ): Promise<RetrainJobView[]> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined) params.set(k, String(v));
    const query = params.size === 0 ? '' : `?${params.toString()}`;
    return (await this.#request<RetrainJobList>('GET', `/v1/retrain/jobs${query}`)).jobs;
  }

  /** One retraining job. */
  getRetrainJob(id: string): Promise<RetrainJobView> {
    return this.#request('GET', `/v1/retrain/jobs/${encodeURIComponent(id)}`);
  }

  /** Cancels a retraining job. */
  cancelRetrainJob(id: string): Promise<RetrainJobView> {
    return this.#request('POST', `/v1/retrain/jobs/${encodeURIComponent(id)}/cancel`);
  }

  /** Uploads one training image by its SHA-256; false when the cloud already had it. */
  async putTrainingImage(sha256: string, bytes: Uint8Array): Promise<boolean> {
    const r = await this.#request<TrainingImageStored>(
      'PUT',
      `/v1/retrain/datasets/images/${sha256}`,
      new Blob([bytes], { type: 'application/octet-stream' }),
    );
    return r.stored;
  }

  /** Registers a training dataset of uploaded images. */
  registerTrainingDataset(body: RegisterDatasetBody): Promise<TrainingDatasetView> {
    return this.#request('POST', '/v1/retrain/datasets', body);
  }

  /** Registered training datasets. */
  async listTrainingDatasets(): Promise<TrainingDatasetView[]> {
    return (await this.#request<TrainingDatasetList>('GET', '/v1/retrain/datasets')).datasets;
  }

  /** One training dataset with its images and labels. */
  getTrainingDataset(fingerprint: string): Promise<TrainingDatasetDetail> {
    return this.#request('GET', `/v1/retrain/datasets/${encodeURIComponent(fingerprint)}`);
  }

  /** Verdict-log records by device, model version and time range, oldest first. */
  async listVerdicts(filter: EdgeFilterQuery = {}): Promise<EdgeVerdictView[]> {
    return (await this.#request<EdgeVerdictList>('GET', `/v1/edge/verdicts${queryString(filter)}`))
      .records;
  }

  /** Verdict counts per device, model version and time bucket, oldest bucket first. */
  async verdictCounts(filter: EdgeVerdictCountsQuery = {}): Promise<EdgeVerdictCount[]> {
    return (
      await this.#request<EdgeVerdictCountList>(
        'GET',
        `/v1/edge/verdict-counts${queryString(filter)}`,
      )
    ).buckets;
  }

  /** Telemetry windows by device, model version and time range, oldest first. */
  async listWindows(filter: EdgeFilterQuery = {}): Promise<EdgeWindowView[]> {
    return (await this.#request<EdgeWindowList>('GET', `/v1/edge/windows${queryString(filter)}`))
      .windows;
  }

  /** Events kept in device stores, oldest first. */
  async listEdgeEvents(filter: EdgeFilterQuery = {}): Promise<EdgeEventView[]> {
    return (await this.#request<EdgeEventList>('GET', `/v1/edge/events${queryString(filter)}`))
      .events;
  }

  /** The sample index, newest first. */
  async listSamples(filter: EdgeSamplesQuery = {}): Promise<SampleView[]> {
    return (await this.#request<EdgeSampleList>('GET', `/v1/samples${queryString(filter)}`))
      .samples;
  }

  /** One sample (`<boot>-<seq>` of a device) with short-lived URLs to its image and anomaly map. */
  getSample(deviceId: string, id: string): Promise<EdgeSampleDownload> {
    return this.#request(
      'GET',
      `/v1/samples/${encodeURIComponent(deviceId)}/${encodeURIComponent(id)}`,
    );
  }

  /** Edge-data ingest counters and stored rows per table. */
  edgeIngestStats(): Promise<EdgeIngestStats> {
    return this.#request('GET', '/v1/edge/ingest-stats');
  }

  /** The latest events a device reported over MQTT, oldest first. */
  deviceEvents(id: string): Promise<DeviceEventList> {
    return this.#request('GET', `/v1/devices/${encodeURIComponent(id)}/events`);
  }

  /** Drift and camera alerts, newest first. */
  async listAlerts(filter: AlertFilterQuery = {}): Promise<DriftAlertView[]> {
    return (await this.#request<AlertList>('GET', `/v1/alerts${queryString(filter)}`)).alerts;
  }

  /** The drift job's counters and its last run. */
  driftStatus(): Promise<DriftStatus> {
    return this.#request('GET', '/v1/drift/status');
  }

  /** Runs the drift job now (or waits for the run under way) and returns what it did. */
  runDrift(): Promise<DriftRunSummaryView> {
    return this.#request('POST', '/v1/drift/runs');
  }

  /** The audit log, newest first (entries below `beforeId` for the next page). */
  listAudit(query: AuditQuery = {}): Promise<AuditEntryView[]> {
    return this.#request('GET', `/v1/audit${queryString(query)}`);
  }

  async #request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}` };
    let payload: string | FormData | Blob | undefined;
    if (body instanceof FormData) payload = body;
    else if (body instanceof Blob) {
      headers['content-type'] = body.type;
      payload = body;
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let response: Response;
    try {
      response = await this.#fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: payload,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (cause) {
      throw new LinesightError(
        'ERR_CLOUD_BAD_REQUEST',
        `cannot reach the cloud at ${this.baseUrl}: ${describeFetchFailure(cause)}`,
        { cause },
      );
    }
    const text = await response.text();
    if (!response.ok) {
      let apiCode = `HTTP_${response.status}`;
      let message = text;
      try {
        const parsed = JSON.parse(text) as { error?: string; message?: string };
        apiCode = parsed.error ?? apiCode;
        message = parsed.message ?? text;
      } catch {
        // Not JSON: keep the raw text as the message.
      }
      throw new CloudApiError(
        response.status,
        apiCode,
        `${method} ${path} failed (${response.status}): ${message}`,
      );
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }
}

/** `?a=1&b=x` of the defined values, or an empty string. */
function queryString(params: object): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params) as [string, unknown][])
    if (v !== undefined) q.set(k, String(v as string | number | boolean));
  const text = q.toString();
  return text === '' ? '' : `?${text}`;
}

/** fetch's own message ("fetch failed") and the reason under it (a refused connection, a certificate). */
function describeFetchFailure(cause: unknown): string {
  const message = (cause as Error).message;
  const inner = (cause as { cause?: unknown }).cause;
  const reason =
    inner instanceof Error
      ? `${(inner as NodeJS.ErrnoException).code ?? inner.name}: ${inner.message}`
      : undefined;
  return reason === undefined || message.includes(inner instanceof Error ? inner.message : '')
    ? message
    : `${message} (${reason})`;
}

/** The query of a rollout read: nothing for the default view (every device). */
function viewQuery(view: { devices?: boolean }): string {
  return view.devices === false ? '?devices=false' : '';
}
