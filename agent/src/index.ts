export type { Camera, Frame, FrameSink } from './camera/camera.ts';
export { FolderCamera, type FolderCameraOptions } from './camera/folder-camera.ts';
export { Agent, AGENT_VERSION } from './agent.ts';
export { AgentConfigSchema, loadAgentConfig, type AgentConfig } from './config.ts';
export {
  readDeviceCredentials,
  writeDeviceCredentials,
  type DeviceCredentials,
} from './device-credentials.ts';
export { runAgent, type RunAgentOptions } from './main.ts';
