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
