import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import pino from 'pino';
import { checkLogLevel, LinesightError } from '@linesight/protocol';
import type { AgentDeps } from './agent.ts';
import type { Camera } from './camera/camera.ts';
import { readAgentConfigFile } from './config-file.ts';
import { loadAgentConfig, type AgentConfig } from './config.ts';
import { readDeviceCredentials, type DeviceCredentials } from './device-credentials.ts';
import type { CloudTls } from './cloud-tls.ts';

// The agent's configuration, read and validated once. Kept apart from the agent itself
// (models, store, vision) so that a line guard, which needs only this, starts light.

/** How the agent app entry is told what to run. */
export interface RunAgentOptions {
  deviceId: string;
  cloudUrl?: string;
  mqttUrl?: string;
  dataDir: string;
  /** Defaults to `<dataDir>/device.json`. */
  credentialsPath?: string;
  /** Client certificate and key files (PEM) to log in with instead of the password; override device.json's. */
  clientCert?: string;
  clientKey?: string;
  camera: Camera;
  telemetryIntervalSec?: number;
  logLevel?: string;
  /** Where log lines go (e.g. a pretty printer); pino's JSON on stdout when omitted. */
  logDestination?: pino.DestinationStream;
  /** Inference watchdog limit (config default when omitted). */
  watchdogMs?: number;
  /** Consecutive watchdog trips that quarantine the live version (config default when omitted). */
  watchdogTrips?: number;
  /** Starts before an unstable new version counts as crash-looping (config default when omitted). */
  crashLoopStarts?: number;
  /** Seconds a new version must run before it counts as stable (config default when omitted). */
  stableAfterSec?: number;
  /** Local configuration file (YAML or JSON): outputs, http and tunables; options here win. */
  configFile?: string;
  /** Port of the local read-only HTTP endpoint (0 = any free port); omitted = the file's, else off. */
  httpPort?: number;
  /** Address it listens on (default 127.0.0.1). */
  httpHost?: string;
  /** Telemetry window length in the store (config default when omitted). */
  windowSec?: number;
  /** Disk quota of the store and its images (config default when omitted). */
  storeQuotaBytes?: number;
  /** Stored records forwarded per second at most (config default when omitted). */
  forwardRecordsPerSec?: number;
  /**
   * The process environment, read for systemd's NOTIFY_SOCKET, WATCHDOG_USEC and
   * WATCHDOG_PID (sd_notify: ready, watchdog pings, stopping). Omitted: no notifications.
   */
  env?: NodeJS.ProcessEnv;
  /** Run as a line guard (overrides the config file's `lineGuard`). */
  lineGuard?: boolean;
  /** Line guard: the verdict budget (config default when omitted). */
  verdictBudgetMs?: number;
  /** Collaborators of the agent (a worker under a line guard passes its verdict sink). */
  deps?: AgentDeps;
}

/** A validated configuration and the logger built from it. */
export interface AgentSetup {
  config: AgentConfig;
  logger: pino.Logger;
}

/**
 * Reads the provisioning file, the config file and the options, validates
 * them together once and builds the logger.
 */
export async function loadAgentSetup(options: RunAgentOptions): Promise<AgentSetup> {
  // Before anything is read, and before pino sees it: pino's error for an unknown
  // level names none of the valid ones.
  const levelOption =
    options.logLevel === undefined
      ? undefined
      : checkLogLevel(options.logLevel, 'ERR_AGENT_CONFIG');
  const credentialsPath = options.credentialsPath ?? join(options.dataDir, 'device.json');
  const creds = await readDeviceCredentials(credentialsPath);
  const tls = await deviceTls(credentialsPath, creds, options);
  const file = options.configFile ? await readAgentConfigFile(options.configFile) : {};
  const level =
    levelOption ??
    checkLogLevel(typeof file.logLevel === 'string' ? file.logLevel : 'info', 'ERR_AGENT_CONFIG');
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
  const logOptions = { level, base: { app: 'agent', deviceId: options.deviceId } };
  const logger =
    options.logDestination === undefined
      ? pino(logOptions)
      : pino(logOptions, options.logDestination);
  const fileHttp = (file.http ?? undefined) as Record<string, unknown> | undefined;
  const http =
    options.httpPort === undefined && options.httpHost === undefined
      ? fileHttp
      : {
          ...fileHttp,
          ...(options.httpPort === undefined ? {} : { port: options.httpPort }),
          ...(options.httpHost === undefined ? {} : { host: options.httpHost }),
        };
  // Validated once, here: every problem of the file and the options reported together.
  const config = loadAgentConfig({
    ...file,
    ...(http === undefined ? {} : { http }),
    deviceId: options.deviceId,
    cloudUrl,
    mqttUrl,
    username: creds.username,
    password: creds.password ?? '',
    ...(tls !== undefined ? { tls } : {}),
    trustedKeys: creds.trustedKeys,
    dataDir: options.dataDir,
    ...defined({
      telemetryIntervalSec: options.telemetryIntervalSec,
      logLevel: options.logLevel,
      watchdogMs: options.watchdogMs,
      watchdogTrips: options.watchdogTrips,
      crashLoopStarts: options.crashLoopStarts,
      stableAfterSec: options.stableAfterSec,
      windowSec: options.windowSec,
      storeQuotaBytes: options.storeQuotaBytes,
      forwardRecordsPerSec: options.forwardRecordsPerSec,
      lineGuard: options.lineGuard,
      verdictBudgetMs: options.verdictBudgetMs,
    }),
  });
  return { config, logger };
}

/** The TLS settings of device.json and the options: the pinned CA, a client certificate read from its files. */
async function deviceTls(
  credentialsPath: string,
  creds: DeviceCredentials,
  options: RunAgentOptions,
): Promise<CloudTls | undefined> {
  const base = dirname(credentialsPath);
  const certPath = options.clientCert ?? (creds.clientCert && resolve(base, creds.clientCert));
  const keyPath = options.clientKey ?? (creds.clientKey && resolve(base, creds.clientKey));
  if ((certPath === undefined) !== (keyPath === undefined))
    throw new LinesightError(
      'ERR_AGENT_CONFIG',
      'a client certificate needs both files: the certificate and its key (--client-cert and --client-key, or clientCert and clientKey in device.json)',
    );
  if (creds.caPem === undefined) {
    if (certPath !== undefined)
      throw new LinesightError(
        'ERR_AGENT_CONFIG',
        `${credentialsPath} holds no caPem: a client certificate needs a cloud that serves TLS (provision the device again from it)`,
      );
    return undefined;
  }
  if (certPath === undefined || keyPath === undefined) return { caPem: creds.caPem };
  return {
    caPem: creds.caPem,
    clientCertPem: await readPemFile(certPath, 'client certificate'),
    clientKeyPem: await readPemFile(keyPath, 'client key'),
  };
}

async function readPemFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new LinesightError('ERR_AGENT_CONFIG', `cannot read the ${what} ${path}`, { cause });
  }
}

/** The entries with a value, so an option left out does not hide the config file's setting. */
function defined(values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
}
