export {
  CloudApiClient,
  CloudApiError,
  type ProvisionedDevice,
  type DeviceSummary,
  type ModelSummary,
  type RolloutSummary,
} from './cloud-api-client.ts';
