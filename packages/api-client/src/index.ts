export {
  CloudApiClient,
  CloudApiError,
  type ProvisionedDevice,
  type CloudConnection,
  type DeviceSummary,
  type ModelSummary,
  type RolloutSummary,
  type RolloutWave,
  type RolloutGateResult,
  type RolloutDeviceState,
  type CreateRolloutInput,
  type PredictResult,
} from './cloud-api-client.ts';
