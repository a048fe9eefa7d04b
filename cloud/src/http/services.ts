import type { BlobStore } from '../blobs/blob-store.ts';
import type { LocalBlobStore } from '../blobs/local-blob-store.ts';
import type { UploadSlots } from './upload-slots.ts';
import type { DownloadAdmission } from './download-admission.ts';
import type { UploadStats } from '../blobs/upload-stats.ts';
import type { FleetLink } from '../fleet/fleet-link.ts';
import type { DesiredStateService } from '../fleet/desired-state-service.ts';
import type { BrokerAccounts } from '../broker/broker-accounts.ts';
import type { KeyRotation } from '../fleet/key-rotation.ts';
import type { KeyRing } from '../signing/key-ring.ts';
import type { ModelServer } from '../inference/model-server.ts';
import type { RolloutService } from '../rollouts/rollout-service.ts';
import type { ModelService } from '../models/model-service.ts';
import type { DeviceRegistry } from '../registry/device-registry.ts';
import type { ModelRegistry } from '../registry/model-registry.ts';
import type { MetricSample } from '../metrics.ts';
import type { ReadinessReport } from '../readiness.ts';
import type { ApiTokens } from '../registry/api-tokens.ts';
import type { EnrolmentTokens } from '../registry/enrolment-tokens.ts';
import type { MqttReaders } from '../registry/mqtt-readers.ts';
import type { AuditLog } from '../registry/audit-log.ts';
import type { RevokedCertificates } from '../registry/revoked-certificates.ts';
import type { DeviceAlertLevels } from '../drift/alert-store.ts';

/** What the HTTP routes may use; wired by the Cloud. */
export interface CloudServices {
  models: ModelRegistry;
  modelService: ModelService;
  devices: DeviceRegistry;
  /** Client certificates refused while their device stays in service. */
  revokedCertificates: RevokedCertificates;
  /** Closes live MQTT sessions that logged in with this certificate; how many (0 with an external broker). */
  disconnectCertificate: (fingerprintSha256: string) => number;
  audit: AuditLog;
  tokens: ApiTokens;
  /** One-device enrolment tokens for installers. */
  enrolmentTokens: EnrolmentTokens;
  /** Read-only MQTT credentials. */
  readers: MqttReaders;
  rollouts: RolloutService;
  blobs: BlobStore;
  /** Set when blobs live in the cloud's own folder: it then serves the signed upload and download routes. */
  localBlobs: LocalBlobStore | undefined;
  /** Lifetime of upload URLs handed to devices. */
  uploadUrlTtlSec: number;
  /** Largest object a device may upload. */
  maxUploadObjectBytes: number;
  uploadStats: UploadStats;
  link: FleetLink;
  /** Every device's signed desired state. */
  desired: DesiredStateService;
  /** Keeps an external broker's logins in step with the registry (nothing to do for the embedded one). */
  brokerAccounts: BrokerAccounts;
  keys: KeyRing;
  keyRotation: KeyRotation;
  maxModelBytes: number;
  /** Bounds concurrent model uploads. */
  modelUploadSlots: UploadSlots;
  /** Bounds concurrent artifact downloads (GET /v1/models/:name/:version/artifact). */
  artifactDownloads: DownloadAdmission;
  /** A fresh temp path for a streamed upload, on the blob store's filesystem. */
  tempFile: () => Promise<string>;
  /** Central inference over registered models. */
  modelServer: ModelServer;
  /** Largest image body POST /v1/predict accepts. */
  maxPredictBytes: number;
  /** The MQTT URL devices should use: the advertised one, else the bound one. */
  mqttUrl: () => string;
  /** The HTTP base URL devices and clients should use: the advertised one, else the bound one. */
  httpUrl: () => string;
  metrics: () => MetricSample[];
  /** Who may read /metrics: anyone, or a token of role viewer or more. */
  metricsAuth: 'open' | 'token';
  /** The CA devices pin (PEM), handed out at provisioning when the cloud serves TLS. */
  tlsCaPem: string | undefined;
  /** Each device's worst open camera and drift alert (the fleet table). */
  alertLevels: () => ReadonlyMap<string, DeviceAlertLevels>;
  /** Whether the broker, database and blob store can serve now (GET /readyz). */
  readiness: () => Promise<ReadinessReport>;
}
