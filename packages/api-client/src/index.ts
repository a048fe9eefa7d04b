export {
  CloudApiClient,
  CloudApiError,
  type ProvisionedDevice,
  type DeviceSummary,
  type ModelSummary,
  type RolloutSummary,
  type PredictResult,
} from './cloud-api-client.ts';
