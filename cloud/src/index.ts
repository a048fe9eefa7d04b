export { Cloud, type CloudUrls } from './cloud.ts';
export {
  CloudConfigSchema,
  loadCloudConfig,
  type CloudConfig,
  type CloudConfigInput,
} from './config.ts';
export { runCloud, type RunCloudOptions } from './main.ts';
