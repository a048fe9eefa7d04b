export type { Camera, Frame, FrameSink } from './camera/camera.ts';
export { FolderCamera, type FolderCameraOptions } from './camera/folder-camera.ts';
export {
  HttpSnapshotCamera,
  DEFAULT_MAX_SNAPSHOT_BYTES,
  type HttpSnapshotCameraOptions,
  type HttpSnapshotCameraStats,
} from './camera/http-snapshot-camera.ts';
export {
  MjpegExecCamera,
  type MjpegExecCameraOptions,
  type MjpegExecCameraStats,
} from './camera/mjpeg-exec-camera.ts';
export {
  MjpegParser,
  DEFAULT_MAX_MJPEG_FRAME_BYTES,
  type MjpegDrop,
  type MjpegDropReason,
  type MjpegParserOptions,
  type MjpegParserStats,
  type MjpegPartInfo,
  partTimestampMs,
} from './camera/mjpeg-parser.ts';
export type { BackoffOptions } from '@linesight/protocol';
export { PacingSchedule } from './camera/pacing-schedule.ts';
export { Agent, AGENT_VERSION, type AgentDeps } from './agent.ts';
export { AgentConfigSchema, loadAgentConfig, type AgentConfig } from './config.ts';
export {
  readDeviceCredentials,
  writeDeviceCredentials,
  type DeviceCredentials,
} from './device-credentials.ts';
export { runAgent, type AgentApp, type RunAgentOptions } from './main.ts';
export {
  runAgentProcess,
  type AgentProcessApp,
  type AgentProcessOptions,
} from './agent-process.ts';
export {
  VerdictGuard,
  type VerdictGuardCounters,
  type VerdictGuardOptions,
} from './guard/verdict-guard.ts';
export type { WorkerLaunch } from './guard/worker-supervisor.ts';
export {
  FramePipeline,
  type FramePipelineOptions,
  type AgentModelSlot,
  type Stage,
} from './pipeline/frame-pipeline.ts';
export { ShadowRunner, type ShadowRunnerOptions } from './pipeline/shadow-runner.ts';
export {
  ModelUpdater,
  SHADOW_THREAD_NICE,
  type ModelLoader,
  type ModelUpdaterHooks,
  type ModelUpdaterOptions,
} from './models/model-updater.ts';
export { ModelStore } from './models/model-store.ts';
export { cloudFetch, type CloudFetch, type CloudTls } from './cloud-tls.ts';
export { DesiredGuard } from './desired-guard.ts';
export {
  requestUploads,
  MAX_UPLOADS_PER_REQUEST,
  type RequestUploadsOptions,
  type UploadCredentials,
  type UploadObject,
  type UploadTarget,
} from './uploads/upload-client.ts';
export {
  putObject,
  uploadObject,
  type PutObjectOptions,
  type PutObjectReport,
  type UploadObjectOptions,
  type UploadObjectReport,
} from './uploads/put-object.ts';
export {
  downloadArtifact,
  type DownloadRequest,
  type DownloadReport,
} from './models/artifact-downloader.ts';
export { readAgentConfigFile } from './config-file.ts';
export {
  checkOutputConfigs,
  HttpConfigSchema,
  OutputConfigSchema,
  type HttpConfig,
  type OutputConfig,
  type OutputPolicy,
} from './outputs/outputs-config.ts';
export {
  LocalOutputs,
  createOutput,
  type LocalOutputsOptions,
  type VerdictSink,
} from './outputs/local-outputs.ts';
export { OutputFanOut } from './outputs/fan-out.ts';
export { OutputRunner, type OutputStats } from './outputs/output-runner.ts';
export type { LineOutput, OutputKind, OutputVerdict, WriteOutcome } from './outputs/output.ts';
export {
  MODBUS_SCORE_UNKNOWN,
  MODBUS_VERDICT_CODES,
  modbusScoreValue,
  modbusWritesFor,
} from './outputs/modbus-output.ts';
export type { AgentHttpStatus, LineGuardStatus } from './http/agent-http-server.ts';
export { DeviceLink, type DeviceLinkOptions } from './device-link.ts';
export {
  EdgeStore,
  type EdgeStoreOptions,
  type SampleInput,
  type StoredSample,
  type VerdictInput,
} from './store/edge-store.ts';
export { TelemetryWindowAggregator } from './store/telemetry-window.ts';
export { IdleGapTimer, type IdleGapTimerOptions } from './idle-gap-timer.ts';
export { Forwarder, type ForwarderOptions, type SampleUploader } from './forwarding/forwarder.ts';
export { HttpSampleUploader } from './forwarding/sample-uploader.ts';
export { Sampler, type SamplerOptions } from './sampling/sampler.ts';
export { DEFAULT_SAMPLING_POLICY, resolveSamplingPolicy } from './sampling/sampling-policy.ts';
