export { Cloud, type CloudUrls } from './cloud.ts';
export {
  CloudConfigSchema,
  loadCloudConfig,
  type CloudConfig,
  type CloudConfigInput,
} from './config.ts';
export { runCloud, type RunCloudOptions } from './main.ts';
export type {
  BlobStat,
  BlobStore,
  UploadSpec,
  UploadTarget,
  VerifyResult,
} from './blobs/blob-store.ts';
export { LocalBlobStore } from './blobs/local-blob-store.ts';
export { EdgeDataStore } from './ingest/edge-data-store.ts';
export { DriftService, type DriftServiceOptions } from './drift/drift-service.ts';
export {
  DriftSettingsSchema,
  type DriftSettings,
  type DriftSettingsInput,
} from './drift/drift-settings.ts';
export type { DriftRunSummary } from './drift/drift-job.ts';
export type { DriftAlert } from './drift/alert-store.ts';
