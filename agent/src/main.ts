import { join } from 'node:path';
import pino from 'pino';
import { checkLogLevel, LinesightError } from '@linesight/protocol';
import { Agent } from './agent.ts';
import type { Camera } from './camera/camera.ts';
import { readDeviceCredentials } from './device-credentials.ts';

/** How the agent app entry is told what to run. */
export interface RunAgentOptions {
  deviceId: string;
  cloudUrl?: string;
  mqttUrl?: string;
  dataDir: string;
  /** Defaults to `<dataDir>/device.json`. */
  credentialsPath?: string;
  camera: Camera;
  telemetryIntervalSec?: number;
  logLevel?: string;
  /** Inference watchdog limit (config default when omitted). */
  watchdogMs?: number;
  /** Consecutive watchdog trips that quarantine the live version (config default when omitted). */
  watchdogTrips?: number;
  /** Starts before an unstable new version counts as crash-looping (config default when omitted). */
  crashLoopStarts?: number;
  /** Seconds a new version must run before it counts as stable (config default when omitted). */
  stableAfterSec?: number;
  /** Install SIGTERM/SIGINT handlers (the standalone app does; a fleet does not). */
  handleSignals?: boolean;
}

/**
 * Builds an agent from its provisioning file plus overrides, starts it, and
 * (optionally) shuts it down cleanly on SIGTERM/SIGINT.
 */
export async function runAgent(options: RunAgentOptions): Promise<Agent> {
  // Before pino sees it: pino's error for an unknown level names none of the valid ones.
  const level = checkLogLevel(options.logLevel ?? 'info', 'ERR_AGENT_CONFIG');
  const credentialsPath = options.credentialsPath ?? join(options.dataDir, 'device.json');
  const creds = await readDeviceCredentials(credentialsPath);
  const cloudUrl = options.cloudUrl ?? creds.cloudUrl;
  const mqttUrl = options.mqttUrl ?? creds.mqttUrl;
  const missing = [
    ...(cloudUrl === undefined ? ['the cloud URL (--cloud)'] : []),
    ...(mqttUrl === undefined ? ['the MQTT URL (--mqtt)'] : []),
  ];
  if (missing.length > 0)
    throw new LinesightError(
      'ERR_AGENT_CONFIG',
      `${credentialsPath} does not name ${missing.join(' or ')}: pass it, or provision the device again (linesight device provision writes both)`,
    );
  const logger = pino({
    level,
    base: { app: 'agent', deviceId: options.deviceId },
  });
  const agent = new Agent(
    {
      deviceId: options.deviceId,
      cloudUrl,
      mqttUrl,
      username: creds.username,
      password: creds.password,
      trustedKeys: creds.trustedKeys,
      dataDir: options.dataDir,
      telemetryIntervalSec: options.telemetryIntervalSec,
      logLevel: options.logLevel,
      watchdogMs: options.watchdogMs,
      watchdogTrips: options.watchdogTrips,
      crashLoopStarts: options.crashLoopStarts,
      stableAfterSec: options.stableAfterSec,
    },
    options.camera,
    logger,
  );
  await agent.start();
  if (options.handleSignals !== false) {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'shutting down');
      const force = setTimeout(() => process.exit(1), 10_000);
      force.unref();
      agent.close().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }
  return agent;
}
