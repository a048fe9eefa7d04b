import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  Agent,
  cloudFetch,
  loadAgentConfig,
  readDeviceCredentials,
  writeDeviceCredentials,
  type Camera,
  type DeviceCredentials,
} from '@linesight/agent';
import { CloudApiClient, type ProvisionedDevice } from '@linesight/api-client';
import { MAX_DEVICES_PER_BATCH } from '@linesight/protocol';
import { InferenceWorkerPool } from '@linesight/vision';
import { SharedModelLoader } from './shared-model-loader.ts';

/** Options of a simulated fleet. */
export interface SimulatedFleetOptions {
  cloudUrl: string;
  /** MQTT URL devices connect to; defaults to the one the running cloud hands out (GET /v1/connection). */
  mqttUrl?: string;
  adminToken: string;
  devices: number;
  /** Device ids are `<idPrefix>-001`, `<idPrefix>-002`, ... */
  idPrefix?: string;
  /** Each device keeps its credentials and models under `<dataDir>/<deviceId>/`. */
  dataDir: string;
  /** Makes the camera of device i (0-based). */
  camera: (index: number, deviceId: string) => Camera;
  labels?: Record<string, string>;
  telemetryIntervalSec?: number;
  logger: Logger;
  /**
   * Load each model version once for the whole fleet (by sha256) instead of
   * one worker thread per device: for large fleets. Devices then share that
   * model's thread, so their latencies include waiting for each other.
   */
  shareModels?: boolean;
  /** More agent settings (e.g. watchdogMs, queueDepth), applied to every device. */
  agentConfig?: Record<string, unknown>;
  /** Devices started at a time (default 1). */
  startConcurrency?: number;
  /** Devices provisioned per request of POST /v1/devices/batch (default 500, at most 1,000). */
  provisionBatch?: number;
  /**
   * The CA (PEM) that vouches for a cloud on HTTPS, trusted alone for the
   * fleet's own API calls (provisioning). Devices pin the CA that provisioning
   * hands them, as real ones do. Omitted: the system's CAs.
   */
  caPem?: string;
}

/** Devices provisioned per request by default: one request and one transaction per 500. */
const DEFAULT_PROVISION_BATCH = 500;

/**
 * How long a provisioning request may take: on an external Mosquitto with dynamic
 * security each device of a batch costs two configuration-file rewrites, a tenth of a
 * second each at 2,000 devices (with password and ACL files, one write per batch).
 */
const PROVISION_TIMEOUT_MS = 15 * 60_000;

/**
 * N real agents in one process, each on its own simulated camera, talking to
 * the cloud only over MQTT and HTTP as real devices do. Devices are
 * provisioned through the REST API on first start and reuse their credentials after.
 */
export class SimulatedFleet {
  readonly #o: SimulatedFleetOptions;
  readonly agents: Agent[] = [];
  /** The fleet's shared model loader, when `shareModels` is set. */
  readonly sharedModels: SharedModelLoader | undefined;
  readonly #credentials: (DeviceCredentials & { mqttUrl: string })[] = [];
  /** Every device's model threads come from here: one warm spare for the fleet, not one per device. */
  readonly #workers = new InferenceWorkerPool();
  #closing: Promise<void> | undefined;

  constructor(options: SimulatedFleetOptions) {
    this.#o = options;
    this.sharedModels = options.shareModels ? new SharedModelLoader(this.#workers) : undefined;
  }

  /** The device ids of this fleet. */
  /** How long start() spent provisioning new devices (0 when every device was reused). */
  provisionSeconds = 0;

  get deviceIds(): string[] {
    const prefix = this.#o.idPrefix ?? 'sim';
    return Array.from(
      { length: this.#o.devices },
      (_, i) => `${prefix}-${String(i + 1).padStart(3, '0')}`,
    );
  }

  /**
   * Provisions (or reuses) every device and starts its agent. New devices are
   * provisioned first, in batches (one request each: a 10,000-device fleet
   * provisioned one request at a time spent minutes on it, and ran into the
   * API's per-token rate limit), then the agents start.
   */
  async start(): Promise<void> {
    const http = cloudFetch(
      this.#o.cloudUrl,
      this.#o.caPem === undefined ? undefined : { caPem: this.#o.caPem },
    );
    try {
      await this.#startAll(
        new CloudApiClient({
          baseUrl: this.#o.cloudUrl,
          adminToken: this.#o.adminToken,
          timeoutMs: PROVISION_TIMEOUT_MS,
          fetch: http.fetch,
        }),
      );
    } finally {
      await http.close();
    }
  }

  async #startAll(api: CloudApiClient): Promise<void> {
    const ids = this.deviceIds;
    const known = new Set((await api.listDevices()).map((d) => d.id));
    // The running cloud's broker, not the one a stored device.json names: a cloud
    // restarted on other ports would otherwise leave every reused device offline.
    const mqttUrl = this.#o.mqttUrl ?? (await api.connection()).mqttUrl;
    const credsPathOf = (deviceId: string) => join(this.#o.dataDir, deviceId, 'device.json');
    // Reuse stored credentials only if the cloud still knows the device (its data may have been reset).
    const reused = new Set<string>();
    for (const deviceId of ids)
      if (known.has(deviceId) && (await exists(credsPathOf(deviceId)))) reused.add(deviceId);
    const fresh = new Map<string, ProvisionedDevice>();
    const toProvision = ids.filter((id) => !reused.has(id));
    const batch = Math.min(
      MAX_DEVICES_PER_BATCH,
      Math.max(1, this.#o.provisionBatch ?? DEFAULT_PROVISION_BATCH),
    );
    const labels = { fleet: 'simulated', ...this.#o.labels };
    const provisionStarted = Date.now();
    for (let i = 0; i < toProvision.length; i += batch) {
      const answer = await api.provisionDevices(
        toProvision.slice(i, i + batch).map((id) => ({ id, labels })),
      );
      for (const provisioned of answer) fresh.set(provisioned.deviceId, provisioned);
    }
    this.provisionSeconds = (Date.now() - provisionStarted) / 1000;
    const startOne = async (index: number, deviceId: string): Promise<void> => {
      const credsPath = credsPathOf(deviceId);
      let creds: DeviceCredentials;
      const provisioned = fresh.get(deviceId);
      if (provisioned === undefined) {
        creds = await readDeviceCredentials(credsPath);
        if (creds.mqttUrl !== mqttUrl || creds.cloudUrl !== this.#o.cloudUrl) {
          this.#o.logger.info(
            { deviceId, was: { mqttUrl: creds.mqttUrl, cloudUrl: creds.cloudUrl } },
            'device.json names another cloud address; updated to the running cloud',
          );
          creds = { ...creds, mqttUrl, cloudUrl: this.#o.cloudUrl };
          await writeDeviceCredentials(credsPath, creds);
        }
      } else {
        creds = { ...provisioned, mqttUrl, cloudUrl: this.#o.cloudUrl };
        await writeDeviceCredentials(credsPath, creds);
        // The password's only copy is in the file now.
        fresh.delete(deviceId);
      }
      this.#credentials[index] = { ...creds, mqttUrl };
      const agent = this.#makeAgent(index, deviceId, creds, mqttUrl);
      this.agents[index] = agent;
      await agent.start();
    };
    const concurrency = Math.max(1, this.#o.startConcurrency ?? 1);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, ids.length) }, async () => {
        for (let i = next++; i < ids.length; i = next++) await startOne(i, ids[i] as string);
      }),
    );
  }

  /** The credentials device `index` started with (undefined before it started). */
  credentialsOf(index: number): (DeviceCredentials & { mqttUrl: string }) | undefined {
    return this.#credentials[index];
  }

  /**
   * Restarts device `index` as a power cycle would: its agent is closed and a new
   * one starts on the same data folder (stored models, unsent records) and a new camera.
   */
  async restart(index: number): Promise<Agent> {
    const old = this.agents[index];
    const creds = this.#credentials[index];
    const deviceId = this.deviceIds[index];
    if (old === undefined || creds === undefined || deviceId === undefined)
      throw new Error(`device ${index} of the fleet has not started`);
    await old.close();
    const agent = this.#makeAgent(index, deviceId, creds, creds.mqttUrl);
    this.agents[index] = agent;
    await agent.start();
    return agent;
  }

  #makeAgent(index: number, deviceId: string, creds: DeviceCredentials, mqttUrl: string): Agent {
    return new Agent(
      loadAgentConfig({
        ...this.#o.agentConfig,
        deviceId,
        cloudUrl: this.#o.cloudUrl,
        mqttUrl,
        username: creds.username,
        password: creds.password,
        ...(creds.caPem !== undefined ? { tls: { caPem: creds.caPem } } : {}),
        trustedKeys: creds.trustedKeys,
        dataDir: join(this.#o.dataDir, deviceId),
        telemetryIntervalSec: this.#o.telemetryIntervalSec,
      }),
      this.#o.camera(index, deviceId),
      this.#o.logger.child({ deviceId }),
      this.sharedModels ? { loadModel: this.sharedModels.load } : { workers: this.#workers },
    );
  }

  /** Closes every agent; idempotent; collects errors. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const results = await Promise.allSettled(this.agents.filter(Boolean).map((a) => a.close()));
      const errors = results.filter((r) => r.status === 'rejected').map((r) => r.reason as unknown);
      // The models first, then the pool their threads came from.
      for (const step of [() => this.sharedModels?.close(), () => this.#workers.close()]) {
        try {
          await step();
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length > 0) throw new AggregateError(errors, 'fleet close failed');
    })();
    return this.#closing;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
